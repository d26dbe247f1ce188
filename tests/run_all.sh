#!/usr/bin/env bash
# The one command that sets up and runs every test: virtual environment, dependencies, lint,
# app tests, infra unit tests, workflow checks, the test plugins' conformance, the rehearsal and
# the README's local try-out.
# Needs a machine prepared by tests/setup_machine.sh (root: packages, PostgreSQL, Docker engine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each phase's start also says how long the previous one took, so that growth shows (the last
# phase's time is pytest's own closing line, which stays the last line of the output).
phase_name='' phase_start=$SECONDS
log() {
  if [[ -n $phase_name ]]; then
    printf '==> %s took %d s\n' "$phase_name" "$((SECONDS - phase_start))" >&2
  fi
  phase_name=$* phase_start=$SECONDS
  printf '\n==> %s\n' "$*" >&2
}

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

log "Test plugins' conformance (the real pulumi engine, tests/plugins)"
pytest tests/plugins

log "Rehearsal (Debian 13 boxes, the program through the real pulumi engine)"
# Its three stories (test_story.py on one box, test_workers.py on three, test_density.py on one
# of 1 GiB) wait on converges and rollouts far more than they compute: two processes
# (pytest-xdist, a module per process at a time) take the phase from the sum to about the longest. The slowest tests' times, so that
# the rehearsal's growth shows story by story.
pytest -n 2 --dist loadfile --durations=12 tests/rehearsal

# After the rehearsal: its teardown removes the box image that the rehearsal's boxes run.
log "Local try-out as the README gives it (a fresh clone, ./deploy.sh --local, --destroy)"
pytest tests/tryout
