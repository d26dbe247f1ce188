#!/usr/bin/env bash
# On the manager, before a worker joins the swarm: admit the worker's address to PostgreSQL, each
# event's role to its own database only (as host_postgres.sh admits the swarm subnet). One line
# of pg_hba.conf per worker, its own step's: when the worker is removed, Pulumi runs this step's
# removal after the drain (worker_node_remove.sh), so the worker's tasks keep their database
# until they have stopped. A reload rereads pg_hba.conf and drops no connection.
: "${WORKER:?}" "${WORKER_ADDRESS:?}"

version=$(pg_main_version)
if set_pg_hba_line "/etc/postgresql/$version/main/pg_hba.conf" "django-swarm worker '$WORKER'" \
  "host sameuser all ${WORKER_ADDRESS}/32 scram-sha-256"; then
  log "PostgreSQL admits worker $WORKER from $WORKER_ADDRESS"
  systemctl reload "postgresql@$version-main"
else
  log "PostgreSQL admits worker $WORKER from $WORKER_ADDRESS already"
fi
