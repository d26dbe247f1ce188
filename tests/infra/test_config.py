"""The stack config model: defaults, derived values, and every validation rule's message."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import REPO_ROOT, UserConfig, openssh_public_key_line

import config as stack_config
from config import ConfigError


def problems(user: UserConfig) -> list[str]:
    """The problem lines of the ConfigError the program raises for ``user``'s config."""
    with pytest.raises(ConfigError) as raised:
        user.run()
    header, *lines = str(raised.value).splitlines()
    assert header == f"The stack config has {len(lines)} problem(s):"
    return lines


def loaded(user: UserConfig) -> stack_config.StackConfig:
    """The StackConfig the program builds, captured from load_config during a real run."""
    captured = []
    original = stack_config.load_config

    def capture(*args, **kwargs):
        captured.append(original(*args, **kwargs))
        return captured[-1]

    stack_config.load_config = capture
    try:
        user.run()
    finally:
        stack_config.load_config = original
    return captured[0]


def test_prod_config_is_valid_and_typed(prod_config):
    cfg = loaded(prod_config)
    assert cfg.target == "digitalocean"
    assert cfg.droplet_image == "debian-13-x64"
    assert cfg.tls_enabled
    assert cfg.swarm_gateway == "172.20.0.1"
    assert cfg.registry.image_name == "ghcr.io/ieee-branch/hits"
    assert [(e.name, e.path, e.replicas) for e in cfg.events] == [
        ("spring-hackathon", "/spring", 1),
        ("autumn-hackathon", "/autumn", 1),
    ]
    assert dict(cfg.events[0].settings) == {"GUNICORN_WORKERS": "3"}


def test_defaults_for_a_minimal_config(prod_config):
    minimal = prod_config.without(
        "target",
        "region",
        "dropletSize",
        "dropletImage",
        "postgresVolumeGb",
        "reservedIp",
        "manageDns",
        "sshAllowedCidrs",
        "domain",
        "tlsEmail",
        "baseImage",
        "swarmSubnet",
    ).with_(
        registry={"repository": "ieee-branch/hits", "username": "bot"},
        events=[{"name": "event1", "path": "/event1"}],
    )
    cfg = loaded(minimal)
    assert (cfg.target, cfg.region, cfg.droplet_size, cfg.droplet_image) == (
        "digitalocean",
        "fra1",
        "s-1vcpu-1gb",
        "debian-13-x64",
    )
    assert cfg.postgres_volume_gb == 10
    assert not cfg.reserved_ip and not cfg.manage_dns
    assert cfg.ssh_allowed_cidrs == ("0.0.0.0/0", "::/0")
    assert cfg.ssh_public_key is None and cfg.ssh_private_key is None
    assert cfg.registry.server == "ghcr.io"
    assert cfg.base_image == "python:3.13-slim"
    assert (cfg.swarm_subnet, cfg.swarm_gateway) == ("172.20.0.0/16", "172.20.0.1")
    assert not cfg.tls_enabled and cfg.domain is None
    event = cfg.events[0]
    assert event.replicas == 1 and not event.drop_database_on_delete and dict(event.settings) == {}
    assert event.upload_limit_mb == 20


def test_existing_target_defaults(existing_config):
    cfg = loaded(existing_config.without("sshPort"))
    assert (cfg.target, cfg.host, cfg.ssh_port) == ("existing", "198.51.100.7", 22)
    assert cfg.advertise_address is None


def test_default_ports_are_stable_distinct_and_in_range(prod_config):
    cfg = loaded(prod_config)
    ports = [e.port for e in cfg.events]
    assert len(set(ports)) == len(ports)
    assert all(20000 <= p < 30000 for p in ports)
    assert ports == [e.port for e in loaded(prod_config).events]
    assert ports[0] == stack_config.default_port("spring-hackathon")


