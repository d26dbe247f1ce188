#!/usr/bin/env bash
# On a worker that is being removed (after worker_node_remove.sh drained it on the manager):
# leave the swarm, so that the host can join another one or be reused.
if [[ $(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null) == active ]]; then
  log "Leaving the swarm"
  docker swarm leave --force >/dev/null
else
  log "Not a swarm node (any more)"
fi
