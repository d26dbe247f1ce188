#!/usr/bin/env bash
# Local base images for the tests, since nothing can be pulled from Docker Hub here:
#   django-swarm/debian:trixie       debootstrap'd Debian 13 (minbase), the box's root and the base below
#   django-swarm/python-base:trixie  + python3 and venv, and this machine's CA bundle so that pip
#                                    inside a build reaches PyPI through the machine's TLS proxy.
# The site's image is built FROM the second as BASE_IMAGE (app/Dockerfile). Safe to run twice:
# images that exist are kept.
set -euo pipefail

DEBIAN_IMAGE=django-swarm/debian:trixie
PYTHON_IMAGE=django-swarm/python-base:trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '==> %s\n' "$*" >&2; }

if ! docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
  log "debootstrap Debian 13 into ${DEBIAN_IMAGE} (about a minute)"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase trixie "$root" "$MIRROR" >/dev/null
  # mktemp -d made the root 700 and the tarball keeps that mode for "/", which no later layer
  # can change: service users (postgres, www-data, the site's user) could not even chdir.
  chmod 755 "$root"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$DEBIAN_IMAGE" >/dev/null
fi

if ! docker image inspect "$PYTHON_IMAGE" >/dev/null 2>&1; then
  log "Building ${PYTHON_IMAGE}"
  ctx=$(mktemp -d)
  cp "$here/python-base.Dockerfile" "$ctx/Dockerfile"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-bundle.crt"
  docker build -q -t "$PYTHON_IMAGE" --build-arg "BASE=$DEBIAN_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
fi
log "Base images ready: ${DEBIAN_IMAGE}, ${PYTHON_IMAGE}"
