"""Conformance of the docker test plugin: rules D1-D6 (``docker_provider.py``), through the real
engine, with the box's registry (its own HTTP API) as the judge of what was pushed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pytest
import requests

from local.box import docker as docker_cli
from tests.engine import EngineRunError, EngineStack
from tests.plugins.docker_provider import HOST_PLATFORM

SECRET_SIG = "4dabf18193072939515e22adb298388d"
BASE = "django-swarm/debian:trixie"  # local: the set-up builds it


@dataclass
class ToyImage:
    """One ``Image`` stack, its repository, the registry inputs and its ``app/`` files."""

    stack: EngineStack
    repository: str
    credentials: dict[str, str]
    files: dict[str, str]
    write_app: Callable[[], None]


@pytest.fixture
def image(tiny_stack, plugin_box):
    """``image(files, **registry)``: a stack of one ``Image`` of a fresh repository in the box's
    registry, built from the project's ``app/`` folder, which holds ``files`` (name -> text, read
    anew at every run); it logs the repoDigest once known."""

    def make(files: dict[str, str], platform: str | None = None, **registry: str):
        repository = f"{plugin_box.registry_server}/toy-{uuid.uuid4().hex[:8]}"
        credentials = {
            "server": plugin_box.registry_server,
            "username": plugin_box.registry_user,
            "password": plugin_box.registry_password,
            **registry,
        }

        def program() -> None:
            image = docker.Image(
                "img",
                build=docker.DockerBuildArgs(context="app", platform=platform),
                image_name=f"{repository}:v1",
                registry=docker.RegistryArgs(
                    server=credentials["server"],
                    username=credentials["username"],
                    password=pulumi.Output.secret(credentials["password"]),
                ),
            )
            image.repo_digest.apply(lambda v: pulumi.log.info(f"digest known: {v}"))

        stack = tiny_stack(program)
        app = stack.work_dir / "app"
        app.mkdir()

        def write() -> None:
            for name, text in files.items():
                (app / name).write_text(text)

        write()
        return ToyImage(stack, repository, credentials, files, write)

    return make


def registry_digest(box, repository: str, tag: str) -> str | None:
    """The digest the registry serves for ``repository:tag`` (None when it has none)."""
    name = repository.split("/", 1)[1]
    answer = requests.get(
        f"http://{box.registry_server}/v2/{name}/manifests/{tag}",
        auth=(box.registry_user, box.registry_password),
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.headers["Docker-Content-Digest"]


def known(run) -> list[str]:
    return [d.message.strip() for d in run.diagnostics if "digest known:" in d.message]


def local_image(name: str) -> bool:
    return bool(docker_cli("images", "-q", name).strip())


DOCKERFILE = f"FROM {BASE}\nCOPY hello.txt /hello.txt\n"


def test_d1_defaults_and_d4_preview_builds_nothing(image, plugin_box):
    toy = image({"Dockerfile": DOCKERFILE, "hello.txt": "one\n"})
    preview = toy.stack.preview()
    assert preview.ran() == [("img", "create")]
    assert known(preview) == []  # repoDigest unknown
    assert not local_image(f"{toy.repository}:v1")
    assert registry_digest(plugin_box, toy.repository, "v1") is None
    run = toy.stack.up()
    build = toy.stack.resource("img")["inputs"]["build"]
    assert (build["context"], build["dockerfile"], build["platform"]) == (
        "app",
        "app/Dockerfile",
        HOST_PLATFORM,
    )
    assert toy.stack.resource("img")["inputs"]["buildOnPreview"] is False
    assert any("Building your image for" in d.message for d in run.diagnostics)


def test_d1_a_missing_dockerfile_fails_check(image):
    toy = image({"hello.txt": "one\n"})
    with pytest.raises(EngineRunError) as failed:
        toy.stack.preview()
    assert 'could not open dockerfile at relative path "app/Dockerfile"' in str(failed.value)


def test_d5_pushes_with_the_password_and_repo_digest_is_the_registrys(image, plugin_box):
    toy = image({"Dockerfile": DOCKERFILE, "hello.txt": "one\n"}, platform="linux/amd64")
    run = toy.stack.up()
    served = registry_digest(plugin_box, toy.repository, "v1")
    assert served and known(run) == [f"digest known: {toy.repository}@{served}"]
    state = toy.stack.resource("img")
    assert state["id"] == f"{toy.repository}:v1"
    assert state["outputs"]["dockerfile"] == "Dockerfile"
    # The inputs in the state, the password among them, are one secret.
    assert SECRET_SIG in state["outputs"]["__inputs"]
    assert plugin_box.registry_password not in json.dumps(toy.stack.export())


def test_d5_a_wrong_password_fails_the_push(image, plugin_box):
    toy = image({"Dockerfile": DOCKERFILE, "hello.txt": "one\n"}, password="wrong")
    with pytest.raises(EngineRunError) as failed:
        toy.stack.up()
    assert failed.value.failed_steps() == ["img"]
    assert registry_digest(plugin_box, toy.repository, "v1") is None


def test_d2_d3_a_context_change_updates_ignored_files_and_credentials_do_not(image, plugin_box):
    files = {
        "Dockerfile": DOCKERFILE,
        "hello.txt": "one\n",
        ".dockerignore": "notes.md\n",
        "notes.md": "a\n",
    }
    toy = image(files)
    first = known(toy.stack.up())
    assert toy.stack.up(expect_no_changes=True).ran() == []
    files["notes.md"] = "b\n"  # excluded by .dockerignore
    toy.write_app()
    assert toy.stack.preview(expect_no_changes=True).ran() == []
    toy.credentials["username"] = "someone-else"  # only the server counts
    assert toy.stack.preview(expect_no_changes=True).ran() == []
    toy.credentials["username"] = plugin_box.registry_user
    files["hello.txt"] = "two\n"
    toy.write_app()
    assert toy.stack.preview().ran() == [("img", "update")]
    run = toy.stack.up()
    assert run.ran() == [("img", "update")]  # an update, never a replace
    served = registry_digest(plugin_box, toy.repository, "v1")
    assert known(run) == [f"digest known: {toy.repository}@{served}"] != first


def test_d6_destroy_leaves_the_image_in_the_registry(image, plugin_box):
    toy = image({"Dockerfile": DOCKERFILE, "hello.txt": "one\n"})
    toy.stack.up()
    pushed = registry_digest(plugin_box, toy.repository, "v1")
    assert toy.stack.destroy().ran() == [("img", "delete")]
    assert registry_digest(plugin_box, toy.repository, "v1") == pushed
    assert local_image(f"{toy.repository}:v1")
