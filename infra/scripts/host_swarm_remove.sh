#!/usr/bin/env bash
# Undo step 3 on `pulumi destroy`: leave the swarm (the event stacks are gone by then) and
# remove the bridge created for it. Project files under ETC_DIR go too; they hold no data.
: "${ETC_DIR:?}"

if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') != inactive ]]; then
  log "Leaving the swarm"
  docker swarm leave --force >/dev/null
fi
if docker network inspect docker_gwbridge >/dev/null 2>&1; then
  docker network rm docker_gwbridge >/dev/null
fi
rm -rf "$ETC_DIR"
log "Swarm removed"
