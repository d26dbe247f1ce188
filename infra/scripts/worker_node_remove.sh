#!/usr/bin/env bash
# On the manager, when a worker is removed: drain it (swarm starts its tasks elsewhere first where
# there is room, start-first), wait (bounded) until none runs there, then take it out of the
# swarm. A worker already gone (a destroyed droplet) is taken out at once.
: "${NODE_ID:?}" "${WORKER:?}" "${DRAIN_TIMEOUT:?}"

if ! docker node inspect "$NODE_ID" >/dev/null 2>&1; then
  log "Worker $WORKER (node $NODE_ID) is not in the swarm any more"
  exit 0
fi
# Tasks told to stop may still be running (finishing their requests): count what runs.
running() {
  docker node ps --format '{{.CurrentState}}' "$NODE_ID" 2>/dev/null | grep -c '^Running' || true
}
if [[ $(docker node inspect --format '{{.Status.State}}' "$NODE_ID") == ready ]]; then
  log "Draining worker $WORKER (node $NODE_ID): its tasks move to the other nodes"
  docker node update --availability drain "$NODE_ID" >/dev/null
  for _ in $(seq "$DRAIN_TIMEOUT"); do
    (($(running) == 0)) && break
    sleep 1
  done
  if (($(running) > 0)); then
    log "Worker $WORKER still runs $(running) task(s) after ${DRAIN_TIMEOUT}s: see docker node ps $NODE_ID"
    exit 1
  fi
fi
docker node rm --force "$NODE_ID" >/dev/null
log "Worker $WORKER removed from the swarm"
