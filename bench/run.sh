#!/usr/bin/env bash
# End-to-end benchmark of one event site, on loopback only:
#   private PostgreSQL  <-  gunicorn in the site's image (app/Dockerfile, production defaults)
#   <-  Nginx stripping /bench  <-  wrk driving GET /bench/ for a fixed time at a fixed
# concurrency, then pgbench running the site's own increment statement on the same server as the
# ceiling. Prints req/s, p50/p99 latency, lost hits (must be 0), gunicorn memory and CPU per
# request, how busy the machine was, and the ratio req/s / pgbench tps. Run as root from anywhere
# (needs Docker, .venv, PostgreSQL binaries, nginx, wrk):
#   bash bench/run.sh            DURATION=30 CONNECTIONS=64 bash bench/run.sh
# The image is built from app/ with BASE_IMAGE as its base (the Dockerfile's default when unset;
# machines that cannot pull from Docker Hub use the one tests/setup_machine.sh builds):
#   BASE_IMAGE=django-swarm/python-base:trixie bash bench/run.sh
# BENCH_APP=bare serves bench/bare_counter.py instead of the site: the same statement and gunicorn
# settings without Django, to see what Django costs per visit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-20}          # seconds, for wrk and for pgbench
CONNECTIONS=${CONNECTIONS:-32}    # concurrent HTTP connections (wrk)
WRK_THREADS=${WRK_THREADS:-2}
PREFIX=/bench
PYTHON=$PWD/.venv/bin/python
IMAGE=django-swarm/app:bench
BENCH_APP=${BENCH_APP:-site}
# Issue 24's yardstick: pgbench with 4 clients (besides as many as wrk has connections, and as
# many as the site holds database connections).
PGBENCH_CLIENTS=4

case $BENCH_APP in
  site) app_mounts=() app_args=() serving="the site" ;;
  bare)
    app_mounts=(-v "$PWD/bench/bare_counter.py:/bench/bare_counter.py:ro")
    app_args=(--pythonpath /bench bare_counter:application)
    serving="bench/bare_counter.py (no Django)"
    ;;
  *) echo "BENCH_APP must be site or bare, got '$BENCH_APP'" >&2 && exit 2 ;;
esac

log() { printf '==> %s\n' "$*" >&2; }
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin | sort -V | tail -n 1)
work=$(mktemp -d /tmp/app-bench.XXXXXX)
chmod 755 "$work"
chown postgres: "$work"
pids=()
container=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -n $container ]]; then docker rm -f "$container" >/dev/null 2>&1 || true; fi
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

pg_port=$(free_port)
app_port=$(free_port)
nginx_port=$(free_port)

log "PostgreSQL $(basename "$(dirname "$pg_bin")") on 127.0.0.1:${pg_port}"
# The password travels in files only (mode 600), never on a command line.
"$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$work/db_password"
"$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(50))' >"$work/secret_key"
chown postgres: "$work/db_password"
chmod 600 "$work/db_password" "$work/secret_key"
runuser -u postgres -- "$pg_bin/initdb" -D "$work/pgdata" -U postgres -A scram-sha-256 \
  --pwfile="$work/db_password" >/dev/null
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pgdata" -l "$work/postgres.log" -w \
  -o "-p ${pg_port} -c listen_addresses=127.0.0.1 -k ${work}" start >/dev/null
printf '127.0.0.1:%s:postgres:postgres:%s\n' "$pg_port" "$(cat "$work/db_password")" >"$work/pgpass"
chmod 600 "$work/pgpass"
export PGPASSFILE=$work/pgpass

log "Building the site's image (app/Dockerfile${BASE_IMAGE:+, BASE_IMAGE=$BASE_IMAGE}) as $IMAGE"
if ! docker build -q ${BASE_IMAGE:+--build-arg "BASE_IMAGE=$BASE_IMAGE"} -t "$IMAGE" app \
  >/dev/null 2>"$work/build.log"; then
  cat "$work/build.log" >&2
  exit 1
