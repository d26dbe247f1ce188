#!/usr/bin/env bash
# Removes the event's swarm stack and waits (bounded) until its containers and network are gone,
# so that its secrets can be removed next and its port is free; then the migration job's
# leftover containers.
# Parameters: EVENT, STACK_FILE, SERVERS_FILE, MANAGER_SERVERS_FILE, REMOVE_TIMEOUT.
set -euo pipefail
: "${EVENT:?}" "${STACK_FILE:?}" "${SERVERS_FILE:?}" "${MANAGER_SERVERS_FILE:?}" "${REMOVE_TIMEOUT:?}"

if [[ -n $(docker stack ls --format '{{.Name}}' | awk -v name="$EVENT" '$0 == name') ]]; then
  docker stack rm "$EVENT" >&2
fi
label=com.docker.stack.namespace=$EVENT
deadline=$((SECONDS + REMOVE_TIMEOUT))
while [[ -n $(docker ps --all --quiet --filter "label=$label") ||
  -n $(docker network ls --quiet --filter "label=$label") ]]; do
  if ((SECONDS >= deadline)); then
    log "Stack $EVENT still has containers or networks after ${REMOVE_TIMEOUT}s (docker ps -a --filter label=$label)"
    exit 1
  fi
  sleep 1
done
# A daemon restart can run a finished migration job's task once more after the job was removed;
# its exited container is the event's last trace in Docker.
docker ps --all --quiet --filter "label=django-swarm.event=$EVENT" --filter status=exited |
  xargs --no-run-if-empty docker rm >/dev/null
# Nginx's upstreams that included the servers files went first (the event's nginx step).
rm -f "$STACK_FILE" "$SERVERS_FILE" "$MANAGER_SERVERS_FILE"
log "Removed stack $EVENT"
