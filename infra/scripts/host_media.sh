#!/usr/bin/env bash
# After PostgreSQL: the directory of every event's uploaded files (each event's media step makes
# its own sub-directory). With a volume the files live on it, beside PostgreSQL's data, so that a
# new droplet given the volume gets them back too; MEDIA_ROOT is then a link onto the volume.
: "${MEDIA_ROOT:?}"
# Empty DATA_ROOT means: no volume, the files stay on the server's own disk.
: "${DATA_ROOT?}"

if [[ -z $DATA_ROOT ]]; then
  if [[ -L $MEDIA_ROOT ]]; then
    log "$MEDIA_ROOT links to $(readlink "$MEDIA_ROOT"), a volume this stack no longer has."
    log "Copy the files back (cp -a), remove the link, then run again; nothing was changed."
    exit 1
  fi
  install -d -m 755 "$MEDIA_ROOT"
  log "Uploaded files are kept in $MEDIA_ROOT (no volume)"
  exit 0
fi

target=$DATA_ROOT/media
if [[ -d $MEDIA_ROOT && ! -L $MEDIA_ROOT ]]; then
  # Files uploaded before the server had a volume move onto it, once and whole.
  log "Moving the uploaded files in $MEDIA_ROOT onto the volume: $target"
  copy_dir_whole "$MEDIA_ROOT" "$target"
  rm -rf -- "$MEDIA_ROOT"
fi
install -d -m 755 "$target" "${MEDIA_ROOT%/*}"
if [[ $(readlink "$MEDIA_ROOT" || true) != "$target" ]]; then
  ln -sfn "$target" "$MEDIA_ROOT"
fi
log "Uploaded files are kept on the volume: $MEDIA_ROOT -> $target"