def test_backups_default_to_the_server_itself_daily_with_a_retention(prod_config):
    backups = loaded(prod_config).backups
    assert not backups.off_host and backups.bucket is None and backups.endpoint is None
    assert backups.schedule == "*-*-* 03:00:00 UTC"
    assert (backups.keep_daily, backups.keep_weekly, backups.keep_monthly) == (7, 4, 6)


def test_a_bucket_is_a_space_of_the_droplets_region_unless_an_endpoint_is_set(prod_config):
    user = prod_config.with_(
        region="ams3", backups={"bucket": "ieee-backups", "accessKeyId": "DO00KEY"}
    ).with_secret("backupSecretAccessKey", "secret")
    backups = loaded(user).backups
    assert backups.off_host and backups.endpoint == "https://ams3.digitaloceanspaces.com"
    other = user.with_(
        backups={"bucket": "b-1", "accessKeyId": "K", "endpoint": "http://10.0.0.5:9000"}
    )
    assert loaded(other).backups.endpoint == "http://10.0.0.5:9000"


def test_an_existing_server_with_a_bucket_needs_its_endpoint(existing_config):
    user = existing_config.with_(
        backups={"bucket": "ieee-backups", "accessKeyId": "K"}
    ).with_secret("backupSecretAccessKey", "secret")
    assert any(line.startswith("backups.endpoint: missing") for line in problems(user))


def test_the_buckets_secret_key_must_be_stored_as_a_secret(prod_config):
    user = prod_config.with_(
        backups={"bucket": "ieee-backups", "accessKeyId": "K"}, backupSecretAccessKey="plain"
    )
    assert any(
        line.startswith("backupSecretAccessKey: stored in plain text") for line in problems(user)
    )


def test_swarm_gateway_follows_the_subnet(prod_config):
    cfg = loaded(prod_config.with_(swarmSubnet="10.99.0.0/24"))
    assert cfg.swarm_gateway == "10.99.0.1"


EVENTS = [{"name": "event1", "path": "/event1"}, {"name": "event2", "path": "/event2"}]

