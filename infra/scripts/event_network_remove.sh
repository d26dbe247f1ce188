#!/usr/bin/env bash
# Removes the event's overlay network once its stack is gone. Tasks that stopped a moment ago may
# still hold it for a few seconds, so removal is retried within REMOVE_TIMEOUT seconds.
# Parameters: NETWORK, REMOVE_TIMEOUT.
set -euo pipefail
: "${NETWORK:?}" "${REMOVE_TIMEOUT:?}"

deadline=$((SECONDS + REMOVE_TIMEOUT))
while docker network inspect "$NETWORK" >/dev/null 2>&1; do
  if docker network rm "$NETWORK" >/dev/null 2>&1; then
    break
  fi
  if ((SECONDS >= deadline)); then
    log "Network $NETWORK is still in use after ${REMOVE_TIMEOUT}s: docker network inspect $NETWORK"
    exit 1
  fi
  sleep 1
done
log "Removed network $NETWORK"
