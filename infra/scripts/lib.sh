#!/usr/bin/env bash
# Helpers inlined before every step (see infra/remote_script.py). Not run on its own.

# Progress line on stderr, so that stdout stays the step's result.
log() {
  printf '==> %s\n' "$*" >&2
}

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
