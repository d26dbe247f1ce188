#!/usr/bin/env bash
# Step 1: wait until the server has finished booting, so that later steps do not race
# cloud-init (which runs apt on a new droplet) or a half-started systemd.
: "${BOOT_TIMEOUT_SECONDS:?}"

if command -v cloud-init >/dev/null; then
  log "Waiting for cloud-init to finish"
  # Exit status 2 means "finished with recoverable errors": the server is usable.
  status=0
  timeout "$BOOT_TIMEOUT_SECONDS" cloud-init status --wait >/dev/null || status=$?
  if [[ $status -ne 0 && $status -ne 2 ]]; then
    log "cloud-init did not finish cleanly (exit status $status); see /var/log/cloud-init-output.log"
    exit 1
  fi
fi

log "Waiting for systemd to finish starting up"
# "degraded" (some unit failed) still means start-up is over; later steps check their services.
state=$(timeout "$BOOT_TIMEOUT_SECONDS" systemctl is-system-running --wait || true)
log "System state: ${state:-unknown}"

# shellcheck source=/dev/null
. /etc/os-release
if [[ ${ID:-} != debian ]]; then
  log "This server runs ${PRETTY_NAME:-an unknown system}; django-swarm supports Debian only"
  exit 1
fi
log "Server ready: ${PRETTY_NAME}"