# (what the user set, the key the message names, words of the fix it gives)
RULES = [
    ({"target": "aws"}, "target", "one of digitalocean, existing"),
    ({"events": [{"name": "Event_1", "path": "/e"}]}, "events[0].name", "lower-case slug"),
    ({"events": [{"name": "-event", "path": "/e"}]}, "events[0].name", "lower-case slug"),
    ({"events": [{"name": "e" * 33, "path": "/e"}]}, "events[0].name", "at most 32"),
    (
        {"events": [{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}]},
        "events[a].name",
        "make each unique",
    ),
    ({"events": [{"name": "a", "path": "a"}]}, "events[0].path", "leading '/'"),
    ({"events": [{"name": "a", "path": "/a/"}]}, "events[0].path", "no trailing '/'"),
    (
        {"events": [{"name": "a", "path": "/x"}, {"name": "b", "path": "/x"}]},
        "events[b].path",
        "make each unique",
    ),
    (
        {"events": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/a/b"}]},
        "events[b].path",
        "nested under /a",
    ),
    ({"events": [{"name": "a", "path": "/a", "replicas": 0}]}, "events[0].replicas", "at least 1"),
    ({"events": [{"name": "a", "path": "/a", "port": 5432}]}, "events[0].port", "next one"),
    # The next port is the event's too.
    ({"events": [{"name": "a", "path": "/a", "port": 5431}]}, "events[0].port", "next one"),
    ({"events": [{"name": "a", "path": "/a", "port": 65535}]}, "events[0].port", "to 65534"),
    (
        {"events": [{"name": "a", "path": "/a", "uploadLimitMb": 0}]},
        "events[0].uploadLimitMb",
        "from 1 to 1024",
    ),
    (
        {"events": [{"name": "a", "path": "/a", "uploadLimitMb": "50m"}]},
        "events[0].uploadLimitMb",
        "whole number of megabytes",
    ),
    (
        {"events": [{"name": "a", "path": "/a", "replicas": 2}]},
        "events[0].replicas",
        "has 1 server(s): set at most 1, or add workers",
    ),
    (
        {"workers": {"count": 1}, "events": [{"name": "a", "path": "/a", "replicas": 3}]},
        "events[0].replicas",
        "has 2 server(s): set at most 2",
    ),
    ({"workers": {"count": 11}}, "workers.count", "from 0 to 10"),
    ({"workers": {"count": "2"}}, "workers.count", "whole number"),
    ({"workers": {"count": 1, "size": "a b"}}, "workers.size", "size slug"),
    ({"workers": {"count": 1, "region": "ams3"}}, "workers.region", "known: ['count', 'size']"),
    ({"workers": [{"host": "203.0.113.11"}]}, "workers", '{"count": 1}'),
    (
        {"events": [{"name": "a", "path": "/a", "settings": {"DB_PASSWORD_FILE": "/x"}}]},
        "events[0].settings.DB_PASSWORD_FILE",
        "does not set itself",
    ),
    (
        {
            "events": [
                {"name": "a", "path": "/a", "port": 21000},
                {"name": "b", "path": "/b", "port": 21000},
            ]
        },
        "events[b].port",
        "explicit port",
    ),
    (
        {
            "events": [
                {"name": "a", "path": "/a", "port": 21000},
                {"name": "b", "path": "/b", "port": 21001},
            ]
        },
        "events[b].port",
        "at least 2 apart",
    ),
    ({"events": [{"name": "a", "path": "/a", "colour": "red"}]}, "events[0].colour", "remove it"),
    (
        {"events": [{"name": "a", "path": "/a", "settings": {"SECRET_KEY": "x"}}]},
        "events[0].settings.SECRET_KEY",
        "does not set itself",
    ),
    ({"events": []}, "events", "at least one event"),
    (
        {"events": [{"name": "a", "path": "/a", "memoryLimitMb": "256M"}]},
        "events[0].memoryLimitMb",
        "whole number of megabytes",
    ),
    (
        {"events": [{"name": "a", "path": "/a", "memoryReservationMb": 8}]},
        "events[0].memoryReservationMb",
        "from 32 to 65536",
    ),
    (
        {"events": [{"name": "a", "path": "/a", "memoryReservationMb": 128, "memoryLimitMb": 96}]},
        "events[0].memoryLimitMb",
        "at least its memoryReservationMb (128)",
    ),
    ({"serverMemoryMb": 256}, "serverMemoryMb", "from 512 to 65536"),
    ({"dropletSize": "c-2"}, "dropletSize", "also set serverMemoryMb"),
    ({"sshAllowedCidrs": ["10.0.0.0/33"]}, "sshAllowedCidrs[0]", "CIDR"),
    ({"sshAllowedCidrs": ["office"]}, "sshAllowedCidrs[0]", "CIDR"),
    ({"swarmSubnet": "172.20.0.0/28"}, "swarmSubnet", "/24 or larger"),
    ({"swarmSubnet": "8.8.0.0/16"}, "swarmSubnet", "private IPv4"),
    ({"tlsEmail": "webmaster"}, "tlsEmail", "e-mail address"),
    ({"domain": "https://ieee.example.org/"}, "domain", "host name"),
    (
        {"registry": {"server": "ghcr.io", "repository": "IEEE-Branch/Hits", "username": "x"}},
        "registry.repository",
        "lower-case",
    ),
    (
        {"registry": {"server": "GHCR.io", "repository": "a/b", "username": "x"}},
        "registry.server",
        "lower-case",
    ),
    ({"registry": {"server": "ghcr.io", "username": "x"}}, "registry.repository", "missing"),
    ({"postgresVolumeGb": "-1"}, "postgresVolumeGb", "whole number"),
    ({"reservedIp": "yes"}, "reservedIp", "true or false"),
    ({"publishMode": "host"}, "publishMode", "no longer used, every event now publishes"),
    ({"host": "198.51.100.7"}, "host", "not used with target 'digitalocean'"),
    ({"dropletsize": "s-2vcpu-4gb"}, "dropletsize", "unknown key"),
    # Docker 26, which the host steps need, comes with Debian 13.
    ({"dropletImage": "debian-12-x64"}, "dropletImage", "set debian-13-x64"),
    ({"dropletImage": "ubuntu-24-04-x64"}, "dropletImage", "Debian 13 or newer"),
    (
        {"sshPublicKey": openssh_public_key_line("me@laptop")},
        "sshPrivateKey",
        "also set its private key",
    ),
    ({"sshPublicKey": "ssh-ed25519 AAAAC3Nz me@laptop"}, "sshPublicKey", "OpenSSH public key"),
    ({"sshPublicKey": "ecdsa-sha2-nistp256"}, "sshPublicKey", "OpenSSH public key"),
    # ssh-keyscan prints the host name first: the key alone is what the server presents.
    (
        {"sshHostKey": "[203.0.113.5]:22 " + openssh_public_key_line()},
        "sshHostKey",
        "without the host name",
    ),
    # A key of one type that claims to be another.
    (
        {"sshHostKey": "ssh-rsa " + openssh_public_key_line().split()[1]},
        "sshHostKey",
        "ssh-keyscan -t ed25519",
    ),
    ({"sshHostKey": "ssh-ed25519 not*base64"}, "sshHostKey", "trust the key seen on first contact"),
    ({"backups": ["my-space"]}, "backups", "an object like"),
    ({"backups": {"bucket": "My_Space"}}, "backups.bucket", "3 to 63 of a-z"),
    ({"backups": {"bucket": "events"}}, "backups.accessKeyId", "missing"),
    ({"backups": {"bucket": "events"}}, "backupSecretAccessKey", "pulumi config set --secret"),
    (
        {"backups": {"bucket": "events", "endpoint": "fra1.digitaloceanspaces.com"}},
        "backups.endpoint",
        "without a path, like https://",
    ),
    ({"backups": {"endpoint": "https://s3.example.org"}}, "backups.endpoint", "set backups.bucket"),
    ({"backups": {"schedule": "daily; rm -rf /"}}, "backups.schedule", "calendar expression"),
    ({"backups": {"keepDaily": -1}}, "backups.keepDaily", "from 0 to 1000"),
    (
        {"backups": {"keepDaily": 0, "keepWeekly": 0, "keepMonthly": 0}},
        "backups.keepDaily",
        "keep at least one backup",
    ),
    ({"backups": {"bucket": "events", "region": "x"}}, "backups.region", "remove it"),
]


@pytest.mark.parametrize(("changes", "key", "fix"), RULES, ids=[r[1] + ":" + r[2] for r in RULES])
def test_each_rule_names_key_value_and_fix(prod_config, changes, key, fix):
    lines = problems(prod_config.with_(**changes))
    matching = [line for line in lines if line.startswith(f"{key}: ")]
    assert matching, lines
    assert any(fix in line for line in matching), matching
    bad = next(iter(changes.values()))
    if isinstance(bad, str) and "invalid" in matching[0]:
        assert repr(bad) in matching[0]


@pytest.mark.parametrize("image", ["debian-13-x64", "debian-14-x64", "187654321"])
def test_droplet_images_that_can_run_the_host_steps(prod_config, image):
    assert loaded(prod_config.with_(dropletImage=image)).droplet_image == image


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"region": "nyc3"}, "region"),
        ({"postgresVolumeGb": 20}, "postgresVolumeGb"),
        ({"sshAllowedCidrs": ["192.0.2.0/24"]}, "sshAllowedCidrs"),
    ],
)
def test_existing_target_refuses_digitalocean_keys(existing_config, changes, key):
    assert problems(existing_config.with_(**changes)) == [
        f"{key}: not used with target 'existing': remove it (pulumi config rm {key})"
    ]


