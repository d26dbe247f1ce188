#!/usr/bin/env bash
# The one command that sets up and runs every test: virtual environment, dependencies, lint,
# app tests, infra unit tests, workflow checks and the rehearsal.
# Needs a machine prepared by tests/setup_machine.sh (root: packages, PostgreSQL, Docker engine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

if [[ ! -x .venv/bin/python ]]; then
  log "Creating .venv"
  python3 -m venv .venv
fi
log "Installing requirements.txt into .venv"
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
export PATH="$PWD/.venv/bin:$PATH"

log "Lint"
bash tests/lint.sh

# app/config (Django) and infra/config.py share a module name: separate pytest processes.
log "App tests (real PostgreSQL)"
pytest tests/app

log "Infra unit tests (Pulumi mock runtime) and workflow checks"
pytest tests/infra tests/workflows

log "Rehearsal (the program replayed into a Debian 13 box)"
pytest tests/rehearsal
