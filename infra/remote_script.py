"""Turn the shell scripts in ``infra/scripts`` into ``remote.Command`` text.

A step's ``create`` text is its script with the non-secret parameters prepended as shell-quoted
assignments, so the text itself is what Pulumi diffs: editing a script or a parameter re-runs that
step and nothing else. Secrets never enter that text (it is printed on errors and shown in
previews); they travel on ``stdin``, one base64 line per secret, which the scripts decode with the
``read_secret`` helpers of ``scripts/lib.sh``; that library is inlined into every step, so a step
is one self-contained text and the host needs no copy of our files.
"""

import base64
import shlex
from collections.abc import Mapping
from pathlib import Path

import pulumi

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
LIBRARY = "lib.sh"

_STRICT_MODE = "set -euo pipefail"


def script_text(name: str) -> str:
    """The body of ``infra/scripts/<name>``, without its shebang line."""
    lines = (SCRIPTS_DIR / name).read_text().splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return "\n".join(lines).strip("\n") + "\n"


def render_script(name: str, params: Mapping[str, str | int] | None = None) -> str:
    """The command text that runs ``infra/scripts/<name>`` with ``params`` on the host.

    Each parameter becomes ``NAME='value'`` (quoted with :func:`shlex.quote`) before the body, so
    a value can hold any character without changing what the script does.
    """
    params = params or {}
    for key in params:
        if not key.isidentifier() or not key.isupper():
            raise ValueError(f"script parameter {key!r} must be an upper-case shell name")
    assignments = [f"{key}={shlex.quote(str(value))}" for key, value in sorted(params.items())]
    return "\n".join([_STRICT_MODE, *assignments, script_text(LIBRARY), script_text(name)])


def encode_secrets(*values: str) -> str:
    """``stdin`` text carrying ``values``: one base64 line each, safe for any byte."""
    return "".join(base64.b64encode(v.encode()).decode() + "\n" for v in values)


def secret_stdin(*values: pulumi.Input[str]) -> pulumi.Output[str]:
    """:func:`encode_secrets` over Pulumi inputs; the result is always a secret output."""
    return pulumi.Output.secret(pulumi.Output.all(*values).apply(lambda vs: encode_secrets(*vs)))
