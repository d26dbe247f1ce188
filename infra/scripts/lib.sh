#!/usr/bin/env bash
# Helpers inlined before every step (see infra/remote_script.py). Not run on its own.

# Progress line on stderr, so that stdout stays the step's result.
log() {
  printf '==> %s\n' "$*" >&2
}

# Docker before 29.4.1 sometimes fails to start a container because remounting its secrets
# read-only meets a passing EBUSY (moby/moby#48783, "particularly common with start-first
# updates"); a task's error then holds this text. Such a task never ran its image, so the steps
# that start one (event_stack.sh, event_migrate.sh) start it again: at most
# DOCKER_START_ATTEMPTS starts in all.
# shellcheck disable=SC2034 # read by the steps this file is inlined into
DOCKER_START_FAULT='unable to remount dir as readonly'
# shellcheck disable=SC2034
DOCKER_START_ATTEMPTS=3

# The next secret from stdin (one base64 line each, in the order the step documents).
# Command substitution drops trailing newlines; use read_secret_to_file for exact bytes.
read_secret() {
  local line
  IFS= read -r line || true
  printf '%s' "$line" | base64 -d
}

# The next secret from stdin, written byte for byte to a new file of mode 600.
read_secret_to_file() {
  local path=$1 line
  IFS= read -r line || true
  (umask 077 && printf '%s' "$line" | base64 -d >"$path")
}

# Replace the file at PATH with stdin unless it already holds exactly that text. Exit status
# 0 when the file changed, 1 when it did not, so callers restart services only on a change:
# `if replace_file PATH MODE [OWNER:GROUP] <<<"$text"; then ...`.
replace_file() {
  local path=$1 mode=$2 owner=${3:-root:root} tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
    return 1
  fi
  install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$path"
  rm -f "$tmp"
}

# The version of PostgreSQL's cluster "main" (the newest, if there are several); empty if none.
pg_main_version() {
  pg_lsclusters --no-header | awk '$2 == "main" { print $1 }' | sort -n | tail -n 1
}

# In pg_hba.conf at FILE, make the line marked with the comment "# MARK" read LINE, where it is
# (at the end if there is none yet), or remove it when LINE is empty; the rest of the file stays
# as it is. Exit status as replace_file's: 0 when the file changed, so the caller reloads
# PostgreSQL. The steps of several workers edit the file at once: one at a time, under a lock.
set_pg_hba_line() {
  local file=$1 mark="# $2" line=${3:-} lock text status=0
  exec {lock}>/run/lock/django-swarm-pg_hba
  flock "$lock"
  # Read whole before anything is written. Callers test the exit status, which turns off
  # `set -e` in here: a file that cannot be read ends the step explicitly.
  text=$(awk -v mark="$mark" -v line="${line:+$line $mark}" '
    index($0, mark) { if (line != "" && !done) print line; done = 1; next }
    { print }
    END { if (line != "" && !done) print line }
  ' "$file") || {
    log "Cannot read $file"
    exit 1
  }
  replace_file "$file" "$(stat -c %a "$file")" "$(stat -c %U:%G "$file")" <<<"$text" || status=$?
  exec {lock}>&-
  return "$status"
}

# Copy directory SRC to DEST (which must not exist yet), so that DEST exists only once complete:
# the copy is made beside it and renamed. A copy that was interrupted is started over; a DEST
# that exists already is never written to.
copy_dir_whole() {
  local src=$1 dest=$2
  if [[ -e $dest ]]; then
    log "$dest exists already, and this step did not finish it: move it aside, then run again"
    return 1
  fi
  mkdir -p "${dest%/*}"
  rm -rf "$dest.copying"
  cp -a "$src" "$dest.copying"
  sync -f "$dest.copying"
  mv -T "$dest.copying" "$dest"
}

# Reload (or start) Nginx and return once only workers running the new configuration accept
# connections: `systemctl reload` only signals the master, and until each old worker has closed
# its listening sockets ("is shutting down") a request may still get the previous configuration,
# such as a 404 for a location just added. Bounded: a reload that never takes effect fails.
reload_nginx() {
  local old_workers pid deadline=$((SECONDS + 30))
  old_workers=$(ps -C nginx -o pid=,args= | awk '/worker process$/ { print $1 }' || true)
  systemctl reload-or-restart nginx
  for pid in $old_workers; do
    while [[ $(ps -o args= -p "$pid" || true) == *"worker process" ]]; do
      if ((SECONDS >= deadline)); then
        log "Nginx still runs its previous configuration 30s after a reload: journalctl -u nginx"
        return 1
      fi
      sleep 0.2
    done
  done
}

# Pulumi replaces a resource by creating the new one first and deleting the old one last, so
# `pulumi up --replace` of a step would run its create, then the old instance's delete, which
# would undo what was just done. Each step with a delete therefore counts its instances in FILE
# (one line, a number), and a delete undoes the step only when it removes the last one.
# hold_step FILE ACTION: on create, one instance more; on update (an instance run again) the
# count stays, except that a step from before counting (no FILE yet) counts itself. Called before
# the step's work: a create that fails is still an instance in Pulumi's state, whose delete or
# retry comes later.
hold_step() {
  local file=$1 action=$2 count=0
  [[ -f $file ]] && count=$(<"$file")
  [[ $count =~ ^[0-9]+$ ]] || count=0
  if [[ $action == create ]]; then
    count=$((count + 1))
  elif ((count > 0)); then
    return 0
  else
    count=1
  fi
  install -d -m 700 "${file%/*}"
  printf '%s\n' "$count" >"$file.new"
  mv -f "$file.new" "$file"
}

# release_step FILE: one instance fewer. While another one remains (the replacement of this
# one), the delete ends here, successfully, and leaves the host as it is. The last instance (or
# one from before counting) goes on to undo the step.
release_step() {
  local file=$1 count=1
  [[ -f $file ]] && count=$(<"$file")
  [[ $count =~ ^[0-9]+$ ]] || count=1
  if ((count > 1)); then
    printf '%s\n' "$((count - 1))" >"$file.new"
    mv -f "$file.new" "$file"
    log "Step ${file##*/}: its replacement is in place, so this delete undoes nothing"
    exit 0
  fi
  rm -f "$file"
}

# A site's start (its migration job, with the snapshot before it, and a new release until it
# serves) briefly holds about twice a running site's memory. Started all at once, the events of
# a 1 GB server would need more than it has (eight of them thrashed its memory for minutes), so
# they start one at a time. take_start_slot waits for the server's one start slot (a lock file
# under /run/lock: a reboot frees it), its descriptor in $start_slot; the slot is free again at
# release_start_slot or when the process and its children end.
START_SLOT_WAIT_SECONDS=1800
take_start_slot() {
  exec {start_slot}>/run/lock/django-swarm-start.lock
  flock -n "$start_slot" && return 0
  log "Waiting for another event's start to finish (one at a time on this server)"
  if ! flock --timeout "$START_SLOT_WAIT_SECONDS" "$start_slot"; then
    log "The start slot did not come free within ${START_SLOT_WAIT_SECONDS}s: another step has been starting a site that long"
    return 1
  fi
}

release_start_slot() {
  if [[ -n ${start_slot:-} ]]; then
    flock -u "$start_slot"
    exec {start_slot}>&-
    start_slot=''
  fi
}
