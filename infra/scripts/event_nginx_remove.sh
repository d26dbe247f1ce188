#!/usr/bin/env bash
# Removes the event's Nginx locations and reloads Nginx.
# Parameters: LOCATION_FILE.
set -euo pipefail
: "${LOCATION_FILE:?}"

rm -f "$LOCATION_FILE"
nginx -t -q
reload_nginx
log "Removed $LOCATION_FILE"
