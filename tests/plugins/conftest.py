"""Fixtures of the conformance tests: the engine's private home, tiny stacks, an SSH box.

Each conformance test drives one test plugin through the real ``pulumi`` engine with a tiny
inline program, and checks one rule that ``tests/plugins/README.md`` writes down with its source.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.engine import EngineStack
from tests.engine_fixtures import engine_home  # noqa: F401  (a fixture)

_stack_numbers = itertools.count(1)


@pytest.fixture
def tiny_stack(engine_home, tmp_path) -> Callable[[Callable[[], None]], EngineStack]:  # noqa: F811
    """``tiny_stack(program)``: a new stack of the inline ``program`` in its own project
    directory (a ``Pulumi.yaml`` and nothing else)."""

    def make(program: Callable[[], None], project: str = "plugin-conformance") -> EngineStack:
        number = next(_stack_numbers)
        work_dir = tmp_path / f"project-{number}"
        work_dir.mkdir()
        (work_dir / "Pulumi.yaml").write_text(f"name: {project}\nruntime: python\n")
        # One backend holds every test's stack: each needs a name of its own.
        return EngineStack(engine_home, work_dir, f"conformance-{number}", project, program)

    return make


@pytest.fixture(scope="module")
def plugin_box(tmp_path_factory):
    """The rehearsal's Debian 13 box (sshd, and a registry with a password), for the plugins
    that reach a server."""
    from local.box import Box
    from tests.images.images import build_images

    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers on the default socket: run tests/setup_machine.sh")
    build_images()
    workdir = tmp_path_factory.mktemp("plugin-box")
    workdir.chmod(0o700)
    box = Box(workdir, "conformance", "conformance 'pw' $HOME")
    try:
        box.start()
        yield box
    finally:
        box.remove()
