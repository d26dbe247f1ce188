#!/usr/bin/env bash
# Copies the static files of a release out of its image into the directory Nginx serves. The
# files of the previous release stay (a page rendered by a still-running old task links to them)
# until the release after; anything older is removed.
# Parameters: IMAGE, RELEASE (an id of the image), EVENT_DIR, STATIC_DIR.
set -euo pipefail
: "${IMAGE:?}" "${RELEASE:?}" "${EVENT_DIR:?}" "${STATIC_DIR:?}"

releases=$EVENT_DIR/releases
install -d -m 755 "$EVENT_DIR" "$STATIC_DIR"
install -d -m 700 "$releases"

workdir=$(mktemp -d)
container=
cleanup() {
  if [[ -n $container ]]; then docker rm --force "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

docker pull --quiet "$IMAGE" >/dev/null
container=$(docker create "$IMAGE")
mkdir "$workdir/static"
docker cp "$container:/app/staticfiles/." "$workdir/static/" >/dev/null
(cd "$workdir/static" && find . -type f | LC_ALL=C sort) >"$workdir/files"

cp -R "$workdir/static/." "$STATIC_DIR"
chmod -R u=rwX,go=rX "$STATIC_DIR"

# The file lists of the current and the previous release. Running again for the same release
# keeps the previous one.
if [[ ! -f $releases/current.id || $(<"$releases/current.id") != "$RELEASE" ]]; then
  if [[ -f $releases/current.files ]]; then
    mv -f "$releases/current.files" "$releases/previous.files"
  fi
  cp "$workdir/files" "$releases/current.files"
  printf '%s\n' "$RELEASE" >"$releases/current.id"
fi
touch "$releases/previous.files"
LC_ALL=C sort -u "$releases/current.files" "$releases/previous.files" >"$workdir/keep"
(cd "$STATIC_DIR" && find . -type f | LC_ALL=C sort) >"$workdir/present"
LC_ALL=C comm -23 "$workdir/present" "$workdir/keep" >"$workdir/stale"
(cd "$STATIC_DIR" && xargs --no-run-if-empty --delimiter '\n' rm -f -- <"$workdir/stale")
find "$STATIC_DIR" -mindepth 1 -type d -empty -delete
log "Static files of release $RELEASE in $STATIC_DIR ($(wc -l <"$workdir/files") files, $(wc -l <"$workdir/stale") old ones removed)"
