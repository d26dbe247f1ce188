"""Pure renderers for one event's site: its environment, swarm stack file and Nginx location.

Every function takes plain values and returns text (or a plain mapping), so what lands on the host
is unit-tested as text; ``event.py`` only wires these texts into Pulumi resources.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

import layout

# The port gunicorn listens on inside the container (the image's PORT default).
SITE_PORT = 8000
DB_PORT = 5432
# Where the site keeps uploaded files in its container: the event's media directory of the host
# (layout.media_dir) is mounted there. SITE_UID is the image's user (app/Dockerfile, USER),
# which must own that directory to write to it.
SITE_MEDIA_ROOT = "/srv/media"
SITE_UID = 10001
# The administrator account of every event (manage.py ensure_admin in the migration job).
ADMIN_USERNAME = "admin"
# PostgreSQL's own choice for SCRAM-SHA-256 (scram_iterations' default).
SCRAM_ITERATIONS = 4096


@dataclass(frozen=True)
class EventSecrets:
    """The swarm secrets that hold one event's current values, by their versioned names."""

    secret_key: str
    db_password: str
    # The migration job's alone (manage.py ensure_admin); the site never sees it.
    admin_password: str
    # eventSecrets: setting name -> swarm secret.
    settings: Mapping[str, str] = field(default_factory=dict)

    def site(self) -> dict[str, tuple[str, str]]:
        """Setting -> (file under /run/secrets, swarm secret), for what the site reads."""
        return {
            "SECRET_KEY": ("secret_key", self.secret_key),
            "DB_PASSWORD": ("db_password", self.db_password),
            **{name: (f"setting_{name}", secret) for name, secret in sorted(self.settings.items())},
        }

    def names(self) -> list[str]:
        """Every secret, in the order event_secrets.sh reads their values from stdin."""
        settings = [secret for _, secret in sorted(self.settings.items())]
        return [self.secret_key, self.db_password, self.admin_password, *settings]

    def job_mounts(self) -> str:
        """``docker service create --secret`` values of the migration job, one per word."""
        targets = {**self.site(), "ADMIN_PASSWORD": ("admin_password", self.admin_password)}
        return " ".join(f"source={secret},target={target}" for target, secret in targets.values())


@dataclass(frozen=True)
class SiteSpec:
    """What decides how one event's site runs, as plain values (no Pulumi outputs)."""

    event: str
    path: str
    replicas: int
    image: str
    db_host: str
    public_host: str
    tls: bool
    secrets: EventSecrets
    # Megabytes swarm keeps for each task, and the most it may hold before the kernel stops it
    # (config.py: sized so that every event fits the server's memory).
    memory_reservation_mb: int
    memory_limit_mb: int
    settings: Mapping[str, str] = field(default_factory=dict)
    # The manager's address on the network the nodes share: the workers' tasks reach PostgreSQL
    # there (db_host is the manager's own docker_gwbridge gateway).
    manager_address: str = ""

    @property
    def worker_replicas(self) -> int:
        """Tasks on the workers: one task always runs on the manager (uploads are stored there)."""
        return self.replicas - 1


