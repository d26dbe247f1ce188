#!/usr/bin/env bash
# The one command that sets up and deploys a stack (default: prod), from a laptop or CI.
#   ./deploy.sh            preview, ask, deploy, print the sites' addresses
#   ./deploy.sh --yes      deploy without asking (any other `pulumi up` flag works too)
# State: a local file backend (no Pulumi account) unless PULUMI_BACKEND_URL names another one,
# such as a DigitalOcean Space for a team (README, "Sharing the state with a team").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

STACK=${STACK:-prod}
STATE_DIR=${DJANGO_SWARM_STATE_DIR:-$HOME/.django-swarm/state}

fail() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

command -v pulumi >/dev/null 2>&1 ||
  fail "the Pulumi CLI is not installed: see https://www.pulumi.com/docs/install/ (then run me again)"
command -v python3 >/dev/null 2>&1 || fail "python3 is not installed (3.11 or newer)"
[[ -f "Pulumi.${STACK}.yaml" ]] ||
  fail "no Pulumi.${STACK}.yaml here: copy Pulumi.prod.yaml to it, or set STACK=prod"

if [[ ! -x .venv/bin/python ]]; then
  log "Creating .venv"
  python3 -m venv .venv
fi
log "Installing the program's dependencies into .venv"
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

# PULUMI_BACKEND_URL alone tells every pulumi command below where the state is; `pulumi login`
# would also make it the user's default backend for every other project.
if [[ -z ${PULUMI_BACKEND_URL:-} ]]; then
  mkdir -p "$STATE_DIR"
  chmod 700 "$STATE_DIR"
  export PULUMI_BACKEND_URL="file://${STATE_DIR}"
  log "State kept in ${STATE_DIR} (back it up: it is what lets Pulumi update and destroy)"
fi

if [[ -z ${PULUMI_CONFIG_PASSPHRASE:-} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
  [[ -t 0 ]] || fail "PULUMI_CONFIG_PASSPHRASE is not set, and there is no terminal to ask for it:
  export PULUMI_CONFIG_PASSPHRASE='the passphrase of stack ${STACK}' (or PULUMI_CONFIG_PASSPHRASE_FILE)"
  log "Pulumi will ask for the stack's passphrase (or export PULUMI_CONFIG_PASSPHRASE)"
fi
pulumi stack select --create --secrets-provider passphrase "$STACK"

target=$(pulumi config get target --stack "$STACK" 2>/dev/null || echo digitalocean)
if [[ $target == digitalocean && -z ${DIGITALOCEAN_TOKEN:-} ]]; then
  fail "DIGITALOCEAN_TOKEN is not set: create a token with write scope in the DigitalOcean
control panel (API -> Tokens) and run: export DIGITALOCEAN_TOKEN=<token>"
fi
# Whether the secret is set, read from the key list: that needs no passphrase, so a missing
# passphrase is never reported as a missing secret.
config_keys=$(pulumi config --json --stack "$STACK")
python3 -c 'import json, sys; sys.exit("django-swarm:registryPassword" not in json.load(sys.stdin))' \
  <<<"$config_keys" || fail "registryPassword is not set: run
  pulumi config set --secret registryPassword --stack ${STACK}
and paste a registry token (GHCR: a GitHub token with write:packages)"

log "Deploying stack ${STACK}"
pulumi up --stack "$STACK" "$@"

log "Your sites"
pulumi stack output eventUrls --stack "$STACK"
