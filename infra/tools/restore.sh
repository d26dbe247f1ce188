#!/usr/bin/env bash
# django-swarm-restore EVENT [latest | release=<release> | <snapshot id>]
#
# Puts one event back as a backup holds it: its database and its uploaded files. The event's
# site answers 503 (a maintenance page) and its tasks are stopped from before the first change
# until both are back, so it never serves half-restored data; other events are not touched.
# What was there first is kept in <DATA_DIR>/before-restore/<event>-<time>/ (a database dump and
# the media directory). The event must be deployed (its database and service exist): add a
# removed event back and run `pulumi up` first.
set -euo pipefail
ENV_FILE=${DJANGO_SWARM_BACKUP_ENV:-/etc/django-swarm/backup.env}
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
: "${RESTIC_REPOSITORY:?}" "${RESTIC_PASSWORD_FILE:?}" "${DATA_DIR:?}" "${MAINTENANCE_DIR:?}"
: "${SITE_UID:?}"
HOST_TAG=django-swarm

log() {
  printf '==> %s\n' "$*" >&2
}
fail() {
  log "restore of ${event:-?}: $*"
  exit 1
}

[[ $# -ge 1 && $# -le 2 ]] || { log "usage: django-swarm-restore EVENT [latest | release=<release> | <snapshot id>]"; exit 2; }
event=$1 which=${2:-latest}
database=ev_${event//-/_}
service=${event}_web
# With more replicas than one, the event's tasks on the workers (render_event.stack_file).
workers_service=${event}_web-workers

# The snapshot, as JSON: the newest of the event (of a release's pre-migration snapshots with
# release=...), or the one named by its id, which must belong to the event.
case $which in
  latest) found=$(restic snapshots --json --host "$HOST_TAG" --tag "event=$event") ;;
  release=*) found=$(restic snapshots --json --host "$HOST_TAG" --tag "event=$event,pre-migrate,$which") ;;
  *) found=$(restic snapshots --json --host "$HOST_TAG" --tag "event=$event" "$which" 2>/dev/null || echo '[]') ;;
esac
snapshot=$(jq -c 'sort_by(.time) | last // empty' <<<"$found")
[[ -n $snapshot ]] || fail "no snapshot '$which' of this event (django-swarm-backup status lists them)"
id=$(jq -r '.short_id' <<<"$snapshot")
dump_path=$(jq -r '.paths[] | select(endswith("/database.dump"))' <<<"$snapshot")
media_path=$(jq -r --arg e "/media/$event" '.paths[] | select(endswith($e))' <<<"$snapshot")
[[ -n $dump_path ]] || fail "snapshot $id holds no database dump"
if ! runuser -u postgres -- psql --no-psqlrc -Atq -c "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -qx 1; then
  fail "its database $database does not exist: add the event back to the config, run pulumi up, then restore"
fi
replicas=$(docker service inspect "$service" --format '{{.Spec.Mode.Replicated.Replicas}}') ||
  fail "its service $service does not exist: add the event back to the config, run pulumi up, then restore"
workers_replicas=$(docker service inspect "$workers_service" --format '{{.Spec.Mode.Replicated.Replicas}}' 2>/dev/null || true)
log "Restoring $event from snapshot $id ($(jq -r '.time' <<<"$snapshot"))"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
keep=$DATA_DIR/before-restore/$event-$stamp
work=$DATA_DIR/backup-work/restore-$event
rm -rf "$work"
install -d -m 700 "$keep" "$work"
restic dump "$id" "$dump_path" >"$work/database.dump"
if [[ -n $media_path ]]; then
  restic restore --quiet "$id" --target "$work/files" --include "$media_path"
fi

# From here on the site is down; a failure leaves it down, with the reason and what to do.
install -d -m 755 "$MAINTENANCE_DIR"
touch "$MAINTENANCE_DIR/$event"
scale_back="$service=$replicas${workers_replicas:+ $workers_service=$workers_replicas}"
trap 'log "restore of $event did not finish: the site stays in maintenance. What was there is in $keep. Fix the cause and run the restore again, or put the data back by hand, then: docker service scale $scale_back && rm $MAINTENANCE_DIR/$event"' ERR
log "Maintenance on; stopping the tasks of $event"
# shellcheck disable=SC2086 # one NAME=N word per service
docker service scale --detach=false $service=0 ${workers_replicas:+$workers_service=0} >/dev/null

log "Keeping what was there: $keep"
runuser -u postgres -- pg_dump --format=custom "$database" >"$keep/database.dump"

# Into a new database, then swapped in: a restore that fails leaves the old one in place.
restoring=${database}_restoring
runuser -u postgres -- psql --no-psqlrc -q -v ON_ERROR_STOP=1 -v db="$database" -v new="$restoring" >/dev/null <<'SQL'
DROP DATABASE IF EXISTS :"new";
CREATE DATABASE :"new" OWNER :"db";
REVOKE ALL ON DATABASE :"new" FROM PUBLIC;
SQL
runuser -u postgres -- pg_restore --no-owner --role="$database" --single-transaction \
  --exit-on-error --dbname "$restoring" <"$work/database.dump"
runuser -u postgres -- psql --no-psqlrc -q -v ON_ERROR_STOP=1 -v db="$database" -v new="$restoring" -v old="${database}_replaced" >/dev/null <<'SQL'
DROP DATABASE IF EXISTS :"old";
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'db';
ALTER DATABASE :"db" RENAME TO :"old";
ALTER DATABASE :"new" RENAME TO :"db";
DROP DATABASE :"old";
SQL
log "Database $database restored"

media=$DATA_DIR/media/$event
if [[ -d $media ]]; then
  mv -T "$media" "$keep/media"
fi
if [[ -n $media_path && -d $work/files$media_path ]]; then
  mv -T "$work/files$media_path" "$media"
else
  install -d -m 755 "$media"
fi
chown "$SITE_UID:$SITE_UID" "$media"
log "Uploaded files restored: $media"

log "Starting the tasks of $event ($scale_back)"
# shellcheck disable=SC2086 # one NAME=N word per service
docker service scale --detach=false $scale_back >/dev/null
# Maintenance ends once the tasks pass their health check (the site answers), bounded.
for _ in $(seq 120); do
  healthy=$(docker ps -q --filter "label=com.docker.swarm.service.name=$service" --filter health=healthy | wc -l)
  ((healthy >= replicas)) && break
  sleep 1
done
((healthy >= replicas)) || fail "the tasks of $service did not become healthy within 120s: docker service ps $service"
trap - ERR
rm -f "$MAINTENANCE_DIR/$event"
rm -rf "$work"
log "Restored $event from snapshot $id; maintenance off. The data it replaced: $keep"
