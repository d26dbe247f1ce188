"""Shared fixtures of the infra unit tests: stack configs as a user sets them.

``prod_config`` is Pulumi.prod.yaml itself (plus the secrets a user sets with ``--secret``), so
the tests check the configuration the README tells people to start from.
"""

from __future__ import annotations

import base64
import shlex
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

REPO_ROOT = Path(__file__).resolve().parents[2]
# The harness lives in tests/; the program's modules are top-level imports from infra/.
for path in (REPO_ROOT / "tests", REPO_ROOT / "infra"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import tls_gate  # noqa: E402
from deploy import PROJECT  # noqa: E402
from harness import FakeCloud, ProgramRun, run_program  # noqa: E402
from remote_script import LIBRARY, script_text  # noqa: E402

# Distinctive secret values: any of them found outside a secret input or output is a leak.
REGISTRY_PASSWORD = "ghp_REGISTRY-PASSWORD-must-not-leak"
EXISTING_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nEXISTING-HOST-KEY-must-not-leak\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def openssh_public_key_line(comment: str = "") -> str:
    """A new, real ed25519 public key as one OpenSSH line (``ssh-ed25519 AAAA... comment``)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} {comment}".strip()


@dataclass(frozen=True)
class UserConfig:
    """Stack config values (plain keys, as after ``pulumi config set``) and the secret keys."""

    values: dict[str, Any]
    secret_keys: frozenset[str] = field(default_factory=frozenset)

    def with_(self, **changes: Any) -> UserConfig:
        return UserConfig({**self.values, **changes}, self.secret_keys)

    def with_secret(self, key: str, value: Any) -> UserConfig:
        return UserConfig({**self.values, key: value}, self.secret_keys | {key})

    def without(self, *keys: str) -> UserConfig:
        values = {k: v for k, v in self.values.items() if k not in keys}
        return UserConfig(values, self.secret_keys - set(keys))

    def run(self, preview: bool = False) -> ProgramRun:
        return run_program(self.values, self.secret_keys, mocks=FakeCloud(preview), preview=preview)

    @property
    def secret_values(self) -> list[str]:
        return [self.values[k] for k in self.secret_keys]


def prod_stack_values() -> dict[str, Any]:
    """The keys of Pulumi.prod.yaml without the project prefix."""
    config = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    prefix = f"{PROJECT}:"
    return {key.removeprefix(prefix): value for key, value in config.items()}


@pytest.fixture
def prod_config() -> UserConfig:
    """Pulumi.prod.yaml plus ``pulumi config set --secret registryPassword``."""
    return UserConfig(prod_stack_values()).with_secret("registryPassword", REGISTRY_PASSWORD)


@pytest.fixture
def existing_config() -> UserConfig:
    """Target ``existing``: a Debian server reachable over SSH, no TLS, two events."""
    values = {
        "target": "existing",
        "host": "198.51.100.7",
        "sshPort": 2222,
        "registry": {"server": "ghcr.io", "repository": "ieee-branch/hits", "username": "bot"},
        "events": [
            {"name": "event1", "path": "/event1"},
            {"name": "event2", "path": "/event2"},
        ],
    }
    return (
        UserConfig(values)
        .with_secret("registryPassword", REGISTRY_PASSWORD)
        .with_secret("sshPrivateKey", EXISTING_PRIVATE_KEY)
    )


# The public DNS as the program would see it (these machines cannot reach it): the production
# domain already points at the reserved IP that the mock cloud gives the droplet.
RESERVED_IP = "203.0.113.20"
PUBLIC_DNS = {"ieee.example.org": {RESERVED_IP}}


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Name -> IPv4 addresses answered to the program's DNS look-ups; a test may change it."""
    table = {name: set(addresses) for name, addresses in PUBLIC_DNS.items()}
    monkeypatch.setattr(tls_gate, "lookup_ipv4", lambda name: set(table.get(name, set())))
    return table


def step_program(inputs: Mapping[str, Any], which: str = "create") -> str:
    """The program a step's ``create`` (or ``delete``) loader reads from its stdin."""
    line = inputs["stdin"].splitlines()[0 if which == "create" else 1]
    return base64.b64decode(line).decode()


def step_secrets(inputs: Mapping[str, Any]) -> list[str]:
    """The secrets a step sends on stdin after its two programs, decoded."""
    return [base64.b64decode(line).decode() for line in inputs["stdin"].splitlines()[2:]]


def script_params(inputs: Mapping[str, Any], which: str = "create") -> dict[str, str]:
    """The ``NAME='value'`` assignments render_script put before lib.sh and the script body."""
    prefix = step_program(inputs, which).split(script_text(LIBRARY), 1)[0]
    assignments = shlex.split(prefix.removeprefix("set -euo pipefail\n"))
    return dict(assignment.split("=", 1) for assignment in assignments)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
