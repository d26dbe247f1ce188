#!/usr/bin/env bash
# Undo step 5 on `pulumi destroy`: remove the site and bring Debian's default site back.
# Certificates stay in /etc/letsencrypt (Let's Encrypt limits how often they can be issued).
: "${NGINX_SITE:?}" "${NGINX_SITE_ENABLED:?}" "${NGINX_LOCATIONS_DIR:?}" "${NGINX_UPSTREAMS_DIR:?}"

rm -f "$NGINX_SITE_ENABLED" "$NGINX_SITE"
rmdir --ignore-fail-on-non-empty "$NGINX_LOCATIONS_DIR" "$NGINX_UPSTREAMS_DIR" 2>/dev/null || true
if [[ -f /etc/nginx/sites-available/default ]]; then
  ln -sfn /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default
fi
nginx -t -q
reload_nginx
log "Nginx site removed"
