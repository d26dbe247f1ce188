"""Pure renderers for the files the host steps install (tested as text)."""

from __future__ import annotations

import shlex
import string
from pathlib import Path

import layout
from config import BackupConfig

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
        http_common=_template(
            "nginx_http_common.conf", upstreams_dir=layout.NGINX_UPSTREAMS_DIR
        ).rstrip("\n"),
        server_name=domain or "_",
        domain=domain or "",
        acme_root=ACME_ROOT,
        common=common.rstrip("\n"),
    )


TOOLS_SOURCE_DIR = Path(__file__).resolve().parent / "tools"
# Pre-migration snapshots kept per event, beside the retention policy of the scheduled ones.
KEEP_PRE_MIGRATE = 10
RESTIC_CACHE_DIR = "/var/cache/restic"


def backup_tool(name: str) -> str:
    """The text of ``infra/tools/<name>.sh``, installed as ``django-swarm-<name>``."""
    return (TOOLS_SOURCE_DIR / f"{name}.sh").read_text()


def backup_repository(backups: BackupConfig, data_dir: str) -> str:
    """restic's repository: the bucket (``s3:<endpoint>/<bucket>``), or a directory of the
    server (on the volume when there is one)."""
    if backups.off_host:
        return f"s3:{backups.endpoint}/{backups.bucket}"
    return f"{data_dir}/backups/restic"


def backup_env(backups: BackupConfig, data_dir: str, site_uid: int) -> str:
    """The non-secret settings of django-swarm-backup and -restore, sourced by bash (quoted)."""
    values: dict[str, str | int] = {
        "RESTIC_REPOSITORY": backup_repository(backups, data_dir),
        "RESTIC_PASSWORD_FILE": layout.RESTIC_PASSWORD_FILE,
        "RESTIC_CACHE_DIR": RESTIC_CACHE_DIR,
        "DATA_DIR": data_dir,
        "STACKS_DIR": layout.STACKS_DIR,
        "MAINTENANCE_DIR": layout.MAINTENANCE_DIR,
        "SITE_UID": site_uid,
        "KEEP_DAILY": backups.keep_daily,
        "KEEP_WEEKLY": backups.keep_weekly,
        "KEEP_MONTHLY": backups.keep_monthly,
        "KEEP_PRE_MIGRATE": KEEP_PRE_MIGRATE,
    }
    if backups.access_key_id:
        values["AWS_ACCESS_KEY_ID"] = backups.access_key_id
    return "".join(f"{key}={shlex.quote(str(value))}\n" for key, value in values.items())


def backup_service_unit() -> str:
    return _template(
        "backup.service", tool=f"{layout.TOOLS_DIR}/django-swarm-backup", env=layout.BACKUP_ENV
    )


def backup_timer_unit(schedule: str) -> str:
    return _template("backup.timer", schedule=schedule)
