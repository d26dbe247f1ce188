"""The site image (Pulumi mock runtime): what is built, where it is pushed, how the host logs in."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from conftest import REGISTRY_PASSWORD, UserConfig

import image
from remote_script import script_text

IMAGE = "docker:index/image:Image"


def test_image_builds_app_with_the_base_image_and_pushes_it(prod_config: UserConfig):
    run = prod_config.run()
    (built,) = run.of_type(IMAGE)
    assert built.name == "app-image"
    assert built.inputs["build"]["context"] == "app"
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
    assert login.inputs["create"].endswith(script_text("registry_login.sh"))
    assert "REGISTRY_SERVER=ghcr.io\n" in login.inputs["create"]
    assert "REGISTRY_USERNAME=ieee-branch\n" in login.inputs["create"]
    assert REGISTRY_PASSWORD not in login.inputs["create"]
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
