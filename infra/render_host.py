"""Pure renderers for the files the host steps install (tested as text)."""

from __future__ import annotations

import string
from pathlib import Path

import layout

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# certbot's webroot: answers HTTP-01 challenges, also when renewing.
ACME_ROOT = "/var/www/letsencrypt"


class _NginxTemplate(string.Template):
    # Nginx variables use "$"; "@name" is a placeholder nginx syntax here never needs.
    delimiter = "@"


def _template(name: str, **values: str) -> str:
    return _NginxTemplate((TEMPLATES_DIR / name).read_text()).substitute(values)


def nginx_site(domain: str | None, tls: bool) -> str:
    """The Nginx site: one server (HTTP), or with ``tls`` a redirect plus the HTTPS server.

    Both include every event's location file; the ACME directory stays on plain HTTP.
    """
    if tls and not domain:
        raise ValueError("TLS needs a domain")
    common = _template("nginx_server_common.conf", locations_dir=layout.NGINX_LOCATIONS_DIR)
    return _template(
        "nginx_site_tls.conf" if tls else "nginx_site_http.conf",
        server_name=domain or "_",
        domain=domain or "",
        acme_root=ACME_ROOT,
        common=common.rstrip("\n"),
    )
