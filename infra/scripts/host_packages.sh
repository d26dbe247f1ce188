#!/usr/bin/env bash
# Step 2: the distribution's packages for Docker, PostgreSQL and Nginx (and certbot with TLS),
# each service enabled at boot. A worker (ROLE=worker) runs tasks only: Docker, and curl to join.
: "${INSTALL_CERTBOT:?}" "${ROLE:?}"

export DEBIAN_FRONTEND=noninteractive
# Another apt run (unattended-upgrades on a fresh droplet) may hold the lock for a while.
apt_get() {
  apt-get -o DPkg::Lock::Timeout=600 -q "$@" >&2
}

if [[ $ROLE == worker ]]; then
  packages=(docker.io iproute2 ca-certificates unattended-upgrades curl)
  services=(docker)
else
  # restic and jq: the backup tools (host_backup.sh).
  packages=(docker.io postgresql nginx iproute2 ca-certificates unattended-upgrades restic jq)
  services=(docker postgresql nginx)
fi
log "Updating the package lists"
apt_get update
# From Debian 13 on, the docker CLI is its own package; before, docker.io contains it.
if apt-cache show docker-cli >/dev/null 2>&1; then
  packages+=(docker-cli)
fi
if [[ $INSTALL_CERTBOT == 1 ]]; then
  packages+=(certbot)
fi
log "Installing ${packages[*]}"
apt_get install -y --no-install-recommends "${packages[@]}"

for service in "${services[@]}"; do
  systemctl enable --now "$service"
done
log "Packages installed; ${services[*]} enabled at boot"
