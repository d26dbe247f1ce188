#!/usr/bin/env bash
# The event's overlay network. Its tasks (the site and the migration job) reach PostgreSQL on the
# swarm gateway through docker_gwbridge, which Docker attaches to every task on an overlay
# network, so their connections come from the swarm subnet that pg_hba.conf admits.
# Parameters: EVENT, NETWORK.
set -euo pipefail
: "${EVENT:?}" "${NETWORK:?}"

if docker network inspect "$NETWORK" >/dev/null 2>&1; then
  log "Network $NETWORK exists"
else
  docker network create --driver overlay --label "django-swarm.event=$EVENT" "$NETWORK" >/dev/null
  log "Created network $NETWORK"
fi
