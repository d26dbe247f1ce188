#!/usr/bin/env bash
# Static checks: ruff (lint and format), shellcheck on every shell script, hadolint on the site's
# Dockerfile and the box's, and every GitHub workflow against the GitHub workflow schema that check-jsonschema
# ships (no download).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ruff check .
ruff format --check .
git ls-files -co --exclude-standard -- '*.sh' .ci/run | xargs shellcheck --severity=style

if [[ ! -f app/Dockerfile ]]; then
  echo "lint: app/Dockerfile is missing: the site's image has nothing to build from." >&2
  exit 1
fi
hadolint app/Dockerfile local/box.Dockerfile

mapfile -t workflows < <(git ls-files -co --exclude-standard -- '.github/workflows/*.yml' '.github/workflows/*.yaml')
if [[ ${#workflows[@]} -eq 0 ]]; then
  echo "lint: no workflow found in .github/workflows." >&2
  exit 1
fi
check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}"
