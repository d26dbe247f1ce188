#!/usr/bin/env bash
# Undo step 3 on `pulumi destroy` (or when the volume leaves the config), before DigitalOcean
# detaches the volume: PostgreSQL, whose data is on it, stops first, then the filesystem is
# unmounted, so the detach finds it clean. The data stays on the volume.
: "${VOLUME_DEVICE:?}" "${MOUNT_POINT:?}"

if mountpoint -q "$MOUNT_POINT"; then
  for unit in $(systemctl list-units --plain --no-legend 'postgresql@*' | awk '{ print $1 }'); do
    log "Stopping ${unit}: its data is on the volume"
    systemctl stop "$unit"
  done
  sync -f "$MOUNT_POINT"
  umount "$MOUNT_POINT"
fi
sed -i "\\#^${VOLUME_DEVICE} #d" /etc/fstab
systemctl daemon-reload
log "Volume ${VOLUME_DEVICE} unmounted from ${MOUNT_POINT}; it can be detached"
