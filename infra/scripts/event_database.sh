#!/usr/bin/env bash
# The event's database and its role of the same name, owned by that role, with the role's password
# (re)set: creates what is missing, changes nothing else. Nobody but the role may connect to it.
# Parameters: DATABASE. stdin: the role's password.
set -euo pipefail
: "${DATABASE:?}"

# psql runs as the postgres user and reads the password from this file by itself (the password
# is never part of a command line or of the SQL text sent by this script).
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
read_secret_to_file "$workdir/password"
chown -R postgres: "$workdir"

runuser -u postgres -- psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --dbname postgres \
  -v database="$DATABASE" -v password_file="$workdir/password" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'database')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'database') \gexec
\set password `cat :'password_file'`
ALTER ROLE :"database" WITH LOGIN PASSWORD :'password';
\unset password
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'database')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"database";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
log "Database and role $DATABASE are ready"
