#!/usr/bin/env bash
# After the media directory: backups with restic. Installs the tools django-swarm-backup and
# django-swarm-restore (infra/tools), their settings (ENV_FILE, mode 600, with the bucket's
# secret key) and restic's password (PASSWORD_FILE, mode 600), a systemd timer that backs every
# event up on SCHEDULE, and creates the repository if it does not exist yet.
: "${ENV_FILE:?}" "${ENV_TEXT:?}" "${PASSWORD_FILE:?}" "${TOOLS_DIR:?}" "${BACKUP_TOOL:?}"
: "${RESTORE_TOOL:?}" "${SERVICE_UNIT:?}" "${TIMER_UNIT:?}" "${SCHEDULE:?}" "${MAINTENANCE_DIR:?}"
# Empty LOCAL_REPOSITORY: the repository is a bucket; else its directory on this server.
: "${LOCAL_REPOSITORY?}"
# stdin: restic's password, then the bucket's secret access key (empty without a bucket).

if ! systemd-analyze calendar "$SCHEDULE" >/dev/null 2>&1; then
  log "backups.schedule '$SCHEDULE' is not a systemd calendar expression (see: man systemd.time)"
  exit 1
fi

install -d -m 700 "${ENV_FILE%/*}"
read_secret_to_file "$PASSWORD_FILE.new"
mv -f "$PASSWORD_FILE.new" "$PASSWORD_FILE"
secret_key=$(read_secret)
# %q below: the file is sourced by bash, so the value is quoted as bash reads it back.
{
  printf '%s' "$ENV_TEXT"
  if [[ -n $secret_key ]]; then
    printf 'AWS_SECRET_ACCESS_KEY=%q\n' "$secret_key"
  fi
} | replace_file "$ENV_FILE" 600 || true
unset secret_key

replace_file "$TOOLS_DIR/django-swarm-backup" 755 <<<"$BACKUP_TOOL" || true
replace_file "$TOOLS_DIR/django-swarm-restore" 755 <<<"$RESTORE_TOOL" || true
install -d -m 755 "$MAINTENANCE_DIR"
if [[ -n $LOCAL_REPOSITORY ]]; then
  install -d -m 700 "$LOCAL_REPOSITORY"
fi

# `restic init` first: it creates a missing bucket too, where `restic cat config` would retry for
# many minutes; a repository that is there already stays as it is. Then the repository must open
# with this stack's password. Any other error (credentials, network) stops the step with restic's
# words, after at most 5 minutes each.
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
if created=$(timeout 300 restic init 2>&1); then
  log "Created the backup repository $RESTIC_REPOSITORY"
elif [[ $created != *"already initialized"* && $created != *"already exists"* ]]; then
  log "The backup repository $RESTIC_REPOSITORY cannot be created or opened:"
  log "$created"
  exit 1
fi
if ! errors=$(timeout 300 restic cat config 2>&1 >/dev/null); then
  log "The backup repository $RESTIC_REPOSITORY cannot be opened:"
  log "$errors"
  exit 1
fi

changed=0
replace_file /etc/systemd/system/django-swarm-backup.service 644 <<<"$SERVICE_UNIT" && changed=1
replace_file /etc/systemd/system/django-swarm-backup.timer 644 <<<"$TIMER_UNIT" && changed=1
if [[ $changed == 1 ]]; then
  systemctl daemon-reload
fi
systemctl enable --quiet django-swarm-backup.timer
systemctl restart django-swarm-backup.timer
log "Backups to $RESTIC_REPOSITORY on '$SCHEDULE' (django-swarm-backup status)"
