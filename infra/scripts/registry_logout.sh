#!/usr/bin/env bash
# Removes the registry credential that registry_login.sh stored for root's Docker client.
# Parameters: REGISTRY_SERVER.
set -euo pipefail
: "${REGISTRY_SERVER:?}"

docker logout "$REGISTRY_SERVER" >/dev/null
log "Docker is logged out of $REGISTRY_SERVER"
