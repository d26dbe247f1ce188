"""Every `pulumi` command the README and the pages of docs/ tell people to type exists in the real
CLI, with its flags.

The CLI is the one tests/setup_machine.sh puts on PATH; `pulumi <command> --help` names the
command it resolved to and lists the flags that command takes.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest

import deploy

REPO = Path(__file__).resolve().parents[2]
# The README and every page of docs/, read together: a command may live in any of them.
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Words of the documented commands that name a (sub)command rather than an argument.
SUBCOMMANDS = {"config", "set", "rm", "up", "preview", "destroy", "stack", "output", "init",
               "export", "import", "state", "unprotect", "login"}  # fmt: skip


def documented_pulumi_commands() -> list[str]:
    """`pulumi ...` commands in the shell blocks and inline code of the README and docs/*.md, one
    per command."""
    text = "\n".join(document.read_text() for document in DOCUMENTS)
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    lines += re.findall(r"`(pulumi [^`]+)`", text)
    commands = set()
    for line in lines:
        for part in re.split(r";|\||&&", line.split(" #", 1)[0]):
            if part.strip().startswith("pulumi "):
                commands.add(part.strip())
    return sorted(commands)


@cache
def help_text(path: tuple[str, ...]) -> str:
    return subprocess.run(
        ["pulumi", *path, "--help"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "PULUMI_SKIP_UPDATE_CHECK": "true"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


COMMANDS = documented_pulumi_commands()


def test_the_documents_are_the_readme_and_every_page_of_docs():
    assert REPO / "README.md" in DOCUMENTS
    assert REPO / "docs" / "how-to.md" in DOCUMENTS  # where the teardown and the move now live
    assert all(document.is_file() for document in DOCUMENTS)


def test_the_docs_give_the_teardown_commands():
    # docs/how-to.md, "Tear down an event, or everything" (the README links to it).
    # The droplet is protected (it must not be replaced); its URN is a stack output.
    assert 'pulumi state unprotect "$(pulumi stack output dropletUrn)"' in COMMANDS
    assert "pulumi destroy --exclude-protected" in COMMANDS
    assert "pulumi state unprotect --all --yes" in COMMANDS


def test_the_docs_give_the_commands_that_move_to_a_new_droplet():
    # docs/how-to.md, "Move to a new droplet".
    assert (
        'pulumi destroy --target "$(pulumi stack output dropletUrn)" --target-dependents'
        in COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_and_flag_exists_in_the_cli(command):
    # `<key>` and the like are placeholders; `< file` is a redirection.
    words = [w for w in shlex.split(command)[1:] if not w.startswith("<")]
    path = []
    for word in words:
        if word not in SUBCOMMANDS or len(path) == 2:
            break
        path.append(word)
    usage = help_text(tuple(path))
    # The help of the command itself (under its name or one of its aliases), not its parent's.
    resolved = re.search(r"^Usage:\n  pulumi ([a-z ]+?)(?: [\[<]|$)", usage, re.MULTILINE)
    assert resolved, usage
    *parents, name = resolved[1].split()
    aliases = re.search(r"^Aliases:\n  (.*)$", usage, re.MULTILINE)
    names = {name, *(aliases[1].split(", ") if aliases else [])}
    assert path[:-1] == parents and path[-1] in names, (command, resolved[0])
    for flag in (w.split("=", 1)[0] for w in words if w.startswith("-")):
        assert re.search(rf"(^|[\s,]){re.escape(flag)}[\s,=]", usage, re.MULTILINE), flag


def documented_deploy_sh_commands() -> list[str]:
    """`./deploy.sh ...` as the README and docs/*.md write it, with its flags."""
    text = "\n".join(document.read_text() for document in DOCUMENTS)
    return sorted(set(re.findall(r"\./deploy\.sh(?: --?[a-z][a-z-]*)*", text)))


def test_the_docs_give_deploy_sh_with_its_local_try_out_and_teardown():
    commands = documented_deploy_sh_commands()
    assert {"./deploy.sh --local", "./deploy.sh --local --destroy", "./deploy.sh --destroy"} <= set(
        commands
    )


@pytest.mark.parametrize("command", documented_deploy_sh_commands())
def test_each_deploy_sh_flag_the_docs_give_exists(command, capsys):
    flags = command.split()[1:]
    if flags == ["--help"]:
        with pytest.raises(SystemExit) as helped:
            deploy.parse_arguments(flags)
        assert helped.value.code == 0 and "--local" in capsys.readouterr().out
        return
    parsed = vars(deploy.parse_arguments(flags))
    assert all(parsed[flag.removeprefix("--")] for flag in flags), parsed


def test_a_flag_deploy_sh_does_not_know_is_refused():
    with pytest.raises(SystemExit) as refused:
        deploy.parse_arguments(["--locall"])
    assert refused.value.code == 2
