#!/usr/bin/env bash
# The event's swarm secrets. Swarm secrets cannot change, so each value has its own versioned name:
# a rotated value creates a new secret next to the one the running version uses; the stack step
# removes the old one once the new version serves.
# Parameters: EVENT, SECRETS (the names, space-separated).
# stdin: one value per name, in the same order.
set -euo pipefail
: "${EVENT:?}" "${SECRETS:?}"

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

for name in $SECRETS; do
  read_secret_to_file "$workdir/value"
  if docker secret inspect "$name" >/dev/null 2>&1; then
    log "Swarm secret $name exists"
  else
    docker secret create --label "django-swarm.event=$EVENT" "$name" "$workdir/value" >/dev/null
    log "Created swarm secret $name"
  fi
  rm -f "$workdir/value"
done
