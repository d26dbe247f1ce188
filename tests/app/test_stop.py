"""How the site stops: swarm's SIGTERM to a release's old task (and to every task on a reboot).

Swarm stops the old task as soon as the new one is healthy; Nginx is pointed at the new one a
moment later (event_stack.sh). A connection that reached a gunicorn which had stopped accepting
would be reset after Nginx sent its request, a 502 for a POST; so the site serves on for
STOP_DRAIN_SECONDS after SIGTERM, then stops as gunicorn does.
"""

import runpy
import signal
import time

import requests
from conftest import APP_DIR, gunicorn, site_env

DRAIN = runpy.run_path(str(APP_DIR / "gunicorn.conf.py"))["STOP_DRAIN_SECONDS"]


def test_after_sigterm_new_connections_are_served_for_the_drain_then_it_stops_cleanly(
    work_dir, test_db_name, live_db
):
    assert DRAIN >= 3  # long enough for Nginx to be pointed at the new task under load
    with gunicorn(site_env(DB_NAME=test_db_name), work_dir) as site:
        site.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        hits = []
        # A new connection for each visit, as Nginx opens one per request to a task.
        while time.monotonic() - sent < DRAIN - 1:
            answer = requests.get(f"{site.url}/", headers={"Connection": "close"}, timeout=5)
            assert answer.status_code == 200
            hits.append(answer.json()["hits"])
            time.sleep(0.2)
        assert site.proc.poll() is None
        assert hits == list(range(1, len(hits) + 1)) and len(hits) >= 5
        # Then gunicorn's own graceful stop: exit 0 well before swarm's kill (15 s).
        assert site.proc.wait(timeout=12) == 0
        stopped = time.monotonic() - sent
        assert DRAIN <= stopped < DRAIN + 5, stopped
        assert "Shutting down: Master" in site.log.read_text()


def test_a_second_sigterm_stops_at_once(work_dir, test_db_name, live_db):
    with gunicorn(site_env(DB_NAME=test_db_name), work_dir) as site:
        site.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sent = time.monotonic()
        site.proc.send_signal(signal.SIGTERM)
        assert site.proc.wait(timeout=DRAIN) == 0
        assert time.monotonic() - sent < DRAIN - 1
