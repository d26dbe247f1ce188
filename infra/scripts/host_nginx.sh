#!/usr/bin/env bash
# Step 5: the Nginx site that serves every event under its sub-folder, and with TLS the
# Let's Encrypt certificate (obtained and renewed by certbot over the ACME webroot).
: "${NGINX_SITE:?}" "${NGINX_SITE_ENABLED:?}" "${NGINX_LOCATIONS_DIR:?}" "${NGINX_UPSTREAMS_DIR:?}"
: "${STATIC_ROOT:?}"
: "${ACME_ROOT:?}" "${HTTP_SITE:?}"
# Empty TLS_SITE means TLS is off; then DOMAIN and TLS_EMAIL are not used.
: "${TLS_SITE?}" "${DOMAIN?}" "${TLS_EMAIL?}"

install -d -m 755 "$NGINX_LOCATIONS_DIR" "$NGINX_UPSTREAMS_DIR" "$STATIC_ROOT" "$ACME_ROOT"
# Debian's default site would claim default_server on port 80.
rm -f /etc/nginx/sites-enabled/default

# Debian's nginx.conf lets each worker process (one per CPU) hold 768 connections, and a proxied
# visit holds two: a 1-vCPU droplet would turn away the 385th visitor at once. Each connection
# is a file descriptor: the workers may open twice as many.
connections=4096
sed -i -E "s/^(\s*worker_connections\s+)[0-9]+;/\1${connections};/" /etc/nginx/nginx.conf
if ! grep -q '^worker_rlimit_nofile ' /etc/nginx/nginx.conf; then
  sed -i "/^worker_processes /a worker_rlimit_nofile $((2 * connections));" /etc/nginx/nginx.conf
fi

# Install the site text given on stdin; a version nginx rejects is rolled back, never loaded.
install_site() {
  local previous
  previous=$(mktemp)
  cp "$NGINX_SITE" "$previous" 2>/dev/null || true
  replace_file "$NGINX_SITE" 644 || true
  ln -sfn "$NGINX_SITE" "$NGINX_SITE_ENABLED"
  if ! nginx -t -q; then
    log "nginx rejected the new site; the previous one stays in place"
    if [[ -s $previous ]]; then cp "$previous" "$NGINX_SITE"; else rm -f "$NGINX_SITE" "$NGINX_SITE_ENABLED"; fi
    rm -f "$previous"
    exit 1
  fi
  rm -f "$previous"
  reload_nginx
}

certificate=/etc/letsencrypt/live/$DOMAIN/fullchain.pem
if [[ -n $TLS_SITE && -f $certificate ]]; then
  install_site <<<"$TLS_SITE"
else
  install_site <<<"$HTTP_SITE"
fi

if [[ -n $TLS_SITE ]]; then
  log "Obtaining (or keeping) the certificate for ${DOMAIN}"
  if ! certbot certonly --webroot --webroot-path "$ACME_ROOT" --domain "$DOMAIN" \
    --email "$TLS_EMAIL" --agree-tos --no-eff-email --non-interactive --keep-until-expiring; then
    log "certbot failed: the DNS A record of ${DOMAIN} must point to this server and port 80 must be open"
    exit 1
  fi
  hook=/etc/letsencrypt/renewal-hooks/deploy/django-swarm-reload-nginx
  mkdir -p "${hook%/*}"
  replace_file "$hook" 755 <<'EOH' || true
#!/bin/sh
# Managed by django-swarm: load renewed certificates.
systemctl reload nginx
EOH
  install_site <<<"$TLS_SITE"
fi
log "Nginx serves ${DOMAIN:-any host name} with TLS $([[ -n $TLS_SITE ]] && echo on || echo off)"
