#!/usr/bin/env bash
# Removes every swarm secret of the event (all versions). Runs after its stack is gone.
# Parameters: EVENT.
set -euo pipefail
: "${EVENT:?}"

secrets=$(docker secret ls --quiet --filter "label=django-swarm.event=$EVENT")
if [[ -n $secrets ]]; then
  # shellcheck disable=SC2086 # one secret id per word
  docker secret rm $secrets >/dev/null
fi
log "Removed the swarm secrets of $EVENT"
