#!/usr/bin/env bash
# Undo step 4's configuration on `pulumi destroy`. The data stays where it is (on the volume,
# or in /var/lib/postgresql): deleting databases is the event steps' decision, per event.

version=$(pg_main_version)
conf_dir=/etc/postgresql/$version/main
systemctl disable --now -q django-swarm-postgres-listen.timer 2>/dev/null || true
rm -f /etc/systemd/system/django-swarm-postgres-listen.{service,timer}
rm -f "$conf_dir/conf.d/django-swarm.conf" /etc/systemd/system/postgresql@.service.d/django-swarm.conf
if replace_file "$conf_dir/pg_hba.conf" 640 postgres:postgres <<EOC; then
$(sed '/^# BEGIN django-swarm/,/^# END django-swarm/d' "$conf_dir/pg_hba.conf")
EOC
  log "Removed the swarm subnet from pg_hba.conf"
fi
systemctl daemon-reload
systemctl restart "postgresql@$version-main"
log "PostgreSQL back to local connections only"
