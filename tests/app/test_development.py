"""development/docker-compose.yml: the properties the local set-up promises.

Docker Hub (the postgres image) is out of reach on the test machines, so the file is checked
against the Compose specification and its settings against the real settings module.
"""

import subprocess

import pytest
import yaml
from conftest import APP_DIR, REPO_ROOT, VENV_BIN, manage

COMPOSE_FILE = REPO_ROOT / "development" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_file_follows_the_compose_specification():
    check = subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema",
         "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_site_is_built_from_the_app_and_answers_on_localhost_8000_at_the_root(compose):
    site = compose["services"]["site"]
    assert (COMPOSE_FILE.parent / site["build"]["context"]).resolve() == APP_DIR
    assert site["ports"] == ["127.0.0.1:8000:8000"]
    assert site["environment"]["URL_PREFIX"] == ""
    assert "localhost" in site["environment"]["ALLOWED_HOSTS"].split(",")
    assert site["depends_on"]["db"]["condition"] == "service_healthy"
    assert "migrate_locked" in " ".join(site["command"])


def test_database_is_not_published_and_needs_a_password(compose):
    db = compose["services"]["db"]
    assert "ports" not in db
    assert db["environment"].get("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256") != "trust"
    assert (
        db["environment"]["POSTGRES_PASSWORD"]
        == compose["services"]["site"]["environment"]["DB_PASSWORD"]
    )


def test_site_environment_passes_the_settings_checks(compose):
    result = manage("check", env=dict(compose["services"]["site"]["environment"]))
    assert result.returncode == 0, result.stderr
