#!/usr/bin/env bash
# Step 4: PostgreSQL for the event sites. Data on the volume when there is one; listening on
# localhost and on docker_gwbridge's gateway; scram logins from the swarm subnet only, each
# event role only to the database of the same name (the event steps create both). Also on the
# manager's PRIVATE_ADDRESS, for the workers, each admitted by its own step (worker_postgres.sh).
: "${SWARM_SUBNET:?}" "${SWARM_GATEWAY:?}" "${WAIT_FOR_GATEWAY_SECONDS:?}"
# A droplet's VPC address always; your own server's advertiseAddress while it has workers; else
# empty (host.py).
: "${PRIVATE_ADDRESS?}"
# Empty PG_DATA_ROOT means: keep the data directory where Debian puts it.
: "${PG_DATA_ROOT?}"

version=$(pg_main_version)
if [[ -z $version ]]; then
  log "No PostgreSQL cluster 'main' found (pg_lsclusters); reinstall the postgresql package"
  exit 1
fi
conf_dir=/etc/postgresql/$version/main
unit=postgresql@$version-main
restart=0 reload=0

if [[ -n $PG_DATA_ROOT ]]; then
  target=$PG_DATA_ROOT/postgresql/$version/main
  for found in "$PG_DATA_ROOT"/postgresql/*/main/PG_VERSION; do
    if [[ -f $found && $(<"$found") != "$version" ]]; then
      log "The volume holds data of PostgreSQL $(<"$found") (${found%/PG_VERSION}), this server runs ${version}."
      log "Upgrade that data with pg_upgradecluster before deploying; nothing was changed."
      exit 1
    fi
  done
  current=$(pg_conftool -s "$version" main show data_directory)
  if [[ $current != "$target" ]]; then
    systemctl stop "$unit"
    if [[ -f $target/PG_VERSION ]]; then
      # A replaced droplet: the volume brings every event's data back.
      log "Using the existing data on the volume: ${target}"
    else
      log "Moving the new cluster's data to the volume: ${target}"
      copy_dir_whole "$current" "$target"
    fi
    # The postgres user's id may differ on a new droplet: the data must be its own.
    chown -R postgres:postgres "$PG_DATA_ROOT/postgresql"
    chmod 700 "$target"
    pg_conftool "$version" main set data_directory "$target"
    restart=1
  fi
fi

if replace_file "$conf_dir/conf.d/django-swarm.conf" 644 postgres:postgres <<EOC; then
# Managed by django-swarm (Pulumi): changes here are overwritten.
listen_addresses = 'localhost,${SWARM_GATEWAY}${PRIVATE_ADDRESS:+,$PRIVATE_ADDRESS}'
password_encryption = 'scram-sha-256'
EOC
  restart=1
fi

hba=$conf_dir/pg_hba.conf
if replace_file "$hba" 640 postgres:postgres <<EOC; then
$(sed '/^# BEGIN django-swarm/,/^# END django-swarm/d' "$hba")
# BEGIN django-swarm (managed by Pulumi): event containers, each role only to its own database
host sameuser all ${SWARM_SUBNET} scram-sha-256
# END django-swarm
EOC
  # PostgreSQL rereads pg_hba.conf on a reload, which drops no connection.
  reload=1
fi

# After a reboot PostgreSQL may start before Docker has recreated docker_gwbridge, and then
# cannot listen on its gateway. Order PostgreSQL after Docker and wait (bounded) for the
# address; if it never comes, start anyway so that local logins still work.
# (net.ipv4.ip_nonlocal_bind would also do, but /proc/sys is read-only inside containers.)
# With the data on a volume (mounted "nofail"), PostgreSQL must also wait for that mount, and
# not start at all without it rather than on an empty mount point.
dropin=/etc/systemd/system/postgresql@.service.d/django-swarm.conf
mkdir -p "${dropin%/*}"
if replace_file "$dropin" 644 <<EOC; then
# Managed by django-swarm (Pulumi): listen on docker_gwbridge's gateway after a reboot too.
[Unit]
After=docker.service
Wants=docker.service
${PG_DATA_ROOT:+RequiresMountsFor=${PG_DATA_ROOT}}

[Service]
ExecStartPre=/bin/sh -c 'for i in \$\$(seq ${WAIT_FOR_GATEWAY_SECONDS}); do ip -4 -o address show to ${SWARM_GATEWAY} | grep -q . && exit 0; sleep 1; done; echo "docker_gwbridge gateway ${SWARM_GATEWAY} missing; listening on localhost only" >&2'
EOC
  restart=1
fi

# If the gateway came later than that wait, PostgreSQL listens on localhost only and the sites
# cannot reach it: this timer restarts it once the gateway is there, at any time. It asks the
# kernel for the listening socket, not PostgreSQL for a connection: a server too busy to answer
# within pg_isready's seconds, or one with every connection taken, still listens, and restarting
# it would cut every event off (it did, under a code change of 8 events on 1 GB).
check=django-swarm-postgres-listen
replace_file "/etc/systemd/system/$check.service" 644 <<EOC || true
# Managed by django-swarm (Pulumi).
[Unit]
Description=django-swarm: restart PostgreSQL if it misses docker_gwbridge's gateway ${SWARM_GATEWAY}
After=${unit}.service docker.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'ip -4 -o address show to ${SWARM_GATEWAY} | grep -q . || exit 0; systemctl is-active -q ${unit} || exit 0; ss -Hltn src ${SWARM_GATEWAY}:5432 | grep -q . && exit 0; echo "PostgreSQL does not listen on ${SWARM_GATEWAY}: restarting ${unit}"; systemctl restart ${unit}'
EOC
replace_file "/etc/systemd/system/$check.timer" 644 <<EOC || true
# Managed by django-swarm (Pulumi).
[Unit]
Description=django-swarm: check every 30 s that PostgreSQL listens on ${SWARM_GATEWAY}

[Timer]
OnBootSec=30s
OnUnitActiveSec=30s

[Install]
WantedBy=timers.target
EOC
# Loads the drop-in above, if it changed, along with these units.
systemctl daemon-reload
systemctl enable --now -q "$check.timer"

if [[ $restart == 1 ]]; then
  log "Restarting PostgreSQL ${version}"
  systemctl restart "$unit"
else
  systemctl start "$unit"
  if [[ $reload == 1 ]]; then
    log "Reloading PostgreSQL ${version}: the clients it admits changed"
    systemctl reload "$unit"
  fi
fi
log "Waiting for PostgreSQL on ${SWARM_GATEWAY}:5432"
for _ in $(seq 30); do
  pg_isready -q -h "$SWARM_GATEWAY" -p 5432 && break
  sleep 1
done
if ! pg_isready -h "$SWARM_GATEWAY" -p 5432 >&2; then
  log "PostgreSQL does not answer on ${SWARM_GATEWAY}:5432; see journalctl -u ${unit}"
  exit 1
fi
log "PostgreSQL ${version} ready on localhost and ${SWARM_GATEWAY}"
