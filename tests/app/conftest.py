"""Shared set-up of the app tests: Django against the real PostgreSQL, and real processes.

pytest-django creates the test database on the running server (TEST_DB_* variables, defaults
127.0.0.1:5432 swarm_test/swarm_test). Tests that need the site over HTTP start real gunicorn
processes with app/gunicorn.conf.py against that database, behind a real Nginx that strips each
event's prefix as production does.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import django
import psycopg
import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "app"
VENV_BIN = Path(sys.executable).parent
STATIC_ROOT = APP_DIR / "staticfiles"

TEST_DB = {
    "host": os.environ.get("TEST_DB_HOST", "127.0.0.1"),
    "port": os.environ.get("TEST_DB_PORT", "5432"),
    "user": os.environ.get("TEST_DB_USER", "swarm_test"),
    "password": os.environ.get("TEST_DB_PASSWORD", "swarm_test"),
}
# pytest-django creates "test_<DB_NAME>" and points the settings at it.
DB_NAME = "app_hits"
SECRET_KEY = secrets.token_urlsafe(50)


def site_env(**overrides: str) -> dict[str, str]:
    """A complete environment for the site: the test database, no prefix; overrides on top."""
    env = {
        "SECRET_KEY": SECRET_KEY,
        "DB_NAME": DB_NAME,
        "DB_USER": TEST_DB["user"],
        "DB_PASSWORD": TEST_DB["password"],
        "DB_HOST": TEST_DB["host"],
        "DB_PORT": TEST_DB["port"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "URL_PREFIX": "",
    }
    env.update(overrides)
    return env


def process_env(settings: dict[str, str]) -> dict[str, str]:
    """Environment of a child process: only the site's settings and what programs need to run."""
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **settings}


# The test process itself runs Django with the same settings the servers get.
sys.path.insert(0, str(APP_DIR))
os.environ.update(site_env())
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
# pytest-django sets Django up only if it found the settings module before this file ran.
django.setup()


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run app/manage.py in a child process, as the deployment does."""
    return subprocess.run(
        [sys.executable, str(APP_DIR / "manage.py"), *args],
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def form_csrf_token(page_text: str) -> str:
    """The CSRF token of the first form on a Django page, as a browser would post it back."""
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page_text).group(1)


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _answers_http(url: str) -> bool:
    try:
        requests.get(url, timeout=5)
    except requests.RequestException:  # refused while starting, or a slow first answer
        return False
    return True


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Gunicorn:
    """A gunicorn serving the site on 127.0.0.1:port; url has no prefix (Nginx strips it)."""

    proc: subprocess.Popen
    port: int
    log: Path
    # Cleared, the output pipe is no longer read: a log reader that falls behind, as Docker's can.
    output_read: threading.Event

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def gunicorn(settings: dict[str, str], log_dir: Path) -> Iterator[Gunicorn]:
    """Start gunicorn with the production config file and wait until it answers HTTP."""
    port = free_port()
    log = log_dir / f"gunicorn-{port}.log"
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "--config",
            str(APP_DIR / "gunicorn.conf.py"),
            # Loopback only on the test machine; the image binds 0.0.0.0:$PORT.
            "--bind",
            f"127.0.0.1:{port}",
        ],
        env=process_env(settings),
        # Output goes through a pipe, as it does to Docker's log driver, and on into the file.
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output_read = threading.Event()
    output_read.set()
    copier = threading.Thread(
        target=_copy_output, args=(proc.stdout, log, output_read), daemon=True
    )
    copier.start()
    server = Gunicorn(proc, port, log, output_read)
    try:
        wait_for(
            lambda: proc.poll() is not None or _answers_http(server.url + "/healthz"),
            timeout=30,
            what=f"gunicorn on port {port}",
        )
        if proc.poll() is not None:
            copier.join(timeout=10)
            raise AssertionError(f"gunicorn exited:\n{log.read_text()}")
        yield server
    finally:
        output_read.set()
        # gunicorn's quick stop: its graceful one (SIGTERM) serves on for a few seconds first
        # (test_stop.py).
        stop_process(proc, signal.SIGINT)
        copier.join(timeout=10)


def _copy_output(pipe, log: Path, output_read: threading.Event) -> None:
    with pipe, log.open("wb") as log_file:
        while output_read.wait() and (chunk := pipe.read1(65536)):
            log_file.write(chunk)
            log_file.flush()


@pytest.fixture(scope="session")
def test_db_name(django_db_setup) -> str:
    """Name of the test database pytest-django created (migrated) for this session.

    pytest-django creates it only when a collected test uses the database: tests that use this
    fixture also take ``live_db``.
    """
    from django.conf import settings

    return settings.DATABASES["default"]["NAME"]


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="app-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def collected_static() -> Path:
    """app/staticfiles with the manifest, as the image build collects it (gitignored)."""
    result = manage("collectstatic", "--noinput", "--clear", "--verbosity", "0", env=site_env())
    assert result.returncode == 0, result.stderr
    assert (STATIC_ROOT / "staticfiles.json").is_file()
    return STATIC_ROOT


@dataclass
class Sites:
    """Three events behind one Nginx: /event1, /event2 and one at the root."""

    base_url: str
    event1: Gunicorn
    event2: Gunicorn
    root: Gunicorn


NGINX_SITE = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-Proto $scheme;
    server {{
        listen 127.0.0.1:{port};
        location /event1/static/ {{ alias {static}/; }}
        location /event1/media/ {{ alias {media}/; }}
        location /event1/ {{ proxy_pass http://127.0.0.1:{event1}/; }}
        location /event2/static/ {{ alias {static}/; }}
        location /event2/ {{ proxy_pass http://127.0.0.1:{event2}/; }}
        location /static/ {{ alias {static}/; }}
        location / {{ proxy_pass http://127.0.0.1:{root}; }}
    }}
}}
"""


