"""Turn the shell scripts in ``infra/scripts`` into ``remote.Command`` inputs.

A step's *program* is its script with the non-secret parameters prepended as shell-quoted
assignments and ``scripts/lib.sh`` inlined, so it is one self-contained text and the host needs no
copy of our files. The program does not go into ``create``: pulumi-command reports a failure as
``<status>: running "<create, quoted>":`` followed by the output, so a whole script there would
bury the reason under hundreds of escaped lines. ``create`` (and ``delete``) is a two-line loader
instead: a comment naming the step, its script and a digest of the program, so that editing a
script or a parameter still changes it (and re-runs that step and nothing else), then a line that
reads the program from ``stdin`` and runs it.

``stdin`` carries, one base64 line each (safe for any byte): the create program, the delete program
(empty when the step has none), then the step's secrets in the order it documents, which the
scripts decode with the ``read_secret`` helpers of ``lib.sh``. The provider runs ``delete`` with the
``stdin`` stored in the state, so a removal runs the program that was stored with its step.
Secrets never enter ``create`` or ``delete`` (printed on errors, shown in previews); ``stdin`` is a
secret whenever it carries any.

Pulumi replaces a resource (``pulumi up --replace``) by creating the new one first and deleting the
old one last, so a step's delete can run after its own replacement's create. A step with a delete
counts its instances on the host (``hold_step``/``release_step`` of ``lib.sh``, in
``layout.STEPS_DIR``): its create program counts one more, and its delete program undoes the step
only when it takes away the last one. A change of inputs runs ``update``, the create program told
that it is the same instance, which counts nothing.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pulumi
from pulumi_command import remote

import layout

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
LIBRARY = "lib.sh"

_STRICT_MODE = "set -euo pipefail"


def script_text(name: str) -> str:
    """The body of ``infra/scripts/<name>``, without its shebang line."""
    lines = (SCRIPTS_DIR / name).read_text().splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return "\n".join(lines).strip("\n") + "\n"


def render_script(
    name: str, params: Mapping[str, str | int] | None = None, prologue: str = ""
) -> str:
    """The program that runs ``infra/scripts/<name>`` with ``params`` on the host.

    Each parameter becomes ``NAME='value'`` (quoted with :func:`shlex.quote`) before the body, so
    a value can hold any character without changing what the script does. ``prologue`` (a line
    that calls a ``lib.sh`` helper) runs between the library and the body.
    """
    params = params or {}
    for key in params:
        if not key.isidentifier() or not key.isupper():
            raise ValueError(f"script parameter {key!r} must be an upper-case shell name")
    assignments = [f"{key}={shlex.quote(str(value))}" for key, value in sorted(params.items())]
    return "\n".join(
        [
            _STRICT_MODE,
            *assignments,
            script_text(LIBRARY),
            *filter(None, [prologue]),
            script_text(name),
        ]
    )


Action = Literal["create", "update", "delete"]


def render_loader(title: str, script: str, program: str, action: Action) -> str:
    """The ``create``, ``update`` or ``delete`` text of step ``title``: run its program from stdin
    (``update`` runs the create program), with ``step_action`` saying which of the three runs."""
    digest = hashlib.sha256(program.encode()).hexdigest()[:12]
    # Line 1 of stdin is the create program, line 2 the delete program.
    line = "delete" if action == "delete" else "create"
    return (
        f"# django-swarm step {title}: {script} (program {digest}, sent on stdin)\n"
        "IFS= read -r create && IFS= read -r delete"
        f' && program=$(printf %s "${line}" | base64 -d) && step_action={action} && eval "$program"'
    )


def step_count_file(title: str) -> str:
    """Where the host counts the instances of step ``title`` (see ``hold_step`` in lib.sh)."""
    return f"{layout.STEPS_DIR}/{title}"


def instance_counting(count_file: str) -> tuple[str, str]:
    """The prologues of a step's create and delete programs that count its instances in
    ``count_file``: the create (or update) holds one, the delete releases one."""
    quoted = shlex.quote(count_file)
    return f'hold_step {quoted} "$step_action"', f"release_step {quoted}"


def render_stdin(create: str, delete: str | None, secrets: Sequence[str] = ()) -> str:
    """A step's ``stdin``: its create and delete programs, then its secrets, one base64 line each
    (safe for any byte)."""
    lines = [create, delete or "", *secrets]
    return "".join(base64.b64encode(line.encode()).decode() + "\n" for line in lines)


@dataclass(frozen=True)
class Script:
    """A script of ``infra/scripts`` and its parameters, whose values may be Pulumi inputs."""

    name: str
    params: pulumi.Input[Mapping[str, pulumi.Input[str | int]]] = field(default_factory=dict)

    def program(self, prologue: str = "") -> pulumi.Output[str]:
        return pulumi.Output.from_input(self.params).apply(
            lambda p: render_script(self.name, p, prologue)
        )


def step_inputs(
    title: str,
    create: Script,
    delete: Script | None = None,
    secrets: Sequence[pulumi.Input[str]] = (),
) -> dict[str, pulumi.Output[str]]:
    """``create``, ``delete`` and ``stdin`` of the ``remote.Command`` named ``title``, and its
    ``update`` when it has a delete (see the module's note on replacement)."""
    if delete:
        hold, release = instance_counting(step_count_file(title))
        create_program, delete_program = create.program(hold), delete.program(release)
    else:
        create_program = create.program()
        delete_program = pulumi.Output.from_input("")
    inputs = {
        "create": create_program.apply(lambda p: render_loader(title, create.name, p, "create")),
        "stdin": pulumi.Output.all(create_program, delete_program, *secrets).apply(
            lambda values: render_stdin(values[0], values[1], values[2:])
        ),
    }
    if delete:
        inputs["update"] = create_program.apply(
            lambda p: render_loader(title, create.name, p, "update")
        )
        inputs["delete"] = delete_program.apply(
            lambda p: render_loader(title, delete.name, p, "delete")
        )
    if secrets:
        inputs["stdin"] = pulumi.Output.secret(inputs["stdin"])
    return inputs


def remote_step(
    title: str,
    connection: remote.ConnectionArgs,
    create: Script,
    delete: Script | None = None,
    secrets: Sequence[pulumi.Input[str]] = (),
    *,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
    secret_output: bool = False,
) -> remote.Command:
    """The ``remote.Command`` named ``title`` that runs ``create`` (and ``delete`` on removal).

    A step that reads secrets from stdin, or prints one (``secret_output``), logs nothing and
    keeps its output secret in the state.
    """
    quiet = bool(secrets) or secret_output
    return remote.Command(
        title,
        connection=connection,
        **step_inputs(title, create, delete, secrets),
        # The provider would send the previous output as PULUMI_COMMAND_* variables, which sshd
        # refuses (AcceptEnv) with a warning on every run; no script reads them.
        add_previous_output_in_env=False,
        logging=remote.Logging.NONE if quiet else None,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            additional_secret_outputs=["stdout", "stderr"] if quiet else None,
        ),
    )
