"""The real Pulumi engine for tests: the ``pulumi`` CLI, driven by the Automation API.

:class:`EngineHome` is a private ``PULUMI_HOME`` holding the test plugins (``tests/plugins``), a
file backend and a passphrase: nothing here reads or writes a user's own Pulumi set-up, and a
plugin that is not installed there is an error, never a download.

:class:`EngineStack` is one stack of an inline program (the Automation API runs the program in
this process; the engine is the ``pulumi`` binary). Its config is set with the CLI as a user types
it (``pulumi config set [--secret]``, values on stdin), so it lands in ``Pulumi.<stack>.yaml`` of
the work directory. Each ``up``/``preview``/``destroy``/``refresh`` returns an
:class:`EngineRun` with the engine's own record of what it did: every step with its operation,
the diagnostics the plugins logged, the outputs and the time taken.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class EngineHome:
    """A ``PULUMI_HOME`` of the tests' own, with the test plugins, a file backend and a
    passphrase for the stacks' secrets."""

    root: Path
    passphrase: str = field(default_factory=lambda: f"pass {secrets.token_hex(16)}")

    @property
    def home(self) -> Path:
        return self.root / "pulumi-home"

    @property
    def backend(self) -> Path:
        return self.root / "backend"

    def env_vars(self) -> dict[str, str]:
        return {
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }

    def prepare(self) -> None:
        from tests.plugins.install import install_test_plugins

        for path in (self.home, self.backend):
            path.mkdir(parents=True, exist_ok=True)
        install_test_plugins(self)

    def cli(
        self, *args: str, cwd: Path, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``pulumi ARGS`` as a user types it in ``cwd``, with this home's environment."""
        done = subprocess.run(
            ["pulumi", *args, "--non-interactive"],
            cwd=cwd,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env={**os.environ, **self.env_vars()},
            timeout=600,
        )
        if check and done.returncode != 0:
            raise EngineError(
                f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done


class EngineError(RuntimeError):
    """A ``pulumi`` command failed; the message holds the engine's own output."""


@dataclass(frozen=True)
class Step:
    """One step of the engine's plan, as its events report it."""

    op: str  # create, update, delete, replace, create-replacement, delete-replaced, same, ...
    urn: str
    type: str
    failed: bool = False

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class EngineRun:
    """What one engine operation did, in the engine's words."""

    kind: str
    steps: list[Step]
    diagnostics: list[auto.DiagnosticEvent]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    stdout: str
    seconds: float
    summary: dict[str, int] = field(default_factory=dict)

    def ran(
        self,
        *,
        ops: Iterable[str] = (
            "create",
            "update",
            "delete",
            "replace",
            "create-replacement",
            "delete-replaced",
        ),
    ) -> list[tuple[str, str]]:
        """(resource name, op) of every step that changed a resource of the program, in the
        engine's order (the stack itself and the provider instances left out)."""
        wanted = set(ops)
        return [
            (s.name, s.op)
            for s in self.steps
            if s.op in wanted and not s.type.startswith("pulumi:")
        ]


def _collector(steps: list[Step], diagnostics: list, lock: threading.Lock):
    def on_event(event: auto.EngineEvent) -> None:
        with lock:
            if event.resource_pre_event is not None:
                meta = event.resource_pre_event.metadata
                steps.append(Step(meta.op.value, meta.urn, meta.type))
            elif event.res_op_failed_event is not None:
                meta = event.res_op_failed_event.metadata
                steps.append(Step(meta.op.value, meta.urn, meta.type, failed=True))
            elif event.diagnostic_event is not None:
                diagnostics.append(event.diagnostic_event)

    return on_event


class EngineStack:
    """One stack of ``program`` in ``work_dir`` (which holds ``Pulumi.yaml``), on ``home``."""

    def __init__(
        self,
        home: EngineHome,
        work_dir: Path,
        stack_name: str,
        project_name: str,
        program: Callable[[], None],
    ):
        self.home = home
        self.work_dir = work_dir
        self.name = stack_name
        self._config: dict[str, tuple[str, bool]] = {}
        self.stack = auto.create_or_select_stack(
            stack_name=stack_name,
            project_name=project_name,
            program=program,
            opts=auto.LocalWorkspaceOptions(work_dir=str(work_dir), env_vars=home.env_vars()),
        )

    @property
    def config_file(self) -> Path:
        return self.work_dir / f"Pulumi.{self.name}.yaml"

    # -- the CLI, as a user types it ----------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None, check: bool = True):
        return self.home.cli(
            *args, "--stack", self.name, cwd=self.work_dir, stdin=stdin, check=check
        )

    def set_config(self, values: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> None:
        """The stack's config becomes ``values``: ``pulumi config set`` for what changed (the
        value on stdin, objects as JSON text, ``--secret`` for ``secret_keys``) and ``pulumi
        config rm`` for what is gone."""
        secret = set(secret_keys)
        wanted = {
            key: (value if isinstance(value, str) else json.dumps(value), key in secret)
            for key, value in values.items()
        }
        for key in sorted(set(self._config) - set(wanted)):
            self.cli("config", "rm", key)
            del self._config[key]
        for key, (text, is_secret) in wanted.items():
            if self._config.get(key) == (text, is_secret):
                continue
            # A value that starts with "-" would read as a flag on the command line; stdin
            # also keeps secrets out of every process list.
            self.cli(
                "config", "set", *(["--secret"] if is_secret else ["--plaintext"]), key, stdin=text
            )
            self._config[key] = (text, is_secret)

    def export(self, show_secrets: bool = False) -> dict[str, Any]:
        """``pulumi stack export [--show-secrets]``: the state as the engine keeps it."""
        args = ["stack", "export"] + (["--show-secrets"] if show_secrets else [])
        return json.loads(self.cli(*args).stdout)

    def resources(self, show_secrets: bool = False) -> list[dict[str, Any]]:
        return self.export(show_secrets)["deployment"].get("resources") or []

    def resource(self, name: str, show_secrets: bool = False) -> dict[str, Any]:
        found = [r for r in self.resources(show_secrets) if r["urn"].rsplit("::", 1)[-1] == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r} in the state")
        return found[0]

    def urn(self, name: str) -> str:
        return self.resource(name)["urn"]

    # -- engine operations ------------------------------------------------------------------

    def _run(self, kind: str, operation: Callable[..., Any], **kwargs: Any) -> EngineRun:
        steps: list[Step] = []
        diagnostics: list[auto.DiagnosticEvent] = []
        printed: list[str] = []
        lock = threading.Lock()
        started = time.monotonic()
        try:
            result = operation(
                on_event=_collector(steps, diagnostics, lock), on_output=printed.append, **kwargs
            )
        except auto.errors.CommandError as error:
            raise EngineRunError(kind, error, steps, diagnostics) from error
        seconds = time.monotonic() - started
        outputs = getattr(result, "outputs", None) or {}
        summary = getattr(result, "summary", None)
        return EngineRun(
            kind=kind,
            steps=steps,
            diagnostics=diagnostics,
            outputs={k: v.value for k, v in outputs.items()},
            secret_outputs={k for k, v in outputs.items() if v.secret},
            stdout="\n".join(printed),
            seconds=seconds,
            summary=dict(summary.resource_changes or {}) if summary is not None else {},
        )

    def up(self, **kwargs: Any) -> EngineRun:
        return self._run("up", self.stack.up, **kwargs)

    def preview(self, **kwargs: Any) -> EngineRun:
        return self._run("preview", self.stack.preview, **kwargs)

    def refresh(self, **kwargs: Any) -> EngineRun:
        return self._run("refresh", self.stack.refresh, **kwargs)

    def destroy(self, **kwargs: Any) -> EngineRun:
        return self._run("destroy", self.stack.destroy, **kwargs)


class EngineRunError(RuntimeError):
    """An engine operation failed: the engine's output, and the steps it had reported."""

    def __init__(self, kind: str, error: Exception, steps: list[Step], diagnostics: list):
        super().__init__(f"pulumi {kind} failed:\n{error}")
        self.steps = steps
        self.diagnostics = diagnostics
        self.text = str(error)

    def failed_steps(self) -> list[str]:
        return [s.name for s in self.steps if s.failed]

    def errors(self, name: str | None = None) -> list[str]:
        """The error messages the plugins reported, as they wrote them (the CLI's own text
        indents them), of the resource ``name`` only when given."""
        return [
            d.message
            for d in self.diagnostics
            if d.severity == "error" and (name is None or (d.urn or "").endswith(f"::{name}"))
        ]
