#!/usr/bin/env bash
# First contact: print the server's ed25519 host key ("<type> <base64>"), which every later
# connection of the program then requires. Runs before any other step, so the server may still
# be booting: sshd answers once its host keys exist.
key_file=/etc/ssh/ssh_host_ed25519_key.pub

if [[ ! -s $key_file ]]; then
  log "$key_file is missing: this server's sshd has no ed25519 host key (run ssh-keygen -A)"
  exit 1
fi
cut -d ' ' -f 1,2 "$key_file"
