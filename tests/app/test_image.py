"""The real image from app/Dockerfile, built on the local Debian 13 base and run on this host."""

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import APP_DIR, free_port, site_env, wait_for

IMAGE = "app-site:test"
BASE_IMAGE = "django-swarm/python-base:trixie"
SITE_UID = 10001


def docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="session")
def image() -> str:
    docker("build", "-q", "-t", IMAGE, "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", str(APP_DIR),
           timeout=900)  # fmt: skip
    return IMAGE


@pytest.fixture
def secrets_dir(tmp_path) -> Path:
    """Secrets as swarm mounts them: files under /run/secrets readable by the site's user only."""
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o755)
    settings = site_env()
    for name in ("SECRET_KEY", "DB_PASSWORD"):
        path = directory / name.lower()
        path.write_text(settings[name])
        os.chown(path, SITE_UID, SITE_UID)
        path.chmod(0o400)
    return directory


def container_env(test_db_name: str, port: int) -> tuple[list[str], dict[str, str]]:
    """``-e NAME`` arguments and the values docker reads from its own environment."""
    settings = site_env(DB_NAME=test_db_name, URL_PREFIX="/event1", PORT=str(port))
    del settings["SECRET_KEY"], settings["DB_PASSWORD"]
    settings["SECRET_KEY_FILE"] = "/run/secrets/secret_key"
    settings["DB_PASSWORD_FILE"] = "/run/secrets/db_password"
    # Names only on the command line (no secret in argv): docker takes the values from its
    # environment; the secrets themselves are files.
    return [arg for name in settings for arg in ("-e", name)], settings


@pytest.fixture
def site_container(image, secrets_dir, test_db_name, live_db) -> Iterator[tuple[str, int]]:
    port = free_port()
    env_args, settings = container_env(test_db_name, port)
    run_env = {**os.environ, **settings}
    common = ["--network", "host", "-v", f"{secrets_dir}:/run/secrets:ro", *env_args]

    # The deployment's one-off migration job, then the service itself.
    migrate = subprocess.run(
        ["docker", "run", "--rm", *common, image, "python", "manage.py", "migrate_locked"],
        env=run_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr

    name = f"app-site-test-{port}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, *common, image],
        env=run_env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    try:
        yield name, port
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def test_image_runs_as_non_root_becomes_healthy_serves_and_stops_gracefully(site_container, image):
    name, port = site_container
    config = json.loads(docker("image", "inspect", image, "--format", "{{json .Config}}"))
    assert config["User"] == f"{SITE_UID}:{SITE_UID}"
    assert config["Healthcheck"]["Test"][0] == "CMD"

    def health() -> str:
        state = json.loads(docker("inspect", name, "--format", "{{json .State}}"))
        assert state["Running"], container_logs(name)
        status = state["Health"]["Status"]
        return status if status != "starting" else ""

    assert wait_for(health, timeout=90, what="the container's health check", interval=1) == (
        "healthy"
    )
    # gunicorn is PID 1 (so it receives swarm's SIGTERM) and runs as the site's user.
    assert "gunicorn" in docker("exec", name, "cat", "/proc/1/cmdline")
    assert docker("exec", name, "stat", "-c", "%u", "/proc/1") == str(SITE_UID)

    url = f"http://127.0.0.1:{port}"
    assert requests.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{url}/", timeout=10).json() == {"hits": 1}
    assert requests.get(f"{url}/", timeout=10).json() == {"hits": 2}
    logs = container_logs(name)
    assert re.search(r'"GET / HTTP/1.[01]" 200', logs), "no access log line"
    # A healthy start logs no error (gunicorn's control socket once failed on every start).
    assert "[ERROR]" not in logs, logs

    # Swarm stops a task with SIGTERM: gunicorn finishes and exits cleanly well before the kill.
    docker("stop", "--time", "20", name, timeout=60)
    state = json.loads(docker("inspect", name, "--format", "{{json .State}}"))
    assert state["ExitCode"] == 0, container_logs(name)
    assert "Shutting down: Master" in container_logs(name)


def test_image_carries_hashed_static_files_and_no_compiler(image):
    listing = docker("run", "--rm", image, "sh", "-c",
                     "ls /app/staticfiles/admin/css; ls /app/staticfiles/staticfiles.json; "
                     "command -v gcc cc make || true; pip list --format=freeze")  # fmt: skip
    assert re.search(r"^base\.[0-9a-f]{12}\.css$", listing, re.MULTILINE)
    assert "/app/staticfiles/staticfiles.json" in listing
    assert not re.search(r"/(gcc|cc|make)$", listing, re.MULTILINE)
    installed = {line.lower() for line in listing.splitlines() if "==" in line}
    required = (APP_DIR / "requirements.txt").read_text().lower().replace("[binary]", "")
    for pin in re.findall(r"^\S+==\S+$", required, re.MULTILINE):
        assert pin in installed
    assert not any(line.startswith("pytest") for line in installed)


def container_logs(name: str) -> str:
    result = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr
