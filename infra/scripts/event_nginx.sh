#!/usr/bin/env bash
# Installs the event's Nginx locations and reloads Nginx, only if `nginx -t` accepts the result;
# otherwise the previous file is put back and this step fails with Nginx's complaint.
# Parameters: EVENT, LOCATION_FILE, LOCATION_TEXT.
set -euo pipefail
: "${EVENT:?}" "${LOCATION_FILE:?}" "${LOCATION_TEXT:?}"

install -d -m 755 "${LOCATION_FILE%/*}"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
if [[ -f $LOCATION_FILE ]]; then cp -p "$LOCATION_FILE" "$workdir/previous"; fi

printf '%s' "$LOCATION_TEXT" >"$LOCATION_FILE.new"
chmod 644 "$LOCATION_FILE.new"
mv -f "$LOCATION_FILE.new" "$LOCATION_FILE"
if ! nginx -t -q 2>"$workdir/nginx-test"; then
  if [[ -f $workdir/previous ]]; then
    mv -f "$workdir/previous" "$LOCATION_FILE"
  else
    rm -f "$LOCATION_FILE"
  fi
  printf 'event %s: nginx rejected its locations, the previous ones stay:\n' "$EVENT" >&2
  cat "$workdir/nginx-test" >&2
  exit 1
fi
reload_nginx
log "Nginx serves $EVENT from $LOCATION_FILE"