def test_existing_target_requires_host_and_key(existing_config):
    lines = problems(existing_config.without("host", "sshPrivateKey"))
    assert any(line.startswith("host: missing: pulumi config set host") for line in lines)
    assert any(
        line.startswith("sshPrivateKey: missing: pulumi config set --secret sshPrivateKey")
        for line in lines
    )


def test_secrets_must_be_set_as_secrets(existing_config):
    plain = UserConfig(existing_config.values, frozenset({"sshPrivateKey"}))
    assert problems(plain) == [
        "registryPassword: stored in plain text: set it again with"
        " pulumi config set --secret registryPassword"
    ]


def test_the_pull_token_must_be_a_secret_too(prod_config):
    plain = UserConfig(
        {**prod_config.values, "registryPullPassword": "ghp_x"}, prod_config.secret_keys
    )
    assert problems(plain) == [
        "registryPullPassword: stored in plain text: set it again with"
        " pulumi config set --secret registryPullPassword"
    ]


def test_registry_password_is_required(prod_config):
    assert any(
        line.startswith("registryPassword: missing: pulumi config set --secret registryPassword")
        for line in problems(prod_config.without("registryPassword"))
    )


def test_tls_email_without_domain(prod_config):
    assert "tlsEmail: set without domain: TLS needs the public host name: set domain" in problems(
        prod_config.without("domain")
    )


