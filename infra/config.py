"""The stack configuration: read once, checked completely, then typed.

``load_config`` reads every key of the ``django-swarm`` namespace, checks every rule before any
resource exists and raises one :class:`ConfigError` listing all problems (key, bad value, fix),
so a user fixes the whole config in one round instead of one error per ``pulumi up``.
Keys and defaults are documented in docs/config.md (and docs/architecture.md, "Stack config keys").
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

NAMESPACE = "django-swarm"

TARGETS = ("digitalocean", "existing")

# Keys that only make sense for one target; setting one for the other target is an error,
# because silently ignoring it would leave the user believing it took effect.
DIGITALOCEAN_KEYS = (
    "region",
    "dropletSize",
    "dropletImage",
    "postgresVolumeGb",
    "reservedIp",
    "manageDns",
    "sshAllowedCidrs",
    "sshPublicKey",
)
EXISTING_KEYS = ("host", "sshPort", "advertiseAddress")
COMMON_KEYS = (
    "target",
    "sshPrivateKey",
    "sshHostKey",
    "domain",
    "tlsEmail",
    "registry",
    "registryPassword",
    "registryPullPassword",
    "eventSecrets",
    "backups",
    "backupSecretAccessKey",
    "baseImage",
    "swarmSubnet",
    "serverMemoryMb",
    "workers",
    "events",
)
SECRET_KEYS = (
    "sshPrivateKey",
    "registryPassword",
    "registryPullPassword",
    "eventSecrets",
    "backupSecretAccessKey",
)
KNOWN_KEYS = frozenset(DIGITALOCEAN_KEYS + EXISTING_KEYS + COMMON_KEYS)
# Keys an earlier version read: what to do instead.
REMOVED_KEYS = {
    "publishMode": "every event now publishes host-mode ports on alternating ports, on every"
    " server alike (docs/rollouts.md)",
}

OPENSSH_KEY_TYPES = frozenset(
    {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
)
EVENT_KEYS = frozenset(
    {
        "name",
        "path",
        "replicas",
        "port",
        "dropDatabaseOnDelete",
        "settings",
        "uploadLimitMb",
        "memoryReservationMb",
        "memoryLimitMb",
    }
)
# The largest request body (an upload through the admin) Nginx passes to an event's site.
DEFAULT_UPLOAD_LIMIT_MB = 20
DEFAULT_POSTGRES_VOLUME_GB = 10
# Memory on the manager (docs/config.md, "Memory"). An existing server counts as the cheapest
# droplet's memory unless serverMemoryMb says more; a droplet's comes from its size's slug.
DEFAULT_SERVER_MEMORY_MB = 1024
DROPLET_MEMORY = re.compile(r"(?:^|-)(\d+)(mb|gb)(?:-|$)")
# What the kernel and the host's own processes (dockerd, containerd, PostgreSQL, Nginx, systemd)
# hold before any event, on a 1 GB droplet: the rehearsal measures it (test_density).
HOST_MEMORY_MB = 320
# An event's service: what swarm keeps for it (about what a busy event holds, bench/run.sh and
# the rehearsal's PSS figures), and where the kernel stops a site that leaks.
DEFAULT_MEMORY_RESERVATION_MB = 64
MIN_MEMORY_MB = 32
MAX_MEMORY_MB = 65536
MAX_UPLOAD_LIMIT_MB = 1024
EVENT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?")
EVENT_PATH = re.compile(r"(/[A-Za-z0-9][A-Za-z0-9._~-]*)+")
SETTING_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# Environment variables the deployment itself sets for every site (docs/architecture.md).
RESERVED_SETTINGS = frozenset(
    {
        "SECRET_KEY",
        "SECRET_KEY_FILE",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "DB_PASSWORD_FILE",
        "DB_HOST",
        "DB_PORT",
        "ALLOWED_HOSTS",
        "URL_PREFIX",
        "PUBLIC_DOMAIN",
        "SECURE_SSL",
        "PORT",
        "ADMIN_PASSWORD",
        "ADMIN_PASSWORD_FILE",
        "MEDIA_ROOT",
    }
)
# The fix a config error names for a setting (or secret setting) an event may not set.
SETTABLE_FIX = (
    "use an upper-case environment variable name that the deployment does not set itself"
    f" ({', '.join(sorted(RESERVED_SETTINGS))})"
)
# Default published ports: 20000-29999, clear of PostgreSQL, the swarm and ephemeral ports.
DEFAULT_PORT_BASE = 20000
DEFAULT_PORT_SPAN = 10000
# Ports an event may not publish: SSH, HTTP(S), PostgreSQL, the swarm's own ports.
HOST_PORTS = frozenset({22, 80, 443, 2377, 4789, 5432, 7946})
# An event publishes its port and the next one, alternately: each release starts on the port the
# live one does not hold, so both run side by side during a rollout (render_event.stack_file).
PORTS_PER_EVENT = 2
# A task holds its event's port on its server, so a server runs one task of an event: an event
# has at most one replica per server (the manager and each worker).
# Workers: droplets (digitalocean: {count, size}) or hosts (existing: a list) that join the swarm.
WORKER_DROPLET_KEYS = frozenset({"count", "size"})
WORKER_HOST_KEYS = frozenset({"host", "sshPort", "sshHostKey", "advertiseAddress"})
MAX_WORKERS = 10

HOSTNAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+"
)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# DigitalOcean's Debian images by slug, or an image id (a snapshot the user made). The host
# steps need Docker 26 or newer from Debian's packages, which Debian 13 (trixie) is the first
# to have: debian-12-x64 and older, and other distributions, cannot pass the packages step.
DEBIAN_IMAGE_SLUG = re.compile(r"debian-(\d+)-x64")
MIN_DEBIAN_RELEASE = 13
REGISTRY_SERVER = re.compile(r"[a-z0-9.-]+(:[0-9]+)?")
REGISTRY_REPOSITORY = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*")


class ConfigError(Exception):
    """Invalid stack config; the message has one line per problem: key, bad value, fix."""


@dataclass(frozen=True)
class EventConfig:
    name: str
    path: str
    replicas: int
    port: int
    drop_database_on_delete: bool
    settings: Mapping[str, str]
    upload_limit_mb: int
    # The service's memory on each server: kept for it by swarm, and the most it may hold.
    memory_reservation_mb: int
    memory_limit_mb: int


@dataclass(frozen=True)
class RegistryConfig:
    server: str
    repository: str
    username: str
    # Pushes the image from wherever `pulumi up` runs.
    password: pulumi.Output[str]
    # What the server logs in with to pull: registryPullPassword (a read-only token), or the
    # push token when none is set.
    pull_password: pulumi.Output[str]

    @property
    def image_name(self) -> str:
        return f"{self.server}/{self.repository}"


BACKUP_KEYS = frozenset(
    {"bucket", "endpoint", "accessKeyId", "schedule", "keepDaily", "keepWeekly", "keepMonthly"}
)
# S3 bucket names (also DigitalOcean Spaces): 3-63 of a-z 0-9 . -, starting and ending alike.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
ENDPOINT = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# A systemd calendar expression (systemd.time(7)); the host step checks it exactly.
SCHEDULE = re.compile(r"[A-Za-z0-9*:/,. ~+-]{1,100}")
DEFAULT_BACKUP_SCHEDULE = "*-*-* 03:00:00 UTC"
DEFAULT_RETENTION = {"keepDaily": 7, "keepWeekly": 4, "keepMonthly": 6}


@dataclass(frozen=True)
class BackupConfig:
    """Where and when the host backs every event up (restic), and what it keeps."""

    # None: a restic repository on the server itself (not off-host; `pulumi up` warns).
    bucket: str | None
    endpoint: str | None
    access_key_id: str | None
    secret_access_key: pulumi.Output[str] | None
    schedule: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int

    @property
    def off_host(self) -> bool:
        return self.bucket is not None


@dataclass(frozen=True)
class WorkerHost:
    """An existing host that joins the swarm as a worker."""

    host: str
    ssh_port: int
    # "<type> <base64>" it must present; None: learned on first contact, then pinned.
    ssh_host_key: str | None
    # Where the manager and Nginx reach it, and what it advertises to the swarm.
    advertise_address: str


@dataclass(frozen=True)
class WorkersConfig:
    """The swarm's workers: ``count`` droplets of ``size`` (digitalocean) or ``hosts``
    (existing)."""

    count: int = 0
    size: str | None = None
    hosts: tuple[WorkerHost, ...] = ()


@dataclass(frozen=True)
class StackConfig:
    target: str
    region: str
    droplet_size: str
    droplet_image: str
    postgres_volume_gb: int
    reserved_ip: bool
    manage_dns: bool
    ssh_allowed_cidrs: tuple[str, ...]
    ssh_public_key: str | None
    host: str | None
    ssh_port: int
    ssh_private_key: pulumi.Output[str] | None
    # "<type> <base64>" the server must present; None: learned on first contact, then pinned.
    ssh_host_key: str | None
    advertise_address: str | None
    domain: str | None
    tls_email: str | None
    registry: RegistryConfig
    base_image: str
    swarm_subnet: str
    server_memory_mb: int
    workers: WorkersConfig
    events: tuple[EventConfig, ...]
    # Event name -> secret setting name -> its value (eventSecrets); names are plain text.
    event_secrets: Mapping[str, Mapping[str, pulumi.Output[str]]]
    backups: BackupConfig

    @property
    def tls_enabled(self) -> bool:
        return bool(self.domain and self.tls_email)

    @property
    def swarm_gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.swarm_subnet).hosts()))


def event_ports(port: int) -> range:
    """The ports an event whose ``port`` is ``port`` publishes, one release at a time."""
    return range(port, port + PORTS_PER_EVENT)


def default_port(name: str) -> int:
    """The published port of event ``name`` unless it sets ``port``: stable across runs."""
    return DEFAULT_PORT_BASE + zlib.crc32(name.encode()) % DEFAULT_PORT_SPAN


class _Reader:
    """Reads raw config text and collects every problem instead of stopping at the first."""

    def __init__(self, config: pulumi.Config):
        self.config = config
        self.problems: list[str] = []

    def problem(self, key: str, value: Any, fix: str) -> None:
        shown = value if isinstance(value, str) else json.dumps(value)
        self.problems.append(f"{key}: {shown!r} is invalid: {fix}")

    def unknown_keys(self, key: str, value: Mapping[str, Any], known: frozenset[str]) -> None:
        """A problem for each key of the object ``value`` (config ``key``) not in ``known``."""
        for unknown in sorted(set(value) - known):
            self.problem(f"{key}.{unknown}", value[unknown], f"remove it; known: {sorted(known)}")

    def missing(self, key: str, fix: str) -> None:
        self.problems.append(f"{key}: missing: {fix}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.config.get(key)
        return default if value is None or value == "" else value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        raw = self.config.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            self.problem(key, raw, f"set a whole number from {low} to {high}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self.config.get(key)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.problem(key, raw, "set true or false")
        return default

    def json_value(self, key: str, default: Any, expected: type, shape: str) -> Any:
        raw = self.config.get(key)
        if raw is None:
            return default
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, expected):
            self.problem(key, raw, f"set {shape} (pulumi config set --path or --json)")
            return default
        return value

    def one_of(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            self.problem(key, value, f"set one of {', '.join(choices)}")
            return default
        return value

    def checked(self, key: str, value: Any, ok: Callable[[Any], bool], fix: str) -> None:
        if value is not None and not ok(value):
            self.problem(key, value, fix)


def _is_word(value: Any) -> bool:
    """Non-empty text without whitespace (a user name, a key id)."""
    return isinstance(value, str) and value != "" and not any(c.isspace() for c in value)


def _is_supported_image(value: str) -> bool:
    slug = DEBIAN_IMAGE_SLUG.fullmatch(value)
    return value.isdigit() or (slug is not None and int(slug[1]) >= MIN_DEBIAN_RELEASE)


def _is_network(value: Any) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        return False
    return True


def openssh_public_key(line: str) -> str | None:
    """``<type> <base64>`` of one OpenSSH public key line (comment dropped), or None if the line
    is not one: the base64 must decode to a key blob that names the same type."""
    fields = line.split()
    if len(fields) not in (2, 3) or fields[0] not in OPENSSH_KEY_TYPES:
        return None
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except binascii.Error:
        return None
    name_length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + name_length] != fields[0].encode():
        return None
    return f"{fields[0]} {fields[1]}"


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_swarm_subnet(value: str) -> bool:
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        return False
    return network.version == 4 and network.is_private and network.prefixlen <= 24


def _all_config_keys() -> set[str]:
    """Every key set in this stack, wherever the engine put the config (mocks or environment)."""
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env() or {})
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix) :] for key in keys if key.startswith(prefix)}


def _check_keys(reader: _Reader, target: str) -> None:
    present = _all_config_keys()
    for key in sorted(present & REMOVED_KEYS.keys()):
        reader.problems.append(
            f"{key}: no longer used, {REMOVED_KEYS[key]}: remove it (pulumi config rm {key})"
        )
    for key in sorted(present - KNOWN_KEYS - REMOVED_KEYS.keys()):
        reader.problems.append(
            f"{key}: unknown key: remove it (pulumi config rm {key}); known keys are listed in"
            " docs/config.md"
        )
    refused = EXISTING_KEYS if target == "digitalocean" else DIGITALOCEAN_KEYS
    for key in refused:
        if key in present:
            reader.problems.append(
                f"{key}: not used with target {target!r}: remove it (pulumi config rm {key})"
            )
    for key in SECRET_KEYS:
        if key in present and not runtime_config.is_config_secret(f"{NAMESPACE}:{key}"):
            reader.problems.append(
                f"{key}: stored in plain text: set it again with pulumi config set --secret {key}"
            )


def _is_settable(name: str) -> bool:
    """Whether an event may set environment variable ``name`` (settings or eventSecrets)."""
    return bool(SETTING_NAME.fullmatch(name)) and name not in RESERVED_SETTINGS


def droplet_memory_mb(size: str) -> int | None:
    """The memory a droplet size's slug names (``s-1vcpu-1gb`` -> 1024), if it names one."""
    found = DROPLET_MEMORY.search(size)
    if found is None:
        return None
    amount, unit = found.groups()
    return int(amount) * (1024 if unit == "gb" else 1)


