#!/usr/bin/env bash
# On the manager, once a removed worker has been drained and has left the swarm: PostgreSQL no
# longer admits its address (worker_postgres.sh).
: "${WORKER:?}"

version=$(pg_main_version)
if [[ -z $version ]]; then
  log "No PostgreSQL cluster 'main' here: nothing admits worker $WORKER"
  exit 0
fi
if set_pg_hba_line "/etc/postgresql/$version/main/pg_hba.conf" "django-swarm worker '$WORKER'"; then
  log "PostgreSQL no longer admits worker $WORKER"
  systemctl reload "postgresql@$version-main"
fi
