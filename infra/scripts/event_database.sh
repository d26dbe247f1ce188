#!/usr/bin/env bash
# The event's database and its role of the same name, owned by that role, with the role's password
# (re)set: creates what is missing, changes nothing else. Nobody but the role may connect to it.
# Parameters: DATABASE. stdin: the SCRAM-SHA-256 verifier of the role's password, never the
# password itself: PostgreSQL stores a verifier as it is, and if the statement fails, its log
# shows the verifier, from which the password cannot be read.
set -euo pipefail
: "${DATABASE:?}"

# psql runs as the postgres user and reads the verifier from this file by itself (it is never
# part of a command line).
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
read_secret_to_file "$workdir/verifier"
if [[ $(head -c 14 "$workdir/verifier") != 'SCRAM-SHA-256$' ]]; then
  echo "database $DATABASE: stdin is not a SCRAM-SHA-256 verifier; refusing to send it to PostgreSQL" >&2
  exit 1
fi
chown -R postgres: "$workdir"

runuser -u postgres -- psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --dbname postgres \
  -v database="$DATABASE" -v verifier_file="$workdir/verifier" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'database')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'database') \gexec
\set verifier `cat :'verifier_file'`
ALTER ROLE :"database" WITH LOGIN PASSWORD :'verifier';
\unset verifier
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'database')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"database";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
log "Database and role $DATABASE are ready"
