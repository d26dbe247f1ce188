#!/usr/bin/env bash
# Installs the event's Nginx upstream and locations and reloads Nginx, only if `nginx -t` accepts
# the result; otherwise every file is put back as it was and this step fails with Nginx's
# complaint. Both files are named by path (layout.nginx_file_name): writing this event's files
# takes its path over from whichever event had it (a rename, a swap of paths), and this event's
# other files (its previous path) are removed, so nothing is ever declared twice.
# Parameters: EVENT, LOCATIONS_DIR, UPSTREAMS_DIR, FILE_NAME, LOCATION_TEXT, UPSTREAM_TEXT,
# OWNER_LINE (the first line of each of this event's files).
set -euo pipefail
: "${EVENT:?}" "${LOCATIONS_DIR:?}" "${UPSTREAMS_DIR:?}" "${FILE_NAME:?}" "${LOCATION_TEXT:?}" \
  "${UPSTREAM_TEXT:?}" "${OWNER_LINE:?}"

# The events' Nginx steps run in parallel, and each reads and changes the other events' files
# (a path taken over, this event's old files removed, everything put back if nginx -t fails):
# one at a time.
exec {lock}>/run/lock/django-swarm-nginx.lock
flock --timeout 120 "$lock"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

# install_file DIR TEXT: this event's file of DIR, in place of its previous ones there.
install_file() {
  local dir=$1 text=$2 file=$1/$FILE_NAME other
  install -d -m 755 "$dir"
  mkdir -p "$workdir/before$dir"
  cp -a "$dir/." "$workdir/before$dir/"
  if [[ -f $file && $(head -n 1 "$file") != "$OWNER_LINE" ]]; then
    log "$EVENT takes $file over from: $(head -n 1 "$file")"
  fi
  printf '%s' "$text" >"$file.new"
  chmod 644 "$file.new"
  mv -f "$file.new" "$file"
  for other in "$dir"/*.conf; do
    if [[ $other != "$file" && $(head -n 1 "$other") == "$OWNER_LINE" ]]; then
      log "Removing $EVENT's previous $other"
      rm -f "$other"
    fi
  done
}

install_file "$UPSTREAMS_DIR" "$UPSTREAM_TEXT"
install_file "$LOCATIONS_DIR" "$LOCATION_TEXT"
if ! nginx -t -q 2>"$workdir/nginx-test"; then
  for dir in "$UPSTREAMS_DIR" "$LOCATIONS_DIR"; do
    find "$dir" -mindepth 1 -maxdepth 1 -name '*.conf' -delete
    cp -a "$workdir/before$dir/." "$dir/"
  done
  printf 'event %s: nginx rejected its locations, the previous ones stay:\n' "$EVENT" >&2
  cat "$workdir/nginx-test" >&2
  exit 1
fi
reload_nginx
log "Nginx serves $EVENT from $LOCATIONS_DIR/$FILE_NAME"
