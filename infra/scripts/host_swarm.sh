#!/usr/bin/env bash
# Step 3: a single-node Docker swarm whose bridge to the host (docker_gwbridge) uses the
# configured subnet, so PostgreSQL can listen on a gateway address known in advance.
: "${SWARM_SUBNET:?}" "${SWARM_GATEWAY:?}" "${ETC_DIR:?}" "${STACKS_DIR:?}"
# Empty ADVERTISE_ADDRESS means: the address of the interface that holds the default route.
: "${ADVERTISE_ADDRESS?}"

install -d -m 700 "$ETC_DIR" "$STACKS_DIR"

gwbridge_exists() {
  docker network inspect docker_gwbridge >/dev/null 2>&1
}

gwbridge_subnet() {
  docker network inspect docker_gwbridge --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}' 2>/dev/null || true
}

swarm_state=$(docker info --format '{{.Swarm.LocalNodeState}}/{{.Swarm.ControlAvailable}}')
if [[ $swarm_state == active/true ]]; then
  current=$(gwbridge_subnet)
  if [[ $current != "$SWARM_SUBNET" ]]; then
    log "This swarm's docker_gwbridge uses ${current:-no subnet}, the config says ${SWARM_SUBNET}."
    log "Set swarmSubnet back to ${current}, or rebuild the swarm (docker swarm leave --force) first."
    exit 1
  fi
  log "Already a swarm manager with docker_gwbridge on ${SWARM_SUBNET}"
  exit 0
fi

if gwbridge_exists && [[ $(gwbridge_subnet) != "$SWARM_SUBNET" ]]; then
  log "Removing docker_gwbridge with subnet $(gwbridge_subnet) (not part of a swarm yet)"
  docker network rm docker_gwbridge >/dev/null
fi
if ! gwbridge_exists; then
  log "Creating docker_gwbridge on ${SWARM_SUBNET} (gateway ${SWARM_GATEWAY})"
  # The options Docker itself gives docker_gwbridge: no traffic between containers over this
  # bridge, masquerading for outbound traffic.
  docker network create \
    --driver bridge \
    --subnet "$SWARM_SUBNET" \
    --gateway "$SWARM_GATEWAY" \
    --opt com.docker.network.bridge.name=docker_gwbridge \
    --opt com.docker.network.bridge.enable_icc=false \
    --opt com.docker.network.bridge.enable_ip_masquerade=true \
    docker_gwbridge >/dev/null
fi

advertise=$ADVERTISE_ADDRESS
if [[ -z $advertise ]]; then
  # A routing table lookup only: no packet is sent.
  advertise=$(ip -4 route get 192.0.2.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')
fi
log "Initialising the swarm, advertising ${advertise}"
docker swarm init --advertise-addr "$advertise" >/dev/null
log "Swarm manager ready"
