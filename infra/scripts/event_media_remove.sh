#!/usr/bin/env bash
# Removes the event's uploaded files: only for an event that sets dropDatabaseOnDelete, after its
# stack and Nginx location are gone.
# Parameters: MEDIA_DIR.
set -euo pipefail
: "${MEDIA_DIR:?}"

rm -rf -- "$MEDIA_DIR"
log "Removed $MEDIA_DIR"
