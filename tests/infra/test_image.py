"""The site image (Pulumi mock runtime): what is built, where it is pushed, how the host logs in."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REGISTRY_PASSWORD, UserConfig, step_program, step_secrets

import image
from remote_script import script_text

IMAGE = "docker:index/image:Image"


def test_image_builds_app_with_the_base_image_and_pushes_it(prod_config: UserConfig):
    run = prod_config.run()
    (built,) = run.of_type(IMAGE)
    assert built.name == "app-image"
    assert built.inputs["build"]["context"] == "../app"  # from infra/, where the engine runs it
    assert built.inputs["build"]["args"] == {"BASE_IMAGE": "python:3.13-slim"}
    assert built.inputs["build"]["platform"] == "linux/amd64"
    # Lower case (GHCR refuses anything else), tagged with the hash of the sources.
    tag = image.source_tag(image.APP_DIR, {"BASE_IMAGE": "python:3.13-slim"})
    assert built.inputs["imageName"] == f"ghcr.io/ieee-branch/hits:{tag}"
    assert re.fullmatch(r"[0-9a-f]{12}", tag)
    registry = built.inputs["registry"]
    assert registry == {
        "server": "ghcr.io",
        "username": "ieee-branch",
        "password": REGISTRY_PASSWORD,
    }
    assert "registry.password" in built.secret_paths or "registry" in built.secret_paths


def test_base_image_is_a_config_value(prod_config: UserConfig):
    run = prod_config.with_(baseImage="django-swarm/python-base:trixie").run()
    (built,) = run.of_type(IMAGE)
    assert built.inputs["build"]["args"] == {"BASE_IMAGE": "django-swarm/python-base:trixie"}


def test_host_login_runs_after_provisioning_with_the_password_on_stdin(prod_config: UserConfig):
    run = prod_config.run()
    login = run.named("app-registry-login")
    program = step_program(login.inputs)
    assert program.endswith(script_text("registry_login.sh"))
    assert "REGISTRY_SERVER=ghcr.io\n" in program
    assert "REGISTRY_USERNAME=ieee-branch\n" in program
    assert REGISTRY_PASSWORD not in program + login.inputs["create"]
    assert login.inputs["logging"] == "none"
    assert run.named("host-nginx").urn in login.dependencies


def copy_app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    shutil.copytree(image.APP_DIR, app, ignore=shutil.ignore_patterns("staticfiles", "__pycache__"))
    return app


def test_source_tag_changes_with_any_source_and_the_build_args(tmp_path: Path):
    app = copy_app(tmp_path)
    args = {"BASE_IMAGE": "python:3.13-slim"}
    tag = image.source_tag(app, args)
    assert image.source_tag(app, args) == tag
    assert image.source_tag(app, {"BASE_IMAGE": "other"}) != tag
    views = next(app.rglob("views.py"))
    views.write_text(views.read_text() + "\n# a change\n")
    assert image.source_tag(app, args) != tag


def test_source_tag_ignores_generated_files(tmp_path: Path):
    app = copy_app(tmp_path)
    args = {"BASE_IMAGE": "python:3.13-slim"}
    tag = image.source_tag(app, args)
    (app / "staticfiles").mkdir()
    (app / "staticfiles" / "site.css").write_text("collected")
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert image.source_tag(app, args) == tag


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_source_tag_counts_what_git_tracks_not_local_files(tmp_path: Path):
    # A laptop's untracked files (.env, a virtualenv, notes) must not give it another tag than
    # CI's for the same commit; an edit of a tracked file, committed or not, must.
    app = copy_app(tmp_path)
    git("init", "-q", cwd=tmp_path)
    git("add", "app", cwd=tmp_path)
    git("commit", "-q", "-m", "app", cwd=tmp_path)
    args = {"BASE_IMAGE": "python:3.13-slim"}
    tag = image.source_tag(app, args)
    (app / ".env").write_text("SECRET_KEY=local\n")
    (app / ".venv" / "bin").mkdir(parents=True)
    (app / ".venv" / "bin" / "python").write_text("#!/bin/sh\n")
    (app / "notes.txt").write_text("todo\n")
    assert image.source_tag(app, args) == tag
    views = next(app.rglob("views.py"))
    views.write_text(views.read_text() + "\n# a change\n")
    assert image.source_tag(app, args) != tag


def test_dockerignore_keeps_local_secrets_and_virtualenvs_out_of_the_build():
    rules = image.dockerignore_rules(image.APP_DIR)
    for local in (".env", ".env.production", "config/.env", ".venv/bin/python", "staticfiles/a"):
        assert image.is_excluded(local, rules), local
    for source in ("manage.py", "config/settings.py", "requirements.txt", "gunicorn.conf.py"):
        assert not image.is_excluded(source, rules), source
    assert set(image.build_context_files(image.APP_DIR)) >= {"manage.py", "requirements.txt"}


@pytest.mark.parametrize(
    ("rules", "path", "excluded"),
    [
        ("*.log", "debug.log", True),
        ("*.log", "logs/debug.log", False),  # `*` stays within one directory
        ("**/*.log", "logs/deep/debug.log", True),
        ("**/*.log", "debug.log", True),  # `**/` also means no directory
        ("/build", "build/out.txt", True),  # a directory excludes what is under it
        ("build/", "src/build/out.txt", False),
        ("docs\n!docs/keep.md", "docs/keep.md", False),  # the last matching rule decides
        ("docs\n!docs/keep.md", "docs/other.md", True),
        ("data?.csv", "data1.csv", True),
    ],
)
def test_dockerignore_rules_read_as_docker_reads_them(tmp_path: Path, rules, path, excluded):
    (tmp_path / ".dockerignore").write_text(f"# comment\n\n{rules}\n")
    assert image.is_excluded(path, image.dockerignore_rules(tmp_path)) is excluded


PULL_TOKEN = "ghp_PULL-ONLY-token-must-not-leak"


def test_the_server_logs_in_with_the_pull_only_token_when_one_is_set(prod_config: UserConfig):
    run = prod_config.with_secret("registryPullPassword", PULL_TOKEN).run()
    login = run.named("app-registry-login")
    # The server keeps only the read-only token; the push token stays with `pulumi up`.
    assert step_secrets(login.inputs) == [PULL_TOKEN]
    assert REGISTRY_PASSWORD not in login.inputs["stdin"] + login.inputs["create"]
    assert PULL_TOKEN not in login.inputs["create"] + step_program(login.inputs)
    assert "stdin" in login.secret_paths
    (built,) = run.of_type(IMAGE)
    assert built.inputs["registry"]["password"] == REGISTRY_PASSWORD


def test_without_a_pull_token_the_server_uses_the_push_token(prod_config: UserConfig):
    login = prod_config.run().named("app-registry-login")
    assert step_secrets(login.inputs) == [REGISTRY_PASSWORD]
