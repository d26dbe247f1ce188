"""Fixtures shared by the conformance tests and the rehearsal: the engine's private home.

Imported by name into ``tests/plugins/conftest.py`` and ``tests/rehearsal/conftest.py``.
"""

from __future__ import annotations

import pytest

from tests.engine import EngineHome


@pytest.fixture(scope="session")
def engine_home(tmp_path_factory) -> EngineHome:
    """A ``PULUMI_HOME`` with the four test plugins, a file backend and a passphrase."""
    root = tmp_path_factory.mktemp("engine")
    root.chmod(0o700)
    home = EngineHome(root)
    home.prepare()
    return home
