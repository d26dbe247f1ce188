"""The program under the real engine: ``infra/__main__.py`` as a stack of the project.

:class:`ProgramStack` runs the program as Pulumi's Python language host would (``infra/`` as the
working directory, run as ``__main__``), inline through the Automation API, with the
``pulumi`` binary as the engine and the project root as the work directory (``Pulumi.yaml``, and
``Pulumi.<stack>.yaml`` for the stack's config, set with ``pulumi config set`` as a user does).
Every converge is an engine ``up``; what it did is the engine's own record of steps.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deploy import PROJECT, run_program
from tests.engine import REPO_ROOT, EngineHome, EngineRun, EngineStack

COMMAND = "command:remote:Command"
IMAGE = "docker:index/image:Image"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
# The engine's operations that run a command's create (or update) and its delete.
_ACTIONS = {
    "create": "create",
    "create-replacement": "create",
    "update": "update",
    "delete": "delete",
    "delete-replaced": "delete",
}


def revealed(value: Any) -> Any:
    """A value of ``pulumi stack export --show-secrets``, a revealed secret as its value."""
    if isinstance(value, dict) and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


@dataclass
class Converge:
    """One engine operation on the program's stack, in the terms the stories check."""

    run: EngineRun

    @property
    def seconds(self) -> float:
        return self.run.seconds

    @property
    def outputs(self) -> dict[str, Any]:
        return self.run.outputs

    def executed(self) -> list[tuple[str, str]]:
        """(step, create|update|delete) of every remote command the engine ran, in order."""
        return [
            (s.name, _ACTIONS[s.op])
            for s in self.run.steps
            if s.type == COMMAND and s.op in _ACTIONS and not s.failed
        ]

    @property
    def builds(self) -> list[str]:
        """The images the engine built (created or updated)."""
        return [s.name for s in self.run.steps if s.type == IMAGE and s.op in ("create", "update")]

    @property
    def deleted(self) -> list[str]:
        return [s.name for s in self.run.steps if s.op == "delete"]


class ProgramStack(EngineStack):
    """A stack of this project, named ``rehearsal-<label>-<random>``, its config file in the
    project root (``.gitignore`` keeps ``Pulumi.rehearsal-*.yaml`` out of git)."""

    def __init__(self, home: EngineHome, label: str):
        super().__init__(
            home,
            REPO_ROOT,
            f"rehearsal-{label}-{secrets.token_hex(3)}",
            PROJECT,
            run_program,
        )

    def converge(
        self,
        config: Mapping[str, Any],
        secret_keys: Iterable[str],
        **options: Any,
    ) -> Converge:
        """``pulumi up`` with ``config``; ``options`` as the Automation API takes them
        (``replace=[urn]``, ``target=[urn]``, ``expect_no_changes=True``)."""
        self.set_config(config, secret_keys)
        return Converge(self.up(**options))

    def urns(self, *names: str) -> list[str]:
        by_name = {r["urn"].rsplit("::", 1)[-1]: r["urn"] for r in self.resources()}
        return [by_name[name] for name in names]

    def program_resources(self) -> list[str]:
        """Names of the program's resources in the state: the stack, its components and the
        provider instances left out."""
        return [
            r["urn"].rsplit("::", 1)[-1]
            for r in self.resources()
            if not r["type"].startswith(("pulumi:", f"{PROJECT}:"))
        ]

    def secret_output(self, resource: str, key: str) -> Any:
        """An output of a resource as the state keeps it, decrypted (``--show-secrets``): a
        revealed secret is ``{<sig>: ..., "plaintext": <its JSON text>}``."""
        return revealed(self.resource(resource, show_secrets=True)["outputs"][key])

    def generated_passwords(self) -> list[str]:
        """Every ``RandomPassword`` result in the state, revealed."""
        return [
            revealed(r["outputs"]["result"])
            for r in self.resources(show_secrets=True)
            if r["type"] == RANDOM_PASSWORD
        ]

    def remove(self) -> None:
        """``pulumi stack rm`` of what is left (the stories destroy first), and its config."""
        self.cli("stack", "rm", "--yes", "--force", check=False)
        self.config_file.unlink(missing_ok=True)
