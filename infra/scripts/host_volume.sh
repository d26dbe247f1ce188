#!/usr/bin/env bash
# Mount the block-storage volume that holds PostgreSQL's data, by its stable device name, at
# the path DigitalOcean's own automount would use (so the two never disagree), also at boot.
: "${VOLUME_DEVICE:?}" "${MOUNT_POINT:?}"

log "Waiting for the volume ${VOLUME_DEVICE}"
for _ in $(seq 120); do
  [[ -b $VOLUME_DEVICE ]] && break
  sleep 1
done
if [[ ! -b $VOLUME_DEVICE ]]; then
  log "The volume ${VOLUME_DEVICE} did not appear; check the volume attachment in DigitalOcean"
  exit 1
fi

mkdir -p "$MOUNT_POINT"
if ! grep -qsF "$VOLUME_DEVICE " /etc/fstab; then
  # nofail: a missing volume must not stop the server from booting (and being repaired).
  printf '%s %s ext4 defaults,nofail,discard,noatime 0 2\n' "$VOLUME_DEVICE" "$MOUNT_POINT" >>/etc/fstab
  systemctl daemon-reload
fi
if ! mountpoint -q "$MOUNT_POINT"; then
  mount "$MOUNT_POINT"
fi
log "Volume mounted at ${MOUNT_POINT}"
