#!/usr/bin/env bash
# Removes the event's Nginx location and upstream files (those whose first line is OWNER_LINE) and
# reloads Nginx. A path that another event has taken over (a rename) is that event's file now: it
# stays.
# Parameters: EVENT, LOCATIONS_DIR, UPSTREAMS_DIR, OWNER_LINE.
set -euo pipefail
: "${EVENT:?}" "${LOCATIONS_DIR:?}" "${UPSTREAMS_DIR:?}" "${OWNER_LINE:?}"

# The events' Nginx steps run in parallel, and each reads and changes the other events' files
# (a path taken over, this event's old files removed, everything put back if nginx -t fails):
# one at a time.
exec {lock}>/run/lock/django-swarm-nginx.lock
flock --timeout 120 "$lock"
removed=()
for file in "$LOCATIONS_DIR"/*.conf "$UPSTREAMS_DIR"/*.conf; do
  if [[ -f $file && $(head -n 1 "$file") == "$OWNER_LINE" ]]; then
    rm -f "$file"
    removed+=("$file")
  fi
done
nginx -t -q
reload_nginx
log "Removed the Nginx files of $EVENT: ${removed[*]:-none}"
