"""Install the test plugins into a private ``PULUMI_HOME``, at the versions requirements.txt pins.

Each plugin is a two-line launcher that runs ``tests/plugins/<name>_provider.py`` with this
checkout's Python, installed with ``pulumi plugin install resource NAME VERSION --file LAUNCHER``
into the given home only. A user's own ``~/.pulumi`` is never touched: on a laptop or a GitHub
runner the real plugins install as usual.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

REPO_ROOT = Path(__file__).resolve().parents[2]
# deploy.py reads requirements.txt's pins for ./deploy.sh; the plugins run with the repository
# root alone on their path.
sys.path.insert(0, str(REPO_ROOT / "infra"))
import deploy  # noqa: E402

if TYPE_CHECKING:
    from tests.engine import EngineHome

# The four plugins the test machines cannot download (../shared/REAL-ENGINE.md).
PLUGINS = ("command", "random", "tls", "docker")


def pinned_versions(requirements: Path = REPO_ROOT / "requirements.txt") -> dict[str, str]:
    """``pulumi-<name>==<version>`` of requirements.txt, for the plugins above."""
    pins = deploy.pinned_plugins(requirements.read_text(), "existing")
    missing = [name for name in PLUGINS if name not in pins]
    if missing:
        raise RuntimeError(
            f"requirements.txt pins no version of pulumi-{', pulumi-'.join(missing)}"
        )
    return {name: pins[name] for name in PLUGINS}


def launcher(name: str, version: str) -> str:
    module = REPO_ROOT / "tests" / "plugins" / f"{name}_provider.py"
    return (
        "#!/bin/sh\n"
        f"# Test plugin: stands in for pulumi-resource-{name} {version} (tests/plugins).\n"
        f"PYTHONPATH={shlex.quote(str(REPO_ROOT))} exec {shlex.quote(sys.executable)} "
        f'{shlex.quote(str(module))} "$@"\n'
    )


def install_test_plugins(home: EngineHome) -> None:
    with tempfile.TemporaryDirectory(prefix="test-plugins-") as scratch:
        for name, version in pinned_versions().items():
            path = Path(scratch) / f"pulumi-resource-{name}"
            path.write_text(launcher(name, version))
            path.chmod(0o755)
            home.cli(
                "plugin",
                "install",
                "resource",
                name,
                version,
                "--file",
                str(path),
                "--reinstall",
                cwd=Path(scratch),
            )
