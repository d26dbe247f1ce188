"""Fixtures of the rehearsal: the box images, one box per test module, and the figures summary.

run_all.sh runs the three stories in two processes (pytest-xdist, ``--dist loadfile``); the
hooks below also work in one process, as a plain ``pytest tests/rehearsal`` runs them."""

import fcntl
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# The rehearsal's modules import `tests.engine` and `tests.rehearsal.*` from the repository root,
# and the program's own modules (`image`, `layout`, ...) top-level from infra/, as Pulumi does.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from local.box import Box, docker
from tests.engine_fixtures import engine_home  # noqa: F401  (a fixture)
from tests.images.images import build_images
from tests.rehearsal import figures

REGISTRY_USER = "rehearsal"


def existing_target(box: Box, base_image: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The stack config of a rehearsal: ``box`` as an existing server (`target: existing`) that
    pulls from the registry the box runs, deploying ``events`` on ``base_image``."""
    return {
        "target": "existing",
        "host": "127.0.0.1",
        "sshPort": box.ssh_port,
        "sshPrivateKey": box.private_key,
        "registry": {
            "server": box.registry_server,
            "repository": "rehearsal/site",
            "username": REGISTRY_USER,
        },
        "registryPassword": box.registry_password,
        "baseImage": base_image,
        "events": events,
    }


def task_containers(box: Box, event: str) -> list[str]:
    """The ids of the running task containers of an event's web service on ``box``."""
    return box.check(
        f"docker ps -q --no-trunc --filter label=com.docker.swarm.service.name={event}_web"
    ).split()


def tag_new_base_image(base_image: str, name: str) -> None:
    """Tags ``name``: ``base_image`` with one more layer. As the config's `baseImage` it gives a
    new image, a new digest and a new release of every event: the rehearsal's code change, made
    without touching app/."""
    docker("tag", base_image, name)
    docker(
        "build",
        "-q",
        "-t",
        name,
        "-",
        input_=f"FROM {name}\nRUN echo next >/etc/rehearsal-release\n",
    )


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.rehearsal)


@pytest.fixture(scope="session")
def box_images(tmp_path_factory) -> None:
    """A missing Docker engine is an error: the rehearsal is the product's end-to-end test."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers on the default socket: run tests/setup_machine.sh")
    # One process builds while the other waits, then finds the images made: the parent of the
    # base temp dir is the run's own, shared by its worker processes.
    with open(tmp_path_factory.getbasetemp().parent / "box-images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build_images()


@pytest.fixture(scope="session")
def registry_password() -> str:
    """Quotes, `$`, spaces, a backslash and a newline: every way a secret could break a script."""
    return f'it\'s "{secrets.token_hex(6)}" $HOME `id` \\n\n{secrets.token_hex(6)} end'


@pytest.fixture(scope="module")
def box(box_images, registry_password, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rehearsal-box")
    workdir.chmod(0o700)
    the_box = Box(workdir, REGISTRY_USER, registry_password)
    try:
        the_box.start()
        yield the_box
    finally:
        the_box.remove()


def pytest_sessionfinish(session):
    """A worker process hands its figures to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["figures"] = dict(figures.FIGURES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist's hook, in the controller, as each worker ends."""
    figures.FIGURES.update(node.workeroutput.get("figures", {}))


def pytest_terminal_summary(terminalreporter):
    figures.write_summary(terminalreporter, "rehearsal figures")