def test_manage_dns_needs_a_domain(prod_config):
    lines = problems(prod_config.without("domain", "tlsEmail").with_(manageDns=True))
    assert lines == ["manageDns: true without domain: set domain, or set manageDns false"]


def test_all_problems_are_reported_at_once(prod_config):
    lines = problems(
        prod_config.with_(
            target="gcp",
            swarmSubnet="nonsense",
            tlsEmail="nobody",
            events=[{"name": "A", "path": "/x/"}, {"name": "b", "path": "/b", "replicas": -2}],
        )
    )
    keys = [re.match(r"[^:]+", line).group(0) for line in lines]
    assert keys == [
        "target",
        "tlsEmail",
        "swarmSubnet",
        "events[0].name",
        "events[0].path",
        "events[1].replicas",
    ]


def test_problem_lines_do_not_show_secret_values(prod_config):
    message = "\n".join(
        problems(prod_config.with_secret("sshPrivateKey", "PRIVATE-KEY-VALUE").with_(target="x"))
    )
    assert "PRIVATE-KEY-VALUE" not in message


LEAKY = "s3cr3t-VALUE-must-not-appear"


SPRING = "eventSecrets.spring-hackathon"


@pytest.mark.parametrize(
    ("event_secrets", "key", "fix"),
    [
        ({"winter": {"API_KEY": LEAKY}}, "eventSecrets.winter", "no event is named 'winter'"),
        ({"spring-hackathon": {"api-key": LEAKY}}, f"{SPRING}.api-key", "upper-case"),
        ({"spring-hackathon": {"DB_PASSWORD": LEAKY}}, f"{SPRING}.DB_PASSWORD", "not set itself"),
        (
            {"spring-hackathon": {"GUNICORN_WORKERS": LEAKY}},
            f"{SPRING}.GUNICORN_WORKERS",
            "also in events[spring-hackathon].settings",
        ),
        ({"spring-hackathon": {"API_KEY": 42}}, f"{SPRING}.API_KEY", "quote it"),
        ({"spring-hackathon": LEAKY}, SPRING, "is not an object"),
        (LEAKY, "eventSecrets", "pulumi config set --secret --path"),
    ],
)
def test_event_secrets_problems_name_the_key_and_never_the_value(
    prod_config, event_secrets, key, fix
):
    events = prod_config.values["events"]
    events = [{**events[0], "settings": {"GUNICORN_WORKERS": "2"}}, *events[1:]]
    user = prod_config.with_(events=events).with_secret("eventSecrets", event_secrets)
    lines = problems(user)
    assert [line for line in lines if line.startswith(f"{key}: ") and fix in line], lines
    assert not [line for line in lines if LEAKY in line]


