#!/usr/bin/env bash
# Undo the backup step on `pulumi destroy`: no more scheduled backups, no tools, no settings.
# The repository stays (in its bucket, or on the volume): restic's password is the stack's
# resticPassword output.
: "${ENV_FILE:?}" "${PASSWORD_FILE:?}" "${TOOLS_DIR:?}"

systemctl disable --now --quiet django-swarm-backup.timer 2>/dev/null || true
rm -f /etc/systemd/system/django-swarm-backup.service /etc/systemd/system/django-swarm-backup.timer
systemctl daemon-reload
rm -f "$ENV_FILE" "$PASSWORD_FILE" "$TOOLS_DIR/django-swarm-backup" "$TOOLS_DIR/django-swarm-restore"
log "Scheduled backups removed; the repository is kept"
