#!/usr/bin/env bash
# django-swarm-backup: each event's database and uploaded files, as one restic snapshot per event.
# Installed by the host's backup step (scripts/host_backup.sh) with its settings in ENV_FILE; run
# on schedule by django-swarm-backup.timer, and by every migration step before it migrates.
#
#   django-swarm-backup run [EVENT...]            back up every deployed event (or those named),
#                                                 then apply the retention policy
#   django-swarm-backup pre-migrate EVENT RELEASE the snapshot before RELEASE's migrations (none
#                                                 while the database has no table yet)
#   django-swarm-backup status                    the latest snapshot of each event, and the timer
#
# A snapshot holds <DATA_DIR>/backup-work/stage/<event>/database.dump (pg_dump -Fc, uncompressed
# so that restic's deduplication and compression work across days) and <DATA_DIR>/media/<event>.
# Tags: event=<event>, then "scheduled", or "pre-migrate" and release=<release>.
set -euo pipefail
ENV_FILE=${DJANGO_SWARM_BACKUP_ENV:-/etc/django-swarm/backup.env}
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
: "${RESTIC_REPOSITORY:?}" "${RESTIC_PASSWORD_FILE:?}" "${DATA_DIR:?}" "${STACKS_DIR:?}"
: "${KEEP_DAILY:?}" "${KEEP_WEEKLY:?}" "${KEEP_MONTHLY:?}" "${KEEP_PRE_MIGRATE:?}"
# One history whatever the server's host name: a new droplet continues it.
HOST_TAG=django-swarm

log() {
  printf '==> %s\n' "$*" >&2
}

database_of() {
  printf 'ev_%s' "${1//-/_}"
}

deployed_events() {
  local file
  for file in "$STACKS_DIR"/*.yml; do
    [[ -e $file ]] && basename "$file" .yml
  done
  return 0
}

# snapshot EVENT TAG...: dump the database, then one restic snapshot of the dump and the media.
snapshot() {
  local event=$1 database stage
  shift
  database=$(database_of "$event")
  stage=$DATA_DIR/backup-work/stage/$event
  rm -rf "$stage"
  install -d -m 700 "$stage"
  runuser -u postgres -- pg_dump --format=custom --compress=0 "$database" >"$stage/database.dump"
  local paths=("$stage/database.dump")
  if [[ -d $DATA_DIR/media/$event ]]; then
    paths+=("$DATA_DIR/media/$event")
  fi
  local tags=(--tag "event=$event")
  local tag
  for tag in "$@"; do
    tags+=(--tag "$tag")
  done
  restic backup --quiet --host "$HOST_TAG" "${tags[@]}" "${paths[@]}"
  rm -rf "$stage"
}

has_tables() {
  local count
  count=$(runuser -u postgres -- psql --no-psqlrc -Atq --dbname "$(database_of "$1")" \
    -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
  [[ $count != 0 ]]
}

run() {
  local events=("$@") event failed=()
  if [[ ${#events[@]} -eq 0 ]]; then
    mapfile -t events < <(deployed_events)
  fi
  for event in "${events[@]}"; do
    log "Backing up $event"
    if ! snapshot "$event" scheduled; then
      log "Backup of $event FAILED"
      failed+=("$event")
      continue
    fi
    restic forget --quiet --host "$HOST_TAG" --tag "event=$event,scheduled" --group-by host \
      --keep-daily "$KEEP_DAILY" --keep-weekly "$KEEP_WEEKLY" --keep-monthly "$KEEP_MONTHLY"
    restic forget --quiet --host "$HOST_TAG" --tag "event=$event,pre-migrate" --group-by host \
      --keep-last "$KEEP_PRE_MIGRATE"
  done
  restic prune --quiet
  if [[ ${#failed[@]} -gt 0 ]]; then
    log "Backups FAILED for: ${failed[*]} (see the lines above; journalctl -u django-swarm-backup)"
    return 1
  fi
  log "Backed up: ${events[*]:-no event}"
}

status() {
  local event
  for event in $(deployed_events); do
    printf '%s: latest backups\n' "$event"
    restic snapshots --compact --host "$HOST_TAG" --tag "event=$event" --latest 3
  done
  systemctl list-timers --no-pager django-swarm-backup.timer
  systemctl status --no-pager --lines=5 django-swarm-backup.service || true
}

case ${1:-} in
  run)
    shift
    run "$@"
    ;;
  pre-migrate)
    [[ $# -eq 3 ]] || { log "usage: django-swarm-backup pre-migrate EVENT RELEASE"; exit 2; }
    if has_tables "$2"; then
      log "Snapshot of $2 before the migrations of release $3"
      snapshot "$2" pre-migrate "release=$3"
    else
      log "The database of $2 has no table yet: no snapshot before its first migrations"
    fi
    ;;
  status) status ;;
  *)
    log "usage: django-swarm-backup run [EVENT...] | pre-migrate EVENT RELEASE | status"
    exit 2
    ;;
esac