def test_event_secrets_must_be_set_as_secrets(prod_config):
    plain = prod_config.with_(eventSecrets={"spring-hackathon": {"API_KEY": LEAKY}})
    assert any(line.startswith("eventSecrets: stored in plain text") for line in problems(plain))


WORKER = {"host": "198.51.100.11", "advertiseAddress": "10.0.0.11"}
EXISTING_WORKER_RULES = [
    ({"workers": [WORKER]}, "advertiseAddress", "the manager's IP address"),
    (
        {"advertiseAddress": "10.0.0.2", "workers": [{**WORKER, "advertiseAddress": "w1"}]},
        "workers[0].advertiseAddress",
        "shares with the manager",
    ),
    (
        {"advertiseAddress": "10.0.0.2", "workers": [{**WORKER, "host": "a b"}]},
        "workers[0].host",
        "IP address or DNS name",
    ),
    (
        {"advertiseAddress": "10.0.0.2", "workers": [{**WORKER, "sshPort": 0}]},
        "workers[0].sshPort",
        "from 1 to 65535",
    ),
    (
        {"advertiseAddress": "10.0.0.2", "workers": [{**WORKER, "sshHostKey": "nope"}]},
        "workers[0].sshHostKey",
        "ssh-keyscan",
    ),
    (
        {"advertiseAddress": "10.0.0.2", "workers": [{**WORKER, "user": "x"}]},
        "workers[0].user",
        "remove it",
    ),
    ({"advertiseAddress": "10.0.0.2", "workers": [WORKER, WORKER]}, "workers", "more than once"),
    ({"workers": {"count": 1}}, "workers", "a list of hosts"),
]


@pytest.mark.parametrize(
    ("changes", "key", "fix"), EXISTING_WORKER_RULES, ids=[r[1] for r in EXISTING_WORKER_RULES]
)
def test_each_worker_rule_of_an_existing_server_names_key_and_fix(
    existing_config, changes, key, fix
):
    lines = problems(existing_config.with_(**changes))
    assert any(line.startswith(f"{key}: ") and fix in line for line in lines), lines


def test_workers_are_read_with_their_defaults(existing_config, prod_config):
    key = openssh_public_key_line()
    cfg = loaded(
        existing_config.with_(
            advertiseAddress="10.0.0.2",
            workers=[
                {"host": "198.51.100.11"},
                {"host": "w2.example.org", "sshPort": 2200, "advertiseAddress": "10.0.0.12",
                 "sshHostKey": key},
            ],
        )
    )  # fmt: skip
    assert cfg.workers == stack_config.WorkersConfig(
        count=2,
        hosts=(
            stack_config.WorkerHost("198.51.100.11", 22, None, "198.51.100.11"),
            stack_config.WorkerHost("w2.example.org", 2200, key, "10.0.0.12"),
        ),
    )
    assert loaded(prod_config).workers == stack_config.WorkersConfig()
    droplets = loaded(prod_config.with_(workers={"count": 2, "size": "s-2vcpu-2gb"})).workers
    assert droplets == stack_config.WorkersConfig(count=2, size="s-2vcpu-2gb")


def events(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"name": f"event{n}", "path": f"/event{n}", **fields} for n in range(1, count + 1)]


def test_memory_defaults_come_from_the_droplet_size(prod_config):
    small = loaded(prod_config.with_(dropletSize="s-1vcpu-1gb"))
    assert small.server_memory_mb == 1024
    assert {(e.memory_reservation_mb, e.memory_limit_mb) for e in small.events} == {(64, 256)}
    large = loaded(prod_config.with_(dropletSize="s-2vcpu-4gb"))
    assert large.server_memory_mb == 4096
    assert {e.memory_limit_mb for e in large.events} == {1024}
    assert stack_config.droplet_memory_mb("s-1vcpu-512mb-10gb") == 512
    # A slug without its memory, given by serverMemoryMb instead.
    told = loaded(prod_config.with_(dropletSize="c-2", serverMemoryMb=4096))
    assert told.server_memory_mb == 4096


