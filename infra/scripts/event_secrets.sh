#!/usr/bin/env bash
# The event's swarm secrets. Swarm secrets cannot change, so each value has its own versioned name:
# a rotated value creates a new secret next to the one the running version uses; the stack step
# removes the old one once the new version serves.
# Parameters: EVENT, SECRET_KEY_SECRET, DB_PASSWORD_SECRET, ADMIN_PASSWORD_SECRET.
# stdin: the Django secret key, the database password, then the administrator's password.
set -euo pipefail
: "${EVENT:?}" "${SECRET_KEY_SECRET:?}" "${DB_PASSWORD_SECRET:?}" "${ADMIN_PASSWORD_SECRET:?}"

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
read_secret_to_file "$workdir/secret_key"
read_secret_to_file "$workdir/db_password"
read_secret_to_file "$workdir/admin_password"

ensure_secret() {
  local name=$1 file=$2
  if docker secret inspect "$name" >/dev/null 2>&1; then
    log "Swarm secret $name exists"
  else
    docker secret create --label "django-swarm.event=$EVENT" "$name" "$file" >/dev/null
    log "Created swarm secret $name"
  fi
}
ensure_secret "$SECRET_KEY_SECRET" "$workdir/secret_key"
ensure_secret "$DB_PASSWORD_SECRET" "$workdir/db_password"
ensure_secret "$ADMIN_PASSWORD_SECRET" "$workdir/admin_password"
