#!/usr/bin/env bash
# Static checks: ruff (lint and format), shellcheck on every shell script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ruff check .
ruff format --check .
git ls-files -co --exclude-standard -- '*.sh' .ci/run | xargs shellcheck --severity=style
