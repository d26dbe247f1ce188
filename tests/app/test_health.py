"""Health endpoint and behaviour while PostgreSQL is unreachable or restarting."""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from conftest import (
    APP_DIR,
    connect_test_db,
    free_port,
    gunicorn,
    manage,
    process_env,
    site_env,
)

from hits.management.commands.migrate_locked import MIGRATION_LOCK_KEY
from hits.models import SITE_COUNTER, Counter


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "database unavailable"}


def concurrent_visits(url: str, count: int) -> list[requests.Response]:
    """``count`` visits from 8 clients at once: more than gunicorn's threads, so each gets work."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: requests.get(url, timeout=15), range(count)))


def test_health_is_ok_with_the_database_and_is_not_a_visit(sites, live_db):
    for _ in range(3):
        health = requests.get(f"{sites.base_url}/event1/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
    assert not Counter.objects.filter(name=SITE_COUNTER).exists()
    assert requests.get(f"{sites.base_url}/event1/", timeout=10).json() == {"hits": 1}
    requests.get(f"{sites.base_url}/event1/healthz", timeout=10)
    assert Counter.objects.get(name=SITE_COUNTER).hits == 1


def test_health_answers_any_host_but_pages_only_allowed_hosts(sites, live_db):
    # The container's health check calls 127.0.0.1:$PORT directly, whatever ALLOWED_HOSTS says.
    foreign = {"Host": "attacker.example"}
    health = requests.get(f"{sites.event1.url}/healthz", headers=foreign, timeout=10)
    assert health.status_code == 200
    assert requests.get(f"{sites.event1.url}/", headers=foreign, timeout=10).status_code == 400


def test_without_database_health_and_pages_answer_503_json(work_dir):
    nothing_listens = str(free_port())
    with gunicorn(site_env(DB_PORT=nothing_listens, URL_PREFIX="/event1"), work_dir) as site:
        assert_unavailable(requests.get(f"{site.url}/healthz", timeout=10))
        assert_unavailable(requests.get(f"{site.url}/", timeout=10))
    # Read once gunicorn has stopped and all its output has reached the file.
    log = site.log.read_text()
    assert "database unavailable" in log
    assert "Traceback" not in log


def test_database_restart_gives_503_then_recovers_by_itself(private_postgres, work_dir):
    settings = private_postgres.site_settings(URL_PREFIX="/event1")
    migrated = manage("migrate_locked", env=settings)
    assert migrated.returncode == 0, migrated.stderr
    with gunicorn(settings, work_dir) as site:
        # Every gunicorn thread opens its persistent connection.
        assert all(r.status_code == 200 for r in concurrent_visits(f"{site.url}/", 16))

        private_postgres.stop()
        assert_unavailable(requests.get(f"{site.url}/", timeout=15))
        assert_unavailable(requests.get(f"{site.url}/healthz", timeout=15))

        private_postgres.start()
        # No stale connection survives the restart: every thread answers again at once.
        after = concurrent_visits(f"{site.url}/", 16)
        assert [r.status_code for r in after] == [200] * 16
        assert max(r.json()["hits"] for r in after) == 32
        assert requests.get(f"{site.url}/healthz", timeout=15).status_code == 200


def test_a_kept_connection_is_checked_without_a_round_trip(private_postgres, work_dir):
    """A visit on a kept connection sends the server its one statement and no `SELECT 1` first,
    yet a connection the server dropped is still replaced before a visit uses it."""
    settings = private_postgres.site_settings(URL_PREFIX="/event1")
    migrated = manage("migrate_locked", env=settings)
    assert migrated.returncode == 0, migrated.stderr
    with private_postgres.connect() as admin:
        admin.execute("ALTER SYSTEM SET log_statement = 'all'")
        admin.execute("SELECT pg_reload_conf()")
    with gunicorn(settings, work_dir) as site:

        def visits(count: int) -> list[int]:
            return [r.status_code for r in concurrent_visits(f"{site.url}/", count)]

        # Every gunicorn thread opens its persistent connection.
        assert visits(16) == [200] * 16
        logged_before = len(private_postgres.log.read_text())
        assert visits(40) == [200] * 40
        statements = private_postgres.log.read_text()[logged_before:]
        assert statements.count("INSERT INTO") == 40
        assert "SELECT 1" not in statements

        # Dropped by the server while idle (no restart): no visit may land on a dead connection.
        with private_postgres.connect() as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            # pg_terminate_backend only signals: wait until the backends have exited, so that
            # every kept connection is really closed before the visits (a drop racing with a
            # visit is not what this checks).
            deadline = time.monotonic() + 10
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "terminated backends did not exit"
                time.sleep(0.1)
        assert dropped >= 1
        assert visits(16) == [200] * 16


def test_migrate_locked_waits_for_the_lock_with_a_clear_error(test_db_name, live_db):
    env = site_env(DB_NAME=test_db_name)
    with connect_test_db(test_db_name) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
        blocked = manage("migrate_locked", "--lock-timeout", "1", env=env)
        assert blocked.returncode != 0
        assert blocked.stderr.strip() == (
            "CommandError: another migration run still holds the migration lock after 1 s; "
            "wait for it to finish (or stop it) and run again"
        )
    done = manage("migrate_locked", env=env)
    assert done.returncode == 0, done.stderr
    assert "No migrations to apply" in done.stdout


def test_two_migrate_locked_runs_at_once_do_not_race(private_postgres):
    """Unlocked, two `migrate` on an empty database collide on CREATE TABLE; locked, one waits."""
    env = process_env(private_postgres.site_settings())
    runs = [
        subprocess.Popen(
            [sys.executable, str(APP_DIR / "manage.py"), "migrate_locked"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    applied = [out for out, _ in outputs if "Applying hits.0001_initial... OK" in out]
    waited = [out for out, _ in outputs if "No migrations to apply" in out]
    assert (len(applied), len(waited)) == (1, 1), outputs
