#!/usr/bin/env bash
# Drops the event's database and role: every visit counted is lost. Runs only for events whose
# config says dropDatabaseOnDelete: true.
# Parameters: DATABASE.
set -euo pipefail
: "${DATABASE:?}"

runuser -u postgres -- psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --dbname postgres \
  -v database="$DATABASE" >/dev/null <<'SQL'
DROP DATABASE IF EXISTS :"database" WITH (FORCE);
DROP ROLE IF EXISTS :"database";
SQL
log "Dropped database and role $DATABASE"