def default_memory_limit_mb(server_memory_mb: int) -> int:
    """A quarter of the server, from 256 MB to 1 GB: room for a busy site's peaks, while one
    that leaks is stopped before it takes the memory the other events hold."""
    return min(1024, max(256, server_memory_mb // 4))


def _server_memory(reader: _Reader, target: str, droplet_size: str) -> int:
    """``serverMemoryMb``, or what ``dropletSize`` names (digitalocean), or 1024 (existing)."""
    default = DEFAULT_SERVER_MEMORY_MB
    if target == "digitalocean" and reader.config.get("serverMemoryMb") is None:
        from_size = droplet_memory_mb(droplet_size)
        if from_size is None:
            reader.problem(
                "dropletSize",
                droplet_size,
                "its memory is not in its name: also set serverMemoryMb to the droplet's memory"
                " in megabytes",
            )
        else:
            default = from_size
    return reader.integer("serverMemoryMb", default, 512, MAX_MEMORY_MB)


def _megabytes(
    reader: _Reader, key: str, item: dict, name: str, default: int, lowest: int, highest: int
) -> int:
    """Event ``key``'s size ``name`` in megabytes, or ``default`` when unset or refused."""
    value = item.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        reader.problem(
            f"{key}.{name}", value, f"set a whole number of megabytes from {lowest} to {highest}"
        )
        return default
    return value


def _events(reader: _Reader, servers: int, server_memory_mb: int) -> tuple[EventConfig, ...]:
    raw = reader.json_value("events", None, list, "a list of event objects")
    if raw is None:
        if reader.config.get("events") is None:
            reader.missing("events", 'add at least one event, e.g. [{"name": "event1", ...}]')
        return ()
    if not raw:
        reader.problem("events", raw, "add at least one event")
    events: list[EventConfig] = []
    for i, item in enumerate(raw):
        key = f"events[{i}]"
        if not isinstance(item, dict):
            reader.problem(key, item, 'set an object like {"name": "event1", "path": "/event1"}')
            continue
        reader.unknown_keys(key, item, EVENT_KEYS)
        name = item.get("name")
        if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
            reader.problem(
                f"{key}.name",
                name,
                "set a lower-case slug: a-z, 0-9 and '-', at most 32 characters,"
                " not starting or ending with '-'",
            )
            name = None
        path = item.get("path")
        if not isinstance(path, str) or not EVENT_PATH.fullmatch(path):
            reader.problem(
                f"{key}.path", path, "set a URL path like /event1: a leading '/', no trailing '/'"
            )
            path = None
        replicas = item.get("replicas", 1)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            reader.problem(f"{key}.replicas", replicas, "set a whole number of at least 1")
            replicas = 1
        elif replicas > servers:
            reader.problem(
                f"{key}.replicas",
                replicas,
                "a server runs one task of an event (the task holds the event's port) and this"
                f" stack has {servers} server(s): set at most {servers}, or add workers"
                " (docs/workers.md); to use more cores of one server, set the event's"
                " GUNICORN_WORKERS setting instead",
            )
        port = item.get("port")
        if port is not None and (
            isinstance(port, bool)
            or not isinstance(port, int)
            or not 1024 <= port <= 65536 - PORTS_PER_EVENT
            or not HOST_PORTS.isdisjoint(event_ports(port))
        ):
            reader.problem(
                f"{key}.port",
                port,
                f"set a port from 1024 to {65536 - PORTS_PER_EVENT} such that neither it nor the"
                f" next one is one of {sorted(HOST_PORTS)} (an event uses both)",
            )
            port = None
        upload_limit = _megabytes(
            reader, key, item, "uploadLimitMb", DEFAULT_UPLOAD_LIMIT_MB, 1, MAX_UPLOAD_LIMIT_MB
        )
        reservation = _megabytes(
            reader,
            key,
            item,
            "memoryReservationMb",
            DEFAULT_MEMORY_RESERVATION_MB,
            MIN_MEMORY_MB,
            MAX_MEMORY_MB,
        )
        limit = _megabytes(
            reader,
            key,
            item,
            "memoryLimitMb",
            default_memory_limit_mb(server_memory_mb),
            MIN_MEMORY_MB,
            MAX_MEMORY_MB,
        )
        if limit < reservation:
            reader.problem(
                f"{key}.memoryLimitMb",
                limit,
                f"set at least its memoryReservationMb ({reservation}), or lower that",
            )
            limit = reservation
        drop = item.get("dropDatabaseOnDelete", False)
        if not isinstance(drop, bool):
            reader.problem(f"{key}.dropDatabaseOnDelete", drop, "set true or false")
            drop = False
        settings = item.get("settings", {})
        if not isinstance(settings, dict):
            reader.problem(f"{key}.settings", settings, 'set an object like {"TIME_ZONE": "UTC"}')
            settings = {}
        for setting, value in settings.items():
            if not _is_settable(setting):
                reader.problem(f"{key}.settings.{setting}", value, SETTABLE_FIX)
            elif not isinstance(value, str):
                reader.problem(f"{key}.settings.{setting}", value, "quote the value as a string")
        if name is None or path is None:
            continue
        events.append(
            EventConfig(
                name=name,
                path=path,
                replicas=replicas,
                port=port if port is not None else default_port(name),
                drop_database_on_delete=drop,
                settings=MappingProxyType({k: str(v) for k, v in settings.items()}),
                upload_limit_mb=upload_limit,
                memory_reservation_mb=reservation,
                memory_limit_mb=limit,
            )
        )
    _check_events_together(reader, events)
    _check_memory(reader, events, server_memory_mb)
    return tuple(events)


def memory_needed_mb(events: list[EventConfig] | tuple[EventConfig, ...]) -> int:
    """What the manager needs for ``events``: the host's own share, every event's reservation
    (each has a task there), and room for the one with the most between its reservation and its
    limit to reach its limit (a busy or leaking site) without the kernel killing another."""
    headroom = max((e.memory_limit_mb - e.memory_reservation_mb for e in events), default=0)
    return HOST_MEMORY_MB + sum(e.memory_reservation_mb for e in events) + headroom


def _check_memory(reader: _Reader, events: list[EventConfig], server_memory_mb: int) -> None:
    needed = memory_needed_mb(events)
    if needed > server_memory_mb:
        reservations = sum(e.memory_reservation_mb for e in events)
        reader.problems.append(
            f"events: {len(events)} events need {needed} MB on the server, which has"
            f" {server_memory_mb} MB ({HOST_MEMORY_MB} MB for the host, {reservations} MB of"
            " events[*].memoryReservationMb, and the largest memoryLimitMb above its"
            f" reservation, {needed - HOST_MEMORY_MB - reservations} MB): remove an event, lower"
            " events[*].memoryReservationMb or memoryLimitMb, or give the server more memory"
            " (dropletSize, e.g. s-1vcpu-2gb; serverMemoryMb for an existing server)"
        )


def _event_secrets(
    reader: _Reader, events: tuple[EventConfig, ...]
) -> dict[str, dict[str, pulumi.Output[str]]]:
    """``eventSecrets``: per event, settings that reach its site as swarm secrets.

    The problems name keys only, never a value: this whole key is secret.
    """
    raw = reader.config.get("eventSecrets")
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        reader.problems.append(
            "eventSecrets: is not an object of events: set each value with pulumi config set"
            " --secret --path 'eventSecrets.<event>.<NAME>' <value>"
        )
        return {}
    by_name = {event.name: event for event in events}
    result: dict[str, dict[str, pulumi.Output[str]]] = {}
    for event_name, secrets in value.items():
        key = f"eventSecrets.{event_name}"
        event = by_name.get(event_name)
        if event is None:
            reader.problems.append(
                f"{key}: no event is named {event_name!r}: use an event's name, or remove it"
                f" (pulumi config rm --path '{key}')"
            )
            continue
        if not isinstance(secrets, dict):
            reader.problems.append(f"{key}: is not an object: set {key}.<NAME> to each value")
            continue
        for setting, secret in secrets.items():
            if not _is_settable(setting):
                reader.problems.append(f"{key}.{setting}: is not a name it may set: {SETTABLE_FIX}")
            elif setting in event.settings or f"{setting}_FILE" in event.settings:
                reader.problems.append(
                    f"{key}.{setting}: is also in events[{event_name}].settings: keep it in one"
                    " place (a secret belongs here)"
                )
            elif not isinstance(secret, str) or secret == "":
                reader.problems.append(f"{key}.{setting}: is not a non-empty text: quote it")
            else:
                result.setdefault(event_name, {})[setting] = pulumi.Output.secret(secret)
    return result


def _check_events_together(reader: _Reader, events: list[EventConfig]) -> None:
    for attribute in ("name", "path"):
        seen: dict[Any, str] = {}
        for event in events:
            value = getattr(event, attribute)
            if value in seen:
                fix = f"events {seen[value]!r} and {event.name!r} share it: make each unique"
                reader.problem(f"events[{event.name}].{attribute}", value, fix)
            seen.setdefault(value, event.name)
    port_owners: dict[int, str] = {}
    for event in events:
        taken = [port_owners[port] for port in event_ports(event.port) if port in port_owners]
        if taken:
            reader.problem(
                f"events[{event.name}].port",
                event.port,
                f"event {taken[0]!r} uses it or the next port (an event uses its port and the"
                f" next one): set an explicit port on one of them, at least {PORTS_PER_EVENT}"
                " apart",
            )
        for port in event_ports(event.port):
            port_owners.setdefault(port, event.name)
    for outer in events:
        for inner in events:
            if inner.path.startswith(outer.path + "/"):
                reader.problem(
                    f"events[{inner.name}].path",
                    inner.path,
                    f"it is nested under {outer.path} of event {outer.name!r}: use separate paths",
                )


def _backups(reader: _Reader, target: str, region: str) -> BackupConfig:
    """``backups`` and ``backupSecretAccessKey``: an S3 bucket (a DigitalOcean Space by default),
    or none for a repository on the server itself; schedule and retention either way."""
    raw = reader.json_value("backups", {}, dict, 'an object like {"bucket": "my-space"}')
    reader.unknown_keys("backups", raw, BACKUP_KEYS)
    secret = reader.config.get_secret("backupSecretAccessKey")
    bucket, key_id = raw.get("bucket"), raw.get("accessKeyId")
    default_endpoint = (
        f"https://{region}.digitaloceanspaces.com" if target == "digitalocean" else None
    )
    endpoint = raw.get("endpoint", default_endpoint if bucket is not None else None)
    reader.checked(
        "backups.bucket",
        bucket,
        lambda v: isinstance(v, str) and bool(BUCKET_NAME.fullmatch(v)),
        "set the bucket (Space) name: 3 to 63 of a-z, 0-9, '.' and '-'",
    )
    reader.checked(
        "backups.endpoint",
        endpoint,
        lambda v: isinstance(v, str) and bool(ENDPOINT.fullmatch(v)),
        "set the S3 endpoint URL without a path, like https://fra1.digitaloceanspaces.com",
    )
    reader.checked(
        "backups.accessKeyId",
        key_id,
        _is_word,
        "set the access key id of the bucket's key pair",
    )
    if bucket is None:
        for key in ("endpoint", "accessKeyId"):
            if key in raw:
                reader.problem(
                    f"backups.{key}", raw[key], "set backups.bucket too, or remove this key"
                )
        if secret is not None:
            reader.problems.append(
                "backupSecretAccessKey: set without backups.bucket: set the bucket, or"
                " pulumi config rm backupSecretAccessKey"
            )
    else:
        needed = (
            (endpoint, "backups.endpoint", "set the S3 endpoint URL of the bucket (https://...)"),
            (key_id, "backups.accessKeyId", "set the access key id of the bucket's key pair"),
            (
                secret,
                "backupSecretAccessKey",
                "pulumi config set --secret backupSecretAccessKey <secret of the key pair>",
            ),
        )
        for value, key, fix in needed:
            if value is None:
                reader.missing(key, fix)
    schedule = raw.get("schedule", DEFAULT_BACKUP_SCHEDULE)
    reader.checked(
        "backups.schedule",
        schedule,
        lambda v: isinstance(v, str) and bool(SCHEDULE.fullmatch(v)),
        "set a systemd calendar expression like '*-*-* 03:00:00 UTC' or 'daily'",
    )
    keep = {}
    for key, default in DEFAULT_RETENTION.items():
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
            reader.problem(f"backups.{key}", value, "set a whole number from 0 to 1000")
            value = default
        keep[key] = value
    if not any(keep.values()):
        reader.problem(
            "backups.keepDaily",
            0,
            "keep at least one backup: set keepDaily, keepWeekly or keepMonthly",
        )
    return BackupConfig(
        bucket=bucket if isinstance(bucket, str) else None,
        endpoint=endpoint if isinstance(endpoint, str) else None,
        access_key_id=key_id if isinstance(key_id, str) else None,
        secret_access_key=secret,
        schedule=schedule if isinstance(schedule, str) else DEFAULT_BACKUP_SCHEDULE,
        keep_daily=keep["keepDaily"],
        keep_weekly=keep["keepWeekly"],
        keep_monthly=keep["keepMonthly"],
    )


def _registry(
    reader: _Reader,
    password: pulumi.Output[str] | None,
    pull_password: pulumi.Output[str] | None,
) -> RegistryConfig:
    raw = reader.json_value(
        "registry", None, dict, 'an object {"server", "repository", "username"}'
    )
    raw = raw or {}
    if reader.config.get("registry") is None:
        reader.missing(
            "registry",
            'set {"server": "ghcr.io", "repository": "owner/app", "username": "owner"}',
        )
    for unknown in sorted(set(raw) - {"server", "repository", "username"}):
        reader.problem(f"registry.{unknown}", raw[unknown], "remove it")
    server = raw.get("server", "ghcr.io")
    repository = raw.get("repository")
    username = raw.get("username")
    reader.checked(
        "registry.server",
        server,
        lambda v: isinstance(v, str) and bool(REGISTRY_SERVER.fullmatch(v)),
        "set a lower-case registry host name like ghcr.io (no scheme, no path)",
    )
    if repository is None and raw:
        reader.missing("registry.repository", "set the image repository, e.g. ieee-branch/hits")
    reader.checked(
        "registry.repository",
        repository,
        lambda v: isinstance(v, str) and bool(REGISTRY_REPOSITORY.fullmatch(v)),
        "set a lower-case repository like owner/app without a tag (GHCR requires lower case)",
    )
    if username is None and raw:
        reader.missing("registry.username", "set the user the registry password belongs to")
    reader.checked(
        "registry.username",
        username,
        _is_word,
        "set the registry user name",
    )
    if password is None:
        reader.missing(
            "registryPassword",
            "pulumi config set --secret registryPassword <token> (a token that can push)",
        )
    password = password if password is not None else pulumi.Output.secret("")
    return RegistryConfig(
        server=str(server),
        repository=str(repository),
        username=str(username),
        password=password,
        pull_password=pull_password if pull_password is not None else password,
    )


def _host_key(reader: _Reader, key: str, line: Any) -> str | None:
    """The OpenSSH host key ``line`` set under ``key`` ("<type> <base64>"), or None."""
    host_key = openssh_public_key(line) if isinstance(line, str) and line else None
    if line is not None and host_key is None:
        reader.problem(
            key,
            line,
            "paste the server's host key without the host name, as ssh-keyscan -t ed25519 <host>"
            " prints it after the name (ssh-ed25519 AAAA...), or remove it to trust the key seen"
            " on first contact",
        )
    return host_key


def _workers(reader: _Reader, target: str, advertise_address: str | None) -> WorkersConfig:
    """``workers``: {count, size} droplets (digitalocean) or a list of hosts (existing)."""
    if target == "digitalocean":
        raw = reader.json_value("workers", {}, dict, 'an object like {"count": 1}')
        reader.unknown_keys("workers", raw, WORKER_DROPLET_KEYS)
        count = raw.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_WORKERS:
            reader.problem("workers.count", count, f"set a whole number from 0 to {MAX_WORKERS}")
            count = 0
        size = raw.get("size")
        if size is not None and not _is_word(size):
            reader.problem("workers.size", size, "set a droplet size slug like s-1vcpu-1gb")
            size = None
        return WorkersConfig(count=count, size=size)
    raw = reader.json_value(
        "workers", [], list, 'a list of hosts like [{"host": "203.0.113.11", "advertiseAddress":'
        ' "10.0.0.11"}]'
    )  # fmt: skip
    if len(raw) > MAX_WORKERS:
        reader.problem("workers", raw, f"list at most {MAX_WORKERS} hosts")
    hosts: list[WorkerHost] = []
    for i, item in enumerate(raw):
        key = f"workers[{i}]"
        if not isinstance(item, dict):
            reader.problem(key, item, 'set an object like {"host": "203.0.113.11"}')
            continue
        reader.unknown_keys(key, item, WORKER_HOST_KEYS)
        host = item.get("host")
        if not isinstance(host, str) or not (_is_address(host) or HOSTNAME.fullmatch(host)):
            reader.problem(f"{key}.host", host, "set the worker's IP address or DNS name")
            host = None
        ssh_port = item.get("sshPort", 22)
        if (
            isinstance(ssh_port, bool)
            or not isinstance(ssh_port, int)
            or not 1 <= ssh_port <= 65535
        ):
            reader.problem(f"{key}.sshPort", ssh_port, "set a port number from 1 to 65535")
        address = item.get("advertiseAddress", host)
        if not isinstance(address, str) or not _is_address(address):
            reader.problem(
                f"{key}.advertiseAddress",
                address,
                "set the worker's IP address on the network it shares with the manager",
            )
            address = None
        host_key = _host_key(reader, f"{key}.sshHostKey", item.get("sshHostKey"))
        if host and address and isinstance(ssh_port, int):
            hosts.append(WorkerHost(host, ssh_port, host_key, address))
    addresses = [worker.advertise_address for worker in hosts]
    for address in sorted({a for a in addresses if addresses.count(a) > 1}):
        reader.problems.append(
            f"workers: advertiseAddress {address!r} is listed more than once: list each worker once"
        )
    if raw and advertise_address is None:
        reader.missing(
            "advertiseAddress",
            "with workers, set the manager's IP address on the network it shares with them"
            " (they join the swarm and reach PostgreSQL there)",
        )
    return WorkersConfig(count=len(hosts), hosts=tuple(hosts))


def load_config(config: pulumi.Config | None = None) -> StackConfig:
    """The validated stack config; raises :class:`ConfigError` listing every problem."""
    reader = _Reader(config or pulumi.Config(NAMESPACE))
    target = reader.one_of("target", "digitalocean", TARGETS)
    _check_keys(reader, target)

    ssh_private_key = reader.config.get_secret("sshPrivateKey")
    ssh_public_key = reader.text("sshPublicKey")
    host = reader.text("host")
    if target == "existing":
        if host is None:
            reader.missing("host", "pulumi config set host <address of the server>")
        if ssh_private_key is None:
            reader.missing(
                "sshPrivateKey",
                "pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519 (root's key)",
            )
    elif ssh_public_key is not None and ssh_private_key is None:
        reader.missing(
            "sshPrivateKey",
            "with your own sshPublicKey, also set its private key:"
            " pulumi config set --secret sshPrivateKey < key (or remove sshPublicKey to use a"
            " generated key)",
        )
    elif ssh_public_key is None and ssh_private_key is not None:
        reader.problems.append(
            "sshPrivateKey: set without sshPublicKey: set sshPublicKey to its public key, or"
            " remove sshPrivateKey to use a generated key"
        )
    reader.checked(
        "host",
        host,
        lambda v: _is_address(v) or bool(HOSTNAME.fullmatch(v)),
        "set an IP address or a DNS name",
    )
    reader.checked(
        "sshPublicKey",
        ssh_public_key,
        lambda v: openssh_public_key(v) is not None,
        "paste one OpenSSH public key line (ssh-ed25519 AAAA...)",
    )
    ssh_host_key = _host_key(reader, "sshHostKey", reader.text("sshHostKey"))
    advertise_address = reader.text("advertiseAddress")
    reader.checked("advertiseAddress", advertise_address, _is_address, "set an IP address")

    cidrs = reader.json_value("sshAllowedCidrs", ["0.0.0.0/0", "::/0"], list, "a list of CIDRs")
    for i, cidr in enumerate(cidrs):
        reader.checked(
            f"sshAllowedCidrs[{i}]", cidr, _is_network, "set a CIDR like 198.51.100.0/24"
        )
    if not cidrs:
        reader.problem("sshAllowedCidrs", cidrs, "allow at least one CIDR, or SSH is unreachable")

    domain = reader.text("domain")
    if domain is not None:
        domain = domain.lower()
    reader.checked(
        "domain",
        domain,
        lambda v: bool(HOSTNAME.fullmatch(v)),
        "set a host name like ieee.example.org",
    )
    tls_email = reader.text("tlsEmail")
    if tls_email is not None and domain is None:
        reader.problems.append(
            "tlsEmail: set without domain: TLS needs the public host name: set domain"
        )
    reader.checked(
        "tlsEmail",
        tls_email,
        lambda v: bool(EMAIL.fullmatch(v)),
        "set the e-mail address Let's Encrypt writes to about expiring certificates",
    )
    manage_dns = reader.boolean("manageDns", False)
    if manage_dns and domain is None:
        reader.problems.append("manageDns: true without domain: set domain, or set manageDns false")

    swarm_subnet = reader.text("swarmSubnet", "172.20.0.0/16")
    if not _is_swarm_subnet(swarm_subnet):
        reader.problem(
            "swarmSubnet",
            swarm_subnet,
            "set a private IPv4 network of /24 or larger, like 172.20.0.0/16, not used elsewhere",
        )
        swarm_subnet = "172.20.0.0/16"
    else:
        swarm_subnet = str(ipaddress.ip_network(swarm_subnet))

    droplet_image = reader.text("dropletImage", "debian-13-x64")
    reader.checked(
        "dropletImage",
        droplet_image,
        _is_supported_image,
        f"set debian-{MIN_DEBIAN_RELEASE}-x64 (the host needs Debian {MIN_DEBIAN_RELEASE} or newer"
        " for Docker 26), or the numeric id of a snapshot of such a droplet",
    )

    registry = _registry(
        reader,
        reader.config.get_secret("registryPassword"),
        reader.config.get_secret("registryPullPassword"),
    )
    base_image = reader.text("baseImage", "python:3.13-slim")

    workers = _workers(reader, target, advertise_address)
    droplet_size = reader.text("dropletSize", "s-1vcpu-1gb")
    server_memory_mb = _server_memory(reader, target, droplet_size)
    events = _events(reader, 1 + workers.count, server_memory_mb)
    stack = StackConfig(
        target=target,
        region=reader.text("region", "fra1"),
        droplet_size=droplet_size,
        droplet_image=droplet_image,
        postgres_volume_gb=reader.integer("postgresVolumeGb", DEFAULT_POSTGRES_VOLUME_GB, 0, 16384),
        reserved_ip=reader.boolean("reservedIp", False),
        manage_dns=manage_dns,
        ssh_allowed_cidrs=tuple(str(c) for c in cidrs),
        ssh_public_key=ssh_public_key.strip() if ssh_public_key else None,
        host=host,
        ssh_port=reader.integer("sshPort", 22, 1, 65535),
        ssh_private_key=ssh_private_key,
        ssh_host_key=ssh_host_key,
        advertise_address=advertise_address,
        domain=domain,
        tls_email=tls_email,
        registry=registry,
        base_image=base_image,
        swarm_subnet=swarm_subnet,
        server_memory_mb=server_memory_mb,
        workers=workers,
        events=events,
        event_secrets=_event_secrets(reader, events),
        backups=_backups(reader, target, reader.text("region", "fra1")),
    )
    if reader.problems:
        raise ConfigError(
            f"The stack config has {len(reader.problems)} problem(s):\n"
            + "\n".join(reader.problems)
        )
    return stack
