#!/usr/bin/env bash
# Runs the new image's migrations once, before the new version takes traffic: a one-off swarm job
# (`manage.py migrate_locked` holds a PostgreSQL advisory lock while it migrates), which then
# makes the event's administrator with its generated password (`manage.py ensure_admin`; that
# secret is the job's alone, the site never sees it). The job is
# bounded by MIGRATE_TIMEOUT seconds; when it fails, this step fails with its logs and the
# running version keeps serving untouched. Before it, the event is backed up (unless its database
# has no table yet) as restic snapshot tagged pre-migrate and release=RELEASE, which
# `django-swarm-restore <event> release=<RELEASE>` puts back; no snapshot, no migration. The
# snapshot is bounded by SNAPSHOT_TIMEOUT seconds (restic keeps retrying a bucket it cannot reach).
# Parameters: EVENT, IMAGE, RELEASE, NETWORK, ENV_FILE_TEXT, SECRET_MOUNTS (`--secret` values,
# one per word: the site's secrets and the administrator's password), MIGRATE_TIMEOUT,
# SNAPSHOT_TIMEOUT.
set -euo pipefail
: "${EVENT:?}" "${IMAGE:?}" "${RELEASE:?}" "${NETWORK:?}" "${ENV_FILE_TEXT:?}" \
  "${SECRET_MOUNTS:?}" "${MIGRATE_TIMEOUT:?}" "${SNAPSHOT_TIMEOUT:?}"

job=${EVENT}_migrate
workdir=$(mktemp -d)
cleanup() {
  docker service rm "$job" >/dev/null 2>&1 || true
  rm -rf "$workdir"
}
trap cleanup EXIT
printf '%s' "$ENV_FILE_TEXT" >"$workdir/env"

secret_args=()
for mount in $SECRET_MOUNTS; do
  secret_args+=(--secret "$mount")
done

# The snapshot and the job run one event at a time (lib.sh's start slot), which is free again
# when this step ends.
take_start_slot
snapshot_status=0
timeout "$SNAPSHOT_TIMEOUT" django-swarm-backup pre-migrate "$EVENT" "$RELEASE" || snapshot_status=$?
if ((snapshot_status == 124)); then
  echo "event $EVENT: the snapshot before the migrations did not finish within ${SNAPSHOT_TIMEOUT}s (is the backup bucket reachable? \`django-swarm-backup status\`), so nothing was migrated; the running version keeps serving" >&2
  exit 1
elif ((snapshot_status != 0)); then
  echo "event $EVENT: the snapshot before the migrations failed (above), so nothing was migrated; the running version keeps serving" >&2
  exit 1
fi

# On the event's network, like the site, and on the manager, whose gateway its DB_HOST names. A
# job needs no virtual IP (dnsrr). No health check: the image's one probes gunicorn, which a job
# never starts, and swarm kills unhealthy tasks.
start_job() {
  # A job left behind by an interrupted run, or by a failed attempt, would hold the name.
  docker service rm "$job" >/dev/null 2>&1 || true
  docker service create --quiet --detach \
    --name "$job" \
    --mode replicated-job \
    --constraint node.role==manager \
    --restart-condition none \
    --network "$NETWORK" \
    --endpoint-mode dnsrr \
    --no-healthcheck \
    --with-registry-auth \
    --label "django-swarm.event=$EVENT" \
    --container-label "django-swarm.event=$EVENT" \
    --env-file "$workdir/env" \
    "${secret_args[@]}" \
    --env ADMIN_PASSWORD_FILE=/run/secrets/admin_password \
    "$IMAGE" sh -c 'python manage.py migrate_locked && python manage.py ensure_admin' >/dev/null
}

# The job's output. Bounded: `docker service logs` can stream forever (it never ends for a task
# from before a daemon restart).
job_output() {
  timeout 20 docker service logs --raw --no-trunc "$job" >&2 || true
}

fail() {
  printf 'event %s: %s; the running version keeps serving. Job output:\n' "$EVENT" "$1" >&2
  job_output
  exit 1
}

log "Migrating the database of $EVENT with $IMAGE"
deadline=$((SECONDS + MIGRATE_TIMEOUT))
# A task whose container Docker failed to start (DOCKER_START_FAULT) never ran a migration: the
# job is started again, up to DOCKER_START_ATTEMPTS starts in all, within the same deadline.
for ((attempt = 1; ; attempt++)); do
  start_job
  while :; do
    task=$(docker service ps --no-trunc --format '{{.CurrentState}}|{{.Error}}' "$job" | awk 'NR == 1')
    case ${task%% *} in
      Complete | Failed | Rejected | Shutdown | Orphaned) break ;;
    esac
    if ((SECONDS >= deadline)); then
      fail "migrations did not finish within ${MIGRATE_TIMEOUT}s (${task:-no task})"
    fi
    sleep 2
  done
  [[ ${task%% *} == Complete ]] && break
  if [[ $task == *"$DOCKER_START_FAULT"* ]] && ((attempt < DOCKER_START_ATTEMPTS)); then
    log "event $EVENT: Docker failed to start the migration job's container ($DOCKER_START_FAULT, a passing fault of Docker before 29.4.1); starting it again"
    continue
  fi
  fail "migrations failed (${task})"
done
job_output
log "Migrations of $EVENT applied, administrator ready"
