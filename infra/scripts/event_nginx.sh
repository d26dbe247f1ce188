#!/usr/bin/env bash
# Installs the event's Nginx locations and reloads Nginx, only if `nginx -t` accepts the result;
# otherwise every location file is put back as it was and this step fails with Nginx's complaint.
# Location files are named by path (layout.nginx_location_file): writing this event's file takes
# its path over from whichever event had it (a rename, a swap of paths), and this event's other
# files (its previous path) are removed, so no location is ever declared twice.
# Parameters: EVENT, LOCATIONS_DIR, LOCATION_FILE, LOCATION_TEXT, OWNER_LINE (the first line of
# each of this event's location files).
set -euo pipefail
: "${EVENT:?}" "${LOCATIONS_DIR:?}" "${LOCATION_FILE:?}" "${LOCATION_TEXT:?}" "${OWNER_LINE:?}"

# The events' Nginx steps run in parallel, and each reads and changes the other events' files
# (a path taken over, this event's old files removed, everything put back if nginx -t fails):
# one at a time.
exec {lock}>/run/lock/django-swarm-nginx.lock
flock --timeout 120 "$lock"
install -d -m 755 "$LOCATIONS_DIR"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
mkdir "$workdir/before"
cp -a "$LOCATIONS_DIR/." "$workdir/before/"

if [[ -f $LOCATION_FILE && $(head -n 1 "$LOCATION_FILE") != "$OWNER_LINE" ]]; then
  log "$EVENT takes ${LOCATION_FILE##*/} over from: $(head -n 1 "$LOCATION_FILE")"
fi
printf '%s' "$LOCATION_TEXT" >"$LOCATION_FILE.new"
chmod 644 "$LOCATION_FILE.new"
mv -f "$LOCATION_FILE.new" "$LOCATION_FILE"
for file in "$LOCATIONS_DIR"/*.conf; do
  if [[ $file != "$LOCATION_FILE" && $(head -n 1 "$file") == "$OWNER_LINE" ]]; then
    log "Removing $EVENT's previous locations ${file##*/}"
    rm -f "$file"
  fi
done

if ! nginx -t -q 2>"$workdir/nginx-test"; then
  find "$LOCATIONS_DIR" -mindepth 1 -maxdepth 1 -name '*.conf' -delete
  cp -a "$workdir/before/." "$LOCATIONS_DIR/"
  printf 'event %s: nginx rejected its locations, the previous ones stay:\n' "$EVENT" >&2
  cat "$workdir/nginx-test" >&2
  exit 1
fi
reload_nginx
log "Nginx serves $EVENT from $LOCATION_FILE"
