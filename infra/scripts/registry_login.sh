#!/usr/bin/env bash
# Logs Docker on the host in to the image registry, so that the host can pull the site's image and
# `docker stack deploy --with-registry-auth` can hand the credential to the swarm.
# Parameters: REGISTRY_SERVER, REGISTRY_USERNAME. stdin: the registry password (read-only is enough).
set -euo pipefail
: "${REGISTRY_SERVER:?}" "${REGISTRY_USERNAME:?}"

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
read_secret_to_file "$workdir/password"
docker login --username "$REGISTRY_USERNAME" --password-stdin "$REGISTRY_SERVER" \
  <"$workdir/password" >/dev/null
log "Docker is logged in to $REGISTRY_SERVER as $REGISTRY_USERNAME"
