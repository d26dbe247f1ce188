#!/usr/bin/env bash
# The event's uploaded files: a directory of the host that its tasks mount (render_event's stack
# file) and Nginx serves as <path>/media/. Owned by the site's user (the image's SITE_UID), so
# the site writes there; readable by Nginx. Kept when the event is removed, as its database.
# Parameters: MEDIA_DIR, SITE_UID.
set -euo pipefail
: "${MEDIA_DIR:?}" "${SITE_UID:?}"

install -d -m 755 -o "$SITE_UID" -g "$SITE_UID" "$MEDIA_DIR"
log "Uploaded files of this event: $MEDIA_DIR"