def test_an_existing_server_counts_as_1_gb_unless_told(existing_config):
    assert loaded(existing_config).server_memory_mb == 1024
    told = loaded(existing_config.with_(serverMemoryMb=2048))
    assert {e.memory_limit_mb for e in told.events} == {512}


def test_eight_events_fit_a_1_gb_droplet_and_a_ninth_is_refused_naming_the_keys(prod_config):
    prod_config = prod_config.with_(dropletSize="s-1vcpu-1gb")
    eight = loaded(prod_config.with_(events=events(8)))
    assert stack_config.memory_needed_mb(eight.events) <= 1024
    (problem,) = problems(prod_config.with_(events=events(9)))
    assert problem.startswith("events: 9 events need 1088 MB on the server, which has 1024 MB")
    for key in ("memoryReservationMb", "memoryLimitMb", "dropletSize", "serverMemoryMb"):
        assert key in problem
    # Each way out the message names works.
    # docs/config.md's figures: a 2 GB droplet holds 20.
    assert loaded(prod_config.with_(events=events(20), dropletSize="s-1vcpu-2gb"))
    (problem,) = problems(prod_config.with_(events=events(21), dropletSize="s-1vcpu-2gb"))
    assert problem.startswith("events: 21 events need 2112 MB")
    assert loaded(prod_config.with_(events=events(9, memoryLimitMb=192)))
    assert loaded(prod_config.with_(events=events(9, memoryReservationMb=56)))


# A row of docs/config.md's table of what each droplet size holds:
# "| `slug`, ... | memory | limit | events |", events being a number or "none", then maybe
# "; N with `memoryLimitMb: M`".
SIZE_ROW = re.compile(
    r"^\| (?P<slugs>`[^|]+`) \| [^|]+ \| (?P<limit>\d+) \| (?P<events>none|\d+)"
    r"(?:; (?P<other>\d+) with `memoryLimitMb: (?P<other_limit>\d+)`)? \|$",
    re.M,
)


def test_the_droplet_sizes_table_of_docs_config_md_is_what_the_program_allows(prod_config):
    rows = list(SIZE_ROW.finditer((REPO_ROOT / "docs" / "config.md").read_text()))
    assert len(rows) >= 4
    for row in rows:
        for slug in re.findall(r"`([^`]+)`", row["slugs"]):
            sized = prod_config.with_(dropletSize=slug)
            holds = 0 if row["events"] == "none" else int(row["events"])
            ways = [({}, holds)]
            if row["other"]:
                ways.append(({"memoryLimitMb": int(row["other_limit"])}, int(row["other"])))
            for fields, count in ways:
                # Ports given: a hundred events' default ports (hashes of their names) collide.
                many = [
                    {**e, "port": 20000 + 2 * n} for n, e in enumerate(events(count + 1, **fields))
                ]
                if count:
                    config = loaded(sized.with_(events=many[:count]))
                    assert {e.memory_limit_mb for e in config.events} == {
                        int(fields.get("memoryLimitMb", row["limit"]))
                    }, slug
                (problem,) = problems(sized.with_(events=many))
                assert f"events: {count + 1} events need" in problem, (slug, problem)


def test_one_event_allowed_a_large_limit_counts_that_headroom_once(existing_config):
    greedy = [{"name": "big", "path": "/big", "memoryLimitMb": 600}, *events(2)]
    # 320 for the host + 3 x 64 reserved + 600 - 64 of headroom for the big one.
    (problem,) = problems(existing_config.with_(events=greedy))
    assert "need 1048 MB" in problem
    assert loaded(existing_config.with_(events=greedy[:2]))