fi

# The site reads its secrets from files, as from swarm secrets; the site's user (uid 10001) owns
# them. The container shares the host's network to reach PostgreSQL and binds loopback only.
mkdir -m 700 "$work/secrets"
cp "$work/secret_key" "$work/db_password" "$work/secrets/"
chown -R 10001 "$work/secrets"
site_env=(-e SECRET_KEY_FILE=/run/secrets/secret_key -e DB_PASSWORD_FILE=/run/secrets/db_password
  -e DB_NAME=postgres -e DB_USER=postgres -e DB_HOST=127.0.0.1 -e "DB_PORT=$pg_port"
  -e "ALLOWED_HOSTS=127.0.0.1,localhost" -e "URL_PREFIX=$PREFIX")
for name in GUNICORN_WORKER_CLASS GUNICORN_WORKERS GUNICORN_THREADS; do
  if [[ -n ${!name:-} ]]; then site_env+=(-e "$name=${!name}"); fi
done
docker run --rm --network host -v "$work/secrets:/run/secrets:ro" "${site_env[@]}" "$IMAGE" \
  python manage.py migrate_locked --verbosity 0

log "gunicorn in $IMAGE serving ${serving} (gunicorn.conf.py: ${GUNICORN_WORKER_CLASS:-gthread}, workers=${GUNICORN_WORKERS:-1}, threads=${GUNICORN_THREADS:-2}) on 127.0.0.1:${app_port}"
container=$(docker run -d --network host -v "$work/secrets:/run/secrets:ro" "${app_mounts[@]}" \
  "${site_env[@]}" "$IMAGE" \
  gunicorn --config /app/gunicorn.conf.py --bind "127.0.0.1:${app_port}" "${app_args[@]}")
# gunicorn's master is the container's first process; its host PID is what /proc knows.
gunicorn_pid=$(docker inspect -f '{{.State.Pid}}' "$container")
# Each access line, as Docker's log driver keeps it (stdout only: gunicorn's own log is stderr).
answered_visits() { docker logs "$container" 2>/dev/null | grep -c '"GET / HTTP/1.[01]" 200' || true; }

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream site { server 127.0.0.1:${app_port}; keepalive 16; }
    server {
        listen 127.0.0.1:${nginx_port};
        location ${PREFIX}/ {
            proxy_pass http://site/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=("$!")

url=http://127.0.0.1:${nginx_port}${PREFIX}/
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "${url}healthz" 2>/dev/null && break
  sleep 0.2
done
if ! curl -fsS -o /dev/null "${url}healthz"; then
  docker logs "$container" >&2
  exit 1
fi

log "Warm-up, then wrk: ${CONNECTIONS} connections, ${WRK_THREADS} threads, ${DURATION} s on GET ${PREFIX}/"
wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d 3s "$url" >/dev/null
gunicorn_pids=$(pgrep -d ' ' -P "$gunicorn_pid" || true)
# CPU seconds the gunicorn processes used (utime + stime): per request, it does not depend on how
# busy the rest of the machine is.
gunicorn_cpu_ticks() {
  local pid
  for pid in $gunicorn_pid $gunicorn_pids; do cut -d ' ' -f 14,15 "/proc/$pid/stat"; done |
    awk '{t+=$1+$2} END {print t}'
}
# The machine's busy and idle time (ticks, /proc/stat's first line): whether wrk's load left
# cores idle, or the machine was the limit.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat; }
answered_before=$(answered_visits)
ticks_before=$(gunicorn_cpu_ticks)
read -r busy_before idle_before < <(machine_ticks)
wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency "$url" >"$work/wrk.txt"
read -r busy_after idle_after < <(machine_ticks)
machine_busy=$(((busy_after - busy_before) * 100 / (busy_after - busy_before + idle_after - idle_before)))
sleep 1 # requests wrk abandoned at the deadline still finish on the server
cpu_ms_per_request=$(awk -v t="$(($(gunicorn_cpu_ticks) - ticks_before))" -v hz="$(getconf CLK_TCK)" \
  -v n="$(($(answered_visits) - answered_before))" \
  'BEGIN {printf "%.3f", t * 1000 / hz / n}')
read -r rss_kb pss_kb < <(
  for pid in $gunicorn_pid $gunicorn_pids; do
    awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {print r, p}' "/proc/$pid/smaps_rollup"
  done | awk '{r+=$1; p+=$2} END {print r, p}'
)

count=$("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -Atc \
  "SELECT hits FROM hits_counter WHERE name = 'site'")
answered=$(answered_visits)

cat >"$work/increment.sql" <<'EOF'
INSERT INTO hits_counter (name, hits) VALUES ('pgbench', 1) ON CONFLICT (name) DO UPDATE SET hits = hits_counter.hits + 1 RETURNING hits;
EOF
# The ceiling: the site's own increment statement straight into PostgreSQL, with as many clients
# as wrk has connections (the same load shape), as many as the site holds database connections
# (one per gunicorn thread; more clients on one row mostly wait on its lock), and PGBENCH_CLIENTS.
app_db_connections=$((${GUNICORN_WORKERS:-1} * ${GUNICORN_THREADS:-2}))
for clients in $(printf '%s\n' "$CONNECTIONS" "$app_db_connections" "$PGBENCH_CLIENTS" | sort -nu); do
  log "pgbench: the site's increment statement, ${clients} clients, ${DURATION} s"
  "$pg_bin/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -n -c "$clients" -j 2 \
    -T "$DURATION" -f "$work/increment.sql" postgres >"$work/pgbench-${clients}.txt" 2>&1
done

"$PYTHON" - "$work" "$CONNECTIONS" "$app_db_connections" "$PGBENCH_CLIENTS" "$count" "$answered" \
  "$rss_kb" "$pss_kb" "$cpu_ms_per_request" "$machine_busy" <<'EOF'
import re
import sys

work, wrk_clients, app_clients, yardstick, count, answered, rss_kb, pss_kb, cpu_ms, busy = sys.argv[1:]
wrk = open(f"{work}/wrk.txt").read()


def pgbench_tps(clients):
    text = open(f"{work}/pgbench-{clients}.txt").read()
    return float(re.search(r"tps = ([\d.]+)", text).group(1))



def latency(percentile):
    value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)$", wrk, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
sent = int(re.search(r"(\d+) requests in", wrk).group(1))
failed = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
errors = re.search(r"Socket errors: .*", wrk)
lost = int(answered) - int(count)
print(f"requests/s (wrk, end to end)  {rps:10.1f}")
print(f"latency p50 / p99             {latency(50):10.2f} ms / {latency(99):.2f} ms")
print(f"responses seen by wrk         {sent:10d}  (non-2xx: {failed.group(1) if failed else 0})")
if errors:
    print(f"wrk {errors.group(0)}")
print(f"hits answered by gunicorn     {int(answered):10d}  (incl. warm-up and requests in flight at the deadline)")
print(f"final count in PostgreSQL     {int(count):10d}")
print(f"lost hits                     {lost:10d}  (answered - counted; must be 0)")
print(f"gunicorn memory (all procs)   {int(rss_kb) / 1024:10.1f} MB RSS, {int(pss_kb) / 1024:.1f} MB PSS")
print(f"gunicorn CPU per request      {float(cpu_ms):10.3f} ms")
print(f"machine busy during wrk       {int(busy):10d} %  (every core: wrk, Nginx, gunicorn, PostgreSQL)")
for clients in sorted({int(wrk_clients), int(app_clients), int(yardstick)}):
    tps = pgbench_tps(clients)
    print(f"pgbench increment tps         {tps:10.1f}  ({clients} clients, same server)")
    print(f"ratio req/s / pgbench tps     {rps / tps:10.2f}  (against {clients} clients)")
sys.exit(1 if lost else 0)
EOF