@pytest.fixture(scope="session")
def sites(test_db_name, collected_static, work_dir) -> Iterator[Sites]:
    """Production-shaped serving: Nginx strips each prefix and serves the static files (and
    event1's uploaded files, from its MEDIA_ROOT)."""
    media = work_dir / "media" / "event1"
    media.mkdir(parents=True)
    with (
        gunicorn(
            site_env(DB_NAME=test_db_name, URL_PREFIX="/event1", MEDIA_ROOT=str(media)), work_dir
        ) as event1,
        gunicorn(site_env(DB_NAME=test_db_name, URL_PREFIX="/event2"), work_dir) as event2,
        gunicorn(site_env(DB_NAME=test_db_name, URL_PREFIX=""), work_dir) as root,
    ):
        port = free_port()
        nginx_dir = work_dir / "nginx"
        nginx_dir.mkdir()
        conf = nginx_dir / "nginx.conf"
        conf.write_text(
            NGINX_SITE.format(
                dir=nginx_dir,
                port=port,
                static=collected_static,
                media=media,
                event1=event1.port,
                event2=event2.port,
                root=root.port,
            )
        )
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(nginx_dir)])
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _answers_http(base_url + "/healthz"), timeout=15, what="nginx")
            yield Sites(base_url, event1, event2, root)
        finally:
            stop_process(nginx, signal.SIGQUIT)


@pytest.fixture
def live_db(transactional_db) -> None:
    """The test database shared with the servers; emptied after each test."""


ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_user(live_db) -> str:
    """A superuser the servers see (committed); returns the user name."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("organiser", "organiser@example.org", ADMIN_PASSWORD)
    return "organiser"


POSTGRES_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))


@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL cluster this test may stop and start (never the shared one)."""

    data_dir: Path
    port: int
    password: str

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(POSTGRES_BIN / "pg_ctl"), "-D",
             str(self.data_dir), "-w", "-t", "60", *args],
            check=True,
            capture_output=True,
        )  # fmt: skip

    @property
    def log(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir.parent}"
        self.pg_ctl("-o", options, "-l", str(self.log), "start")

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=self.password,
            dbname="postgres",
            autocommit=True,
        )

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def site_settings(self, **overrides: str) -> dict[str, str]:
        return site_env(
            DB_NAME="postgres",
            DB_USER="postgres",
            DB_PASSWORD=self.password,
            DB_HOST="127.0.0.1",
            DB_PORT=str(self.port),
            **overrides,
        )


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="app-pg-"))
    shutil.chown(root, "postgres", "postgres")
    password = secrets.token_urlsafe(24)
    password_file = root / "password"
    password_file.write_text(password)
    shutil.chown(password_file, "postgres", "postgres")
    password_file.chmod(0o600)
    cluster = PrivatePostgres(root / "data", free_port(), password)
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(POSTGRES_BIN / "initdb"), "-D",
         str(cluster.data_dir), "-U", "postgres", "-A", "scram-sha-256",
         f"--pwfile={password_file}", "--no-sync"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    password_file.unlink()
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(POSTGRES_BIN / "pg_ctl"), "-D",
             str(cluster.data_dir), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def connect_test_db(dbname: str) -> psycopg.Connection:
    return psycopg.connect(dbname=dbname, autocommit=True, **TEST_DB)
