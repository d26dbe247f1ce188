#!/usr/bin/env bash
# Root-only set-up of a fresh Debian machine for the test command (tests/run_all.sh):
# system packages, a PostgreSQL server with a test role, a running Docker engine, and the Pulumi
# CLI (built from Go modules where none is installed).
# Safe to run twice. .ci/run calls it; developers run it once with sudo.
set -euo pipefail

TEST_DB_USER=${TEST_DB_USER:-swarm_test}
TEST_DB_PASSWORD=${TEST_DB_PASSWORD:-swarm_test}

log() { printf '==> %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  echo "tests/setup_machine.sh installs packages and starts services: run it as root (sudo)." >&2
  exit 1
fi

log "Installing system packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
packages=(debootstrap debian-archive-keyring postgresql postgresql-contrib nginx wrk
  python3-venv ca-certificates curl openssh-client iproute2 procps chromium chromium-driver)
# GitHub's Ubuntu runners ship Docker CE, which docker.io conflicts with (containerd.io):
# install the Debian engine only where none is installed.
if ! command -v dockerd >/dev/null 2>&1; then
  packages+=(docker.io)
fi
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

log "Starting PostgreSQL"
pg_version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
if ! pg_lsclusters --no-header | grep -q "^${pg_version} *main"; then
  pg_createcluster "$pg_version" main >/dev/null
fi
if ! pg_lsclusters --no-header | grep -q "^${pg_version} *main .*online"; then
  pg_ctlcluster "$pg_version" main start
fi
# The test role logs in over TCP on loopback with a password (scram), as the site does.
runuser -u postgres -- psql -qAt -v ON_ERROR_STOP=1 -v user="$TEST_DB_USER" -v pw="$TEST_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER PASSWORD %L', :'user', :'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'user', :'pw') \gexec
SQL

# overlay2 where this machine can mount an overlay (its layers are shared, not copied: every
# box start and image build is much faster), else vfs, which copies every layer but always works
# (some sandboxes refuse overlay mounts).
storage_driver() {
  local dir
  dir=$(mktemp -d)
  mkdir "$dir"/{lower,upper,work,merged}
  if mount -t overlay overlay \
    -o "lowerdir=$dir/lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged" 2>/dev/null; then
    umount "$dir/merged"
    echo overlay2
  else
    echo vfs
  fi
  rm -rf "$dir"
}

log "Starting the Docker engine"
if ! docker info >/dev/null 2>&1; then
  driver=$(storage_driver)
  log "Docker storage driver: ${driver}"
  nohup dockerd --storage-driver="$driver" >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi
if ! docker info >/dev/null 2>&1; then
  echo "The Docker engine did not start; see /var/log/dockerd.log" >&2
  tail -n 20 /var/log/dockerd.log >&2 || true
  exit 1
fi
log "Installing the Pulumi CLI"
bash "$(dirname "${BASH_SOURCE[0]}")/pulumi_cli/install.sh"

# debootstrap needs root: the rehearsal's base images are made here, not by the test command.
bash "$(dirname "${BASH_SOURCE[0]}")/images/build_base_images.sh"

log "Machine ready: PostgreSQL ${pg_version} on 127.0.0.1:5432 (role ${TEST_DB_USER}), Docker $(docker version --format '{{.Server.Version}}') ($(docker info --format '{{.Driver}}')), pulumi $(pulumi version)"
