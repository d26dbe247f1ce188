"""Settings: every required variable missing or malformed stops the site with one line."""

import subprocess

import pytest
from conftest import APP_DIR, VENV_BIN, manage, process_env, site_env

REQUIRED = ["SECRET_KEY", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST", "ALLOWED_HOSTS"]


def only_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    return lines[0]


@pytest.mark.parametrize("name", REQUIRED)
def test_missing_required_setting_names_it(name):
    env = site_env()
    del env[name]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert only_line(result.stderr).startswith(f"Configuration error: {name} is required")


@pytest.mark.parametrize(
    ("name", "value", "expects"),
    [
        ("SECRET_KEY", "too-short-to-sign-anything", "at least 50 characters"),
        ("SECRET_KEY", "django-insecure-" + "x1y2z3" * 10, "at least 50 characters"),
        ("DB_PORT", "five-four-three-two", "TCP port number"),
        ("DB_PORT", "70000", "TCP port number"),
        ("ALLOWED_HOSTS", "https://example.org", "host names without scheme or port"),
        ("ALLOWED_HOSTS", "example.org,,localhost", "host names without scheme or port"),
        ("URL_PREFIX", "event1", "leading slash and no trailing slash"),
        ("URL_PREFIX", "/event1/", "leading slash and no trailing slash"),
        ("DEBUG", "maybe", "1/true/yes/on or 0/false/no/off"),
        ("SECURE_SSL", "sometimes", "1/true/yes/on or 0/false/no/off"),
        ("PUBLIC_DOMAIN", "https://example.org", "host name without scheme or port"),
    ],
)
def test_malformed_setting_names_it_and_what_it_expects(name, value, expects):
    result = manage("check", env=site_env(**{name: value}))
    assert result.returncode != 0
    line = only_line(result.stderr)
    assert line.startswith(f"Configuration error: {name} ")
    assert expects in line
    if name == "SECRET_KEY":
        assert value not in line, "a secret must never be echoed"


def test_secret_file_that_cannot_be_read(tmp_path):
    env = site_env()
    del env["DB_PASSWORD"]
    env["DB_PASSWORD_FILE"] = str(tmp_path / "missing")
    line = only_line(manage("check", env=env).stderr)
    assert line.startswith("Configuration error: DB_PASSWORD_FILE must name a readable file")


def test_secret_set_both_ways_is_refused(tmp_path):
    (tmp_path / "key").write_text("k" * 60)
    result = manage("check", env=site_env(SECRET_KEY_FILE=str(tmp_path / "key")))
    assert only_line(result.stderr) == (
        "Configuration error: SECRET_KEY is set twice: set either SECRET_KEY or SECRET_KEY_FILE, "
        "not both"
    )


def test_secrets_from_files_as_swarm_mounts_them(tmp_path, test_db_name, live_db):
    env = site_env(DB_NAME=test_db_name)
    for name in ("SECRET_KEY", "DB_PASSWORD"):
        # Files written with `echo` end with a newline that is not part of the secret.
        (tmp_path / name).write_text(env.pop(name) + "\n")
        env[f"{name}_FILE"] = str(tmp_path / name)
    result = manage("showmigrations", "hits", env=env)  # connects with the file's password
    assert result.returncode == 0, result.stderr
    assert "[X] 0001_initial" in result.stdout

    (tmp_path / "DB_PASSWORD").write_text("not-the-password\n")
    assert manage("showmigrations", "hits", env=env).returncode != 0


def run_gunicorn(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "gunicorn"), "--config", str(APP_DIR / "gunicorn.conf.py"),
         "--bind", "127.0.0.1:0"],
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


def test_gunicorn_stops_at_start_with_the_one_line():
    result = run_gunicorn(site_env(URL_PREFIX="event1/"))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "Configuration error" in line]
    assert errors == [
        "Configuration error: URL_PREFIX must be empty (site at the root) or a path with a "
        "leading slash and no trailing slash, like /event1, got 'event1/'"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "highest"),
    [("GUNICORN_WORKERS", "two", 64), ("GUNICORN_THREADS", "0", 256), ("PORT", "80a", 65535)],
)
def test_malformed_gunicorn_setting_names_it(name, value, highest):
    result = run_gunicorn(site_env(**{name: value}))
    assert result.returncode != 0
    assert only_line(result.stderr) == (
        f"Configuration error: {name} must be a whole number from 1 to {highest}, got {value!r}"
    )


def test_optional_settings_may_be_absent():
    env = site_env()
    for name in ("URL_PREFIX", "DB_PORT"):
        del env[name]
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


def test_deploy_check_is_clean_with_production_settings():
    env = site_env(URL_PREFIX="/event1", SECURE_SSL="1", PUBLIC_DOMAIN="example.org")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
