#!/usr/bin/env bash
# On a worker: join the swarm whose manager listens at MANAGER_ADDRESS, advertising
# ADVERTISE_ADDRESS (both on the network the nodes share). The join token is the step's secret
# on stdin; it goes to dockerd in a request body, never on a command line. Prints the node's id.
: "${MANAGER_ADDRESS:?}" "${ADVERTISE_ADDRESS:?}"

token=$(read_secret)
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [[ $state == active ]]; then
  managers=$(docker info --format '{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}')
  if [[ " $managers" != *" $MANAGER_ADDRESS:"* ]]; then
    log "This host is a node of another swarm (managers: $managers)."
    log "Make it leave that swarm first (docker swarm leave --force), then run pulumi up again."
    exit 1
  fi
  log "Already a worker of the swarm managed at $MANAGER_ADDRESS"
else
  log "Joining the swarm managed at $MANAGER_ADDRESS:2377, advertising $ADVERTISE_ADDRESS"
  printf '{"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "%s", "RemoteAddrs": ["%s:2377"], "JoinToken": "%s"}' \
    "$ADVERTISE_ADDRESS" "$MANAGER_ADDRESS" "$token" |
    curl --silent --show-error --fail-with-body --unix-socket /var/run/docker.sock \
      --header 'Content-Type: application/json' --data-binary @- http://localhost/swarm/join >&2
  log "Joined"
fi
docker info --format '{{.Swarm.NodeID}}'
