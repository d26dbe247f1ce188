#!/usr/bin/env bash
# The static files of a release, where Nginx serves them. Each release's files are unpacked once
# into releases/<id>/ and never written again. What Nginx serves (STATIC_DIR, a symlink) is a
# fresh directory of hard links to the new release's files plus the live release's: the release
# the event's service runs now, whose pages, served until the rollout ends (or again after a
# rollback), link to its own hashed files. Switching is one rename of the symlink. A release that
# is neither new nor live (a release that failed, an older one) is removed.
# Parameters: IMAGE, RELEASE (an id of the image), EVENT_DIR, STATIC_DIR, SERVICE.
set -euo pipefail
: "${IMAGE:?}" "${RELEASE:?}" "${EVENT_DIR:?}" "${STATIC_DIR:?}" "${SERVICE:?}"

releases=$EVENT_DIR/releases
sets=$EVENT_DIR/served
link=${STATIC_DIR%/}
install -d -m 755 "$EVENT_DIR" "$releases" "$sets"

container=
cleanup() {
  if [[ -n $container ]]; then docker rm --force "$container" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# releases/<id>/: the files under /app/staticfiles of the image, complete or not there at all.
unpack_release() {
  local id=$1 image=$2 dir=$releases/$1
  [[ -d $dir ]] && return 0
  docker image inspect "$image" >/dev/null 2>&1 || docker pull --quiet "$image" >/dev/null
  container=$(docker create "$image")
  rm -rf "$dir.partial"
  mkdir "$dir.partial"
  docker cp "$container:/app/staticfiles/." "$dir.partial/" >/dev/null
  docker rm --force "$container" >/dev/null
  container=
  chmod -R u=rwX,go=rX "$dir.partial"
  mv -T "$dir.partial" "$dir"
  log "Unpacked the static files of release $id ($(find "$dir" -type f | wc -l) files)"
}

unpack_release "$RELEASE" "$IMAGE"
# The live release, when it is another one: the image the service runs now, by digest (none
# before the first deploy).
live_image=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' \
  "$SERVICE" 2>/dev/null || true)
live=
if [[ $live_image == *@sha256:* && ${live_image##*@sha256:} != "$RELEASE"* ]]; then
  live=${live_image##*@sha256:}
  live=${live:0:12}
  unpack_release "$live" "$live_image"
fi

# The set Nginx is to serve: the live release's files, then the new release's over them.
name=$RELEASE${live:+-$live}
if [[ ! -d $sets/$name ]]; then
  rm -rf "$sets/$name.partial"
  mkdir "$sets/$name.partial"
  if [[ -n $live ]]; then
    cp -al "$releases/$live/." "$sets/$name.partial/"
  fi
  cp -al --remove-destination "$releases/$RELEASE/." "$sets/$name.partial/"
  mv -T "$sets/$name.partial" "$sets/$name"
fi
ln -sfn "served/$name" "$link.new"
if [[ -d $link && ! -L $link ]]; then
  # A directory of an earlier version of this step: out of the way, then replaced at once.
  mv -T "$link" "$EVENT_DIR/static.old"
fi
mv -T "$link.new" "$link"

# Everything else goes: failed and older releases, sets no longer served, the old layout.
find "$releases" -mindepth 1 -maxdepth 1 ! -name "$RELEASE" ${live:+! -name "$live"} \
  -exec rm -rf {} +
find "$sets" -mindepth 1 -maxdepth 1 ! -name "$name" -exec rm -rf {} +
rm -rf "$EVENT_DIR/static.old"
log "Nginx serves the static files of release $RELEASE${live:+ and of the live release $live}"
