"""The event's database scripts run for real against the machine's PostgreSQL.

They run exactly as the program declares them (its loader, with the program and the secrets on
stdin), as root, with ``runuser -u postgres -- psql``; only the connection differs from a host,
where psql uses the local socket: here PG* variables point it at the test server over TCP as its
superuser.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from remote_script import render_loader, render_script, render_stdin
from render_event import scram_verifier

SERVER = {"host": "127.0.0.1", "port": 5432, "user": "swarm_test", "password": "swarm_test"}
# A password that breaks naive quoting in shell and SQL alike.
TRICKY_PASSWORD = 'it\'s "$HOME" `id` \\ ;-- 100%'


def run_step(script: str, params: dict[str, str], *secrets: str) -> subprocess.CompletedProcess:
    """Runs ``script`` with ``secrets`` on stdin, as the program sends them."""
    environment = {
        **os.environ,
        "PGHOST": SERVER["host"],
        "PGPORT": str(SERVER["port"]),
        "PGUSER": SERVER["user"],
        "PGPASSWORD": SERVER["password"],
    }
    program = render_script(script, params)
    return subprocess.run(
        ["bash", "-c", render_loader("test-step", script, program, "create")],
        input=render_stdin(program, None, secrets),
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def connect(database: str, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(
        host=SERVER["host"],
        port=SERVER["port"],
        dbname=database,
        user=user,
        password=password,
        connect_timeout=5,
    )


@pytest.fixture
def databases() -> Iterator[list[str]]:
    """Two event database names, unique to this test, dropped afterwards whatever happened."""
    names = [f"ev_events_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    yield names
    with psycopg.connect(dbname="postgres", autocommit=True, **SERVER) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_database_step_creates_the_role_and_its_database(databases: list[str]):
    name = databases[0]
    result = run_step("event_database.sh", {"DATABASE": name}, scram_verifier(TRICKY_PASSWORD))
    assert result.returncode == 0, result.stderr
    assert TRICKY_PASSWORD not in result.stdout + result.stderr
    with connect(name, name, TRICKY_PASSWORD) as connection:
        owner = connection.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == (name,)
        # The role can create its tables (migrations) in its own database.
        connection.execute("CREATE TABLE visits (id int)")


def test_postgres_stores_the_verifier_it_was_sent_and_never_sees_the_password(databases):
    name = databases[0]
    verifier = scram_verifier(TRICKY_PASSWORD)
    assert TRICKY_PASSWORD not in verifier
    assert run_step("event_database.sh", {"DATABASE": name}, verifier).returncode == 0
    with psycopg.connect(dbname="postgres", **SERVER) as admin:
        stored = admin.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,)
        ).fetchone()
    assert stored == (verifier,)
    # The same password gives the same verifier: an unchanged step's stdin stays unchanged.
    assert scram_verifier(TRICKY_PASSWORD) == verifier != scram_verifier(TRICKY_PASSWORD + "x")


def test_database_step_refuses_a_plain_password(databases):
    name = databases[0]
    result = run_step("event_database.sh", {"DATABASE": name}, TRICKY_PASSWORD)
    assert result.returncode == 1
    assert "not a SCRAM-SHA-256 verifier" in result.stderr
    assert TRICKY_PASSWORD not in result.stdout + result.stderr
    with psycopg.connect(dbname="postgres", **SERVER) as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone() == (0,)


def test_database_step_is_idempotent_and_rotates_the_password(databases: list[str]):
    name = databases[0]
    for password in ("first-password", "first-password", "second-password"):
        result = run_step("event_database.sh", {"DATABASE": name}, scram_verifier(password))
        assert result.returncode == 0, result.stderr
    with connect(name, name, "second-password"):
        pass
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(name, name, "first-password")


def test_an_event_role_cannot_connect_to_another_events_database(databases: list[str]):
    first, second = databases
    for name in databases:
        result = run_step(
            "event_database.sh", {"DATABASE": name}, scram_verifier(f"{name}-password")
        )
        assert result.returncode == 0, result.stderr
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(first, second, f"{second}-password")


def test_drop_step_removes_the_database_and_the_role(databases: list[str]):
    name = databases[0]
    assert run_step("event_database.sh", {"DATABASE": name}, scram_verifier("pw")).returncode == 0
    with connect(name, name, "pw"):
        # An open session does not stop the drop.
        result = run_step("event_database_drop.sh", {"DATABASE": name})
    assert result.returncode == 0, result.stderr
    with psycopg.connect(dbname="postgres", **SERVER) as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone() == (0,)
        assert admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone() == (0,)
    # Dropping what is gone is not an error (a retried delete).
    assert run_step("event_database_drop.sh", {"DATABASE": name}).returncode == 0
