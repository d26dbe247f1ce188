#!/usr/bin/env bash
# The one command that sets up and deploys a stack (default: prod), from a laptop or CI.
#   ./deploy.sh            preview, ask, deploy, print the sites' addresses
#   ./deploy.sh --yes      deploy without asking (--help lists the other options)
#   ./deploy.sh --local    try it on this machine: stack local, deployed to a box on Docker
# State: a local file backend (no Pulumi account) unless PULUMI_BACKEND_URL names another one,
# such as a DigitalOcean Space for a team (README, "Sharing the state with a team").
# This script makes .venv; infra/deploy.py does the rest with the Pulumi CLI's engine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

fail() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

command -v pulumi >/dev/null 2>&1 ||
  fail "the Pulumi CLI is not installed: see https://www.pulumi.com/docs/install/ (then run me again)"
command -v python3 >/dev/null 2>&1 || fail "python3 is not installed (3.11 or newer)"

if [[ ! -x .venv/bin/python ]]; then
  log "Creating .venv"
  python3 -m venv .venv
fi
log "Installing the program's dependencies into .venv"
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

exec .venv/bin/python infra/deploy.py "$@"
