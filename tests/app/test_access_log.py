"""The access log: gunicorn's own lines, written by config/access_log.py at a lower cost.

Each test runs real gunicorn processes with app/gunicorn.conf.py. The reference is gunicorn's own
logger (``--logger-class gunicorn.glogging.Logger``) answering the same requests, so the expected
lines come from gunicorn, not from the code under test.
"""

import base64
import re
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from conftest import gunicorn, site_env

# An access line, as opposed to gunicorn's error log lines ("[date] [pid] [LEVEL] ...").
ACCESS_LINE = re.compile(r"^127\.0\.0\.1 - \S+ \[[^\]]+\] \".*\" \d{3} ")
TIMESTAMP = re.compile(r" \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ")


def access_lines(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if ACCESS_LINE.match(line)]


def send_the_same_requests(url: str) -> None:
    """Requests that exercise every field: query, referer, quotes, a user, several statuses."""
    alice = base64.b64encode(b"alice:secret").decode()
    session = requests.Session()
    session.get(f"{url}/", headers={"User-Agent": 'agent "with" quotes', "Referer": "http://r/"})
    session.get(f"{url}/healthz", headers={"Authorization": f"Basic {alice}"})
    session.get(f"{url}/admin/login/?next=/admin/", headers={"User-Agent": "-"})
    session.get(f'{url}/missing?q="x"&y=2')
    session.post(f"{url}/", data=b"body")  # 405: the counter takes GET only
    session.head(f"{url}/admin/")  # a redirect with no body


def test_access_lines_are_exactly_gunicorns_own(test_db_name, live_db, work_dir):
    settings = site_env(DB_NAME=test_db_name)
    reference = {**settings, "GUNICORN_CMD_ARGS": "--logger-class gunicorn.glogging.Logger"}
    logs = []
    for env in (settings, reference):
        with gunicorn(env, work_dir) as server:
            send_the_same_requests(server.url)
        logs.append(server.log.read_text())
    ours, theirs = ([TIMESTAMP.sub(" [time] ", line) for line in access_lines(log)] for log in logs)

    # The first line of each is the fixture's readiness probe; then the six requests above.
    assert len(theirs) == 7, logs[1]
    assert ours == theirs
    assert any('"agent \\"with\\" quotes"' in line for line in ours), "quotes not escaped"
    assert any(" - alice [time] " in line for line in ours), "basic-auth user missing"


def test_long_lines_from_many_threads_never_interleave(test_db_name, live_db, work_dir):
    # Lines longer than a pipe's atomic write (4096 bytes), from all worker threads at once, while
    # the log reader falls behind: the pipe fills and every thread's write has to wait for room.
    # Each line still arrives whole and once. (Linux kept such lines whole here even without the
    # logger's lock; POSIX does not promise it, hence the lock.)
    agents = [f"agent-{n:03d}-" + "x" * 6000 for n in range(120)]
    with gunicorn(site_env(DB_NAME=test_db_name), work_dir) as server:

        def visit(agent: str) -> int:
            answer = requests.get(f"{server.url}/", headers={"User-Agent": agent}, timeout=60)
            return answer.status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            server.output_read.clear()
            answers = [pool.submit(visit, agent) for agent in agents]
            time.sleep(3)
            server.output_read.set()
            assert {answer.result() for answer in answers} == {200}
    visits = [line for line in access_lines(server.log.read_text()) if '"GET / HTTP/1.1"' in line]
    assert len(visits) == len(agents)
    assert sorted(line.rsplit('"', 2)[1] for line in visits) == agents


def test_a_custom_access_format_falls_back_to_gunicorns_logger(test_db_name, live_db, work_dir):
    custom_format = "--access-logformat 'custom %(s)s %(U)s'"
    env = site_env(DB_NAME=test_db_name, GUNICORN_CMD_ARGS=custom_format)
    with gunicorn(env, work_dir) as server:
        requests.get(f"{server.url}/missing", timeout=10)
    assert "custom 404 /missing" in server.log.read_text().splitlines()