def scram_verifier(password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, in the form PostgreSQL stores (RFC 5802/7677).

    ``ALTER ROLE ... PASSWORD '<verifier>'`` stores it as it is, so the password itself never
    reaches the server, its statement text or its log. The salt is derived from the password,
    so the same password always gives the same verifier (an unchanged step stays unchanged).
    The generated passwords are ASCII, which SASLprep leaves as they are.
    """
    secret = password.encode()
    salt = hmac.new(secret, b"django-swarm scram salt", hashlib.sha256).digest()[:16]
    salted = hashlib.pbkdf2_hmac("sha256", secret, salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def network_name(event: str) -> str:
    """The event's overlay network, shared by its site and its migration job."""
    return f"{event}_backend"


def secret_name(event: str, kind: str, version: str) -> str:
    """Name of a swarm secret: immutable, so a new value gets a new version in its name."""
    return f"{event}_{kind}_{version}"


def setting_version(key: str, name: str, value: str) -> str:
    """The version of secret setting ``name``: changes exactly when its value does.

    Keyed with a long random value of the event (its Django secret key), so the version tells
    nothing about a short or guessable value.
    """
    return hmac.new(key.encode(), f"{name}\0{value}".encode(), hashlib.sha256).hexdigest()[:12]


def site_environment(spec: SiteSpec) -> dict[str, str]:
    """The site's environment variables (docs/architecture.md); secrets only as ``*_FILE``."""
    database = layout.database_name(spec.event)
    environment = {
        **spec.settings,
        "URL_PREFIX": spec.path,
        "ALLOWED_HOSTS": spec.public_host,
        "DB_HOST": spec.db_host,
        "DB_PORT": str(DB_PORT),
        "DB_NAME": database,
        "DB_USER": database,
        "MEDIA_ROOT": SITE_MEDIA_ROOT,
        **{
            f"{name}_FILE": f"/run/secrets/{target}"
            for name, (target, _) in spec.secrets.site().items()
        },
    }
    if spec.tls:
        environment |= {"PUBLIC_DOMAIN": spec.public_host, "SECURE_SSL": "1"}
    return environment


def env_file(environment: Mapping[str, str]) -> str:
    """``--env-file`` text for ``docker service create`` (one ``NAME=value`` a line, no quoting)."""
    for name, value in environment.items():
        if "\n" in value:
            raise ValueError(f"setting {name} contains a line break, which an env file cannot hold")
    return "".join(f"{name}={value}\n" for name, value in sorted(environment.items()))


# The variable ``docker stack deploy`` reads the published port from (event_stack.sh sets it).
PORT_VARIABLE = "DJANGO_SWARM_PORT"
# Stands for ``${DJANGO_SWARM_PORT}`` until the document is dumped: its "$" must stay single.
PORT_PLACEHOLDER = "django-swarm-port"
PORT_PLACEHOLDER_LINE = f"published: {PORT_PLACEHOLDER}"


def _compose_literal(value):
    """``value`` with every ``$`` doubled in its texts: ``docker stack deploy`` substitutes
    ``$NAME`` in the compose file, and a setting is to reach the site as it was written."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: _compose_literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_compose_literal(item) for item in value]
    return value


def stack_file(spec: SiteSpec) -> str:
    """The swarm stack (compose v3) of one event, pinned to ``spec.image``: the ``web`` service,
    one task on the manager, and with more replicas the ``web-workers`` service, the others on
    the workers.

    Uploaded files live on the manager, where Nginx serves them: only ``web`` mounts the event's
    media directory, and Nginx sends the admin (where files are uploaded) to it alone
    (``nginx_location``). The workers' tasks reach PostgreSQL at the manager's address.

    The port is published in host mode (no routing mesh, which needs the kernel's IPVS): a task
    holds the port on its server. Its number is ``${DJANGO_SWARM_PORT}``, which event_stack.sh
    sets to whichever of the event's two ports the live release does not hold. So an update
    starts the new task beside the old one (start-first) and stops the old one only once the new
    one is healthy; Nginx's upstream lists both ports and sends a request the one refuses to the
    other (``nginx_upstream``).
    """
    service = {
        "image": spec.image,
        "environment": site_environment(spec),
        "secrets": [
            {"source": target, "target": target} for target, _ in spec.secrets.site().values()
        ],
        # The event's uploaded files, on the host: they outlive every task and release.
        "volumes": [
            {"type": "bind", "source": layout.media_dir(spec.event), "target": SITE_MEDIA_ROOT}
        ],
        "ports": [
            {"target": SITE_PORT, "published": PORT_PLACEHOLDER, "protocol": "tcp", "mode": "host"}
        ],
        # The image's own check: gunicorn's /healthz, which Nginx serves as <path>/healthz.
        "healthcheck": {
            "test": ["CMD", "python", "/app/healthcheck.py"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "20s",
        },
        # gunicorn serves on for 5 s after SIGTERM, then finishes requests within 8 s
        # (app/gunicorn.conf.py).
        "stop_grace_period": "15s",
        "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
        "deploy": {
            "replicas": 1,
            "placement": {"constraints": ["node.role == manager"]},
            # A virtual IP needs IPVS; Nginx reaches the tasks through their published ports.
            "endpoint_mode": "dnsrr",
            "update_config": {
                "parallelism": 1,
                "delay": "5s",
                "order": "start-first",
                "failure_action": "rollback",
                # A new task must stay healthy this long before the update counts as done.
                "monitor": "30s",
                "max_failure_ratio": 0,
            },
            "rollback_config": {"parallelism": 1, "order": "start-first", "monitor": "30s"},
            "restart_policy": {
                "condition": "any",
                "delay": "5s",
                "max_attempts": 5,
                "window": "120s",
            },
            "resources": {
                "limits": {"memory": f"{spec.memory_limit_mb}M"},
                "reservations": {"memory": f"{spec.memory_reservation_mb}M"},
            },
            "labels": {"django-swarm.event": spec.event},
        },
    }
    services = {"web": service}
    if spec.worker_replicas:
        on_workers = {
            key: value for key, value in service.items() if key not in ("volumes", "deploy")
        }
        on_workers["environment"] = {**service["environment"], "DB_HOST": spec.manager_address}
        on_workers["deploy"] = {
            **service["deploy"],
            "replicas": spec.worker_replicas,
            "placement": {"constraints": ["node.role == worker"]},
        }
        services["web-workers"] = on_workers
    document = {
        "version": "3.8",
        "services": services,
        # Created before the stack (the migration job runs on it first) and kept across deploys.
        "networks": {"default": {"external": True, "name": network_name(spec.event)}},
        "secrets": {
            target: {"external": True, "name": secret}
            for target, secret in spec.secrets.site().values()
        },
    }
    header = (
        f"# Swarm stack {spec.event!r}, written by django-swarm's Pulumi program. Do not edit.\n"
    )
    text = yaml.safe_dump(_compose_literal(document), sort_keys=False, default_flow_style=False)
    return header + text.replace(PORT_PLACEHOLDER_LINE, f"published: ${{{PORT_VARIABLE}}}")


def nginx_location_owner(event: str) -> str:
    """The first line of every Nginx location file of ``event``: how the host scripts tell the
    files of one event from another's."""
    return f"# Event {event!r}, written by django-swarm's Pulumi program. Do not edit."


MAINTENANCE_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Back in a few minutes</title>"
    "<h1>Back in a few minutes</h1><p>This site is being restored from a backup.</p>"
)


def upstream_name(event: str, manager_only: bool = False) -> str:
    return f"django_swarm_{event}{'_manager' if manager_only else ''}"


def nginx_upstream(event: str) -> str:
    """The Nginx upstreams of one event: every task, and the task on the manager alone. Their
    servers come from the event's servers files (``nginx_upstream_servers``), which
    ``event_stack.sh`` rewrites when a release goes live."""
    return f"""\
{nginx_location_owner(event)}
upstream {upstream_name(event)} {{
    include {layout.nginx_servers_file(event)};
}}
upstream {upstream_name(event, manager_only=True)} {{
    include {layout.nginx_servers_file(event, manager_only=True)};
}}
"""


def nginx_upstream_servers(
    nodes: tuple[str, ...], live_port: int, other_port: int, workers: tuple[str, ...] = ()
) -> str:
    """The servers of an event's upstream while ``live_port`` is the live release's port.

    Every node's live port serves; its other port is a ``backup``, tried only when no live port
    answers. During a rollout that is where the new release starts (start-first), so when the
    old tasks stop, a request that meets their refused port goes to the new ones at once: the
    request was not sent, so Nginx retries it whatever its method (``proxy_next_upstream``'s
    default ``error``). The refused port is then skipped for a second (``max_fails``,
    ``fail_timeout``) until ``event_stack.sh`` makes the new port the live one. Outside a
    rollout the backup port is never tried, so Nginx logs no refused connection.

    ``nodes`` are addresses of the servers, not 127.0.0.1: a connection to a node's own address
    reaches the task through Docker's NAT rule, which exists only while the task does, so it is
    refused as soon as the task is gone. On 127.0.0.1, Docker's userland proxy would accept it
    first and close it only after Nginx sent the request, which Nginx retries only for GET.

    ``workers`` are the workers' addresses. A worker that answers nothing (stopped, or holding no
    task of the event) is skipped for 10 s after a failed attempt, so it costs one request a
    connect timeout (``nginx_location``) or a refusal every 10 s, not every request.
    """
    live = [f"server {node}:{live_port} max_fails=1 fail_timeout=1s;" for node in nodes]
    live += [f"server {node}:{live_port} max_fails=1 fail_timeout=10s;" for node in workers]
    # Never marked failed: while a live port is skipped, its request still tries the backups.
    backup = [f"server {node}:{other_port} backup max_fails=0;" for node in nodes + workers]
    return "".join(f"{line}\n" for line in live + backup)


def nginx_location(
    event: str,
    path: str,
    static_dir: str,
    media_dir: str,
    upload_limit_mb: int,
    maintenance_flag: str,
) -> str:
    """The Nginx locations of one event, included in the site's server block.

    ``alias`` and its location both end in ``/``: a location without the slash would let
    ``<path>/static../`` escape the directory. ``proxy_pass`` with a URI strips ``<path>`` before
    the site sees the request; the site adds it back to every URL it generates (``URL_PREFIX``).
    The proxy headers (``Host``, ``X-Forwarded-Proto/For/Host``) and the HSTS header come from the
    server block (``render_host``): a location inherits them only while it sets none of its own,
    so the site's locations set no ``proxy_set_header`` and no ``add_header``. The media location
    sets headers, so it repeats HSTS through ``$django_swarm_hsts`` (empty, so not sent, on HTTP).

    Uploaded files are anyone's data, served on the site's origin: never sniffed into another
    type, and a page among them (HTML, SVG) runs in a sandbox without scripts or the site's
    cookies. ``upload_limit_mb`` bounds a request body (an upload through the admin): 413 beyond.
    While the file ``maintenance_flag`` exists (``django-swarm-restore`` at work), the site and its
    uploaded files answer 503 with a short page: nothing half-restored is ever served.
    """
    for directory in (static_dir, media_dir):
        if not directory.endswith("/"):
            raise ValueError(f"directory {directory!r} must end with '/' to match its alias")
    return f"""\
{nginx_location_owner(event)}
location = {path} {{
    # A relative Location: the public port may differ from the one Nginx listens on.
    absolute_redirect off;
    return 301 {path}/;
}}

location {path}/static/ {{
    alias {static_dir};
    expires 30d;
    access_log off;
}}

location {path}/media/ {{
    alias {media_dir};
    if (-f {maintenance_flag}) {{
        return 503;
    }}
    add_header X-Content-Type-Options nosniff always;
    add_header Content-Security-Policy "default-src 'none'; sandbox" always;
    add_header Strict-Transport-Security $django_swarm_hsts always;
}}

{_proxied_location(f"{path}/", upstream_name(event), "/", upload_limit_mb, maintenance_flag)}
# Files are uploaded through the admin: to the task on the manager, which keeps them.
{
        _proxied_location(
            f"{path}/admin/",
            upstream_name(event, manager_only=True),
            "/admin/",
            upload_limit_mb,
            maintenance_flag,
        )
    }"""


def _proxied_location(
    location: str, upstream: str, uri: str, upload_limit_mb: int, maintenance_flag: str
) -> str:
    """A location of the site that Nginx passes to ``upstream``, as ``uri`` and what follows."""
    return f"""\
location {location} {{
    client_max_body_size {upload_limit_mb}m;
    # Only what Nginx writes itself (the page below); the site's responses keep their own type.
    default_type text/html;
    # The nodes share a private network: a node that does not answer within a second is down.
    proxy_connect_timeout 1s;
    if (-f {maintenance_flag}) {{
        return 503 "{MAINTENANCE_PAGE}";
    }}
    proxy_pass http://{upstream}{uri};
}}
"""
