#!/usr/bin/env bash
# On the manager: wait (bounded) until worker NODE_ID is ready and available, so that the event
# stacks deployed after this step can place tasks on it.
: "${NODE_ID:?}" "${WORKER:?}" "${READY_TIMEOUT:?}"

node_state() {
  docker node inspect --format '{{.Status.State}}/{{.Spec.Availability}}' "$NODE_ID" 2>/dev/null || true
}

docker node update --label-add "django-swarm.worker=$WORKER" --availability active "$NODE_ID" >/dev/null
log "Waiting for worker $WORKER (node $NODE_ID) to be ready"
for _ in $(seq "$READY_TIMEOUT"); do
  [[ $(node_state) == ready/active ]] && break
  sleep 1
done
if [[ $(node_state) != ready/active ]]; then
  log "Worker $WORKER (node $NODE_ID) is $(node_state) after ${READY_TIMEOUT}s: see docker node ls on the manager, and journalctl -u docker on the worker"
  exit 1
fi
log "Worker $WORKER is ready"
