#!/usr/bin/env bash
# Removes the event's static files (every release). Runs after its Nginx location is gone.
# Parameters: EVENT_DIR.
set -euo pipefail
: "${EVENT_DIR:?}"

rm -rf -- "$EVENT_DIR"
log "Removed $EVENT_DIR"
