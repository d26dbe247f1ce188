"""How a step reaches the host: a short loader in ``create``/``delete``, its program and secrets on
stdin. Each loader is run here with bash exactly as sshd would run it (``bash -c <text>``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from remote_script import (
    instance_counting,
    render_loader,
    render_script,
    render_stdin,
    script_text,
)

# Parameters and secrets that break naive quoting.
TRICKY = 'it\'s "$HOME" `id` \\ ;-- 100% é\n second line'


def program(body: str, **params: str) -> str:
    """A program as render_script makes one, around a body of our own."""
    rendered = render_script("host_key.sh", params)
    return rendered.removesuffix(script_text("host_key.sh")) + body


def run(text: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", text], input=stdin, capture_output=True, text=True, timeout=30
    )


def test_create_runs_the_create_program_with_its_parameters_then_reads_the_secrets():
    create = program('printf "%s|" "$GREETING" "$(read_secret)" "$(read_secret)"', GREETING=TRICKY)
    delete = program("echo removing")
    loader = render_loader("event1-secrets", "event_secrets.sh", create, "create")
    result = run(loader, render_stdin(create, delete, ["first secret", TRICKY]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{TRICKY}|first secret|{TRICKY}|"


def test_delete_runs_the_delete_program_from_the_same_stdin():
    create, delete = program("echo creating"), program('echo "removing $WHAT $(read_secret)"')
    delete = delete.replace("set -euo pipefail\n", "set -euo pipefail\nWHAT=network\n", 1)
    loader = render_loader("event1-network", "event_network_remove.sh", delete, "delete")
    result = run(loader, render_stdin(create, delete, ["token"]))
    assert (result.returncode, result.stdout) == (0, "removing network token\n")


def test_the_loader_is_two_lines_naming_the_step_and_changes_with_the_program():
    """What a failure prints before the output (``running "<create>"``): short, and it names the
    step; a changed script or parameter still changes the text, so the step runs again."""
    one = render_loader("event1-migrate", "event_migrate.sh", program("true", A="1"), "create")
    two = render_loader("event1-migrate", "event_migrate.sh", program("true", A="2"), "create")
    assert len(one.splitlines()) == 2 and len(one) < 250
    assert one.splitlines()[0].startswith("# django-swarm step event1-migrate: event_migrate.sh")
    assert one != two
    assert "A=" not in one


@pytest.mark.parametrize("status", [1, 3])
def test_a_failing_program_fails_the_step_with_its_status_and_reason(status):
    create = program(f'echo "event event1: migrations failed" >&2; exit {status}')
    loader = render_loader("event1-migrate", "event_migrate.sh", create, "create")
    result = run(loader, render_stdin(create, None))
    assert result.returncode == status
    assert result.stderr == "event event1: migrations failed\n"


def test_strict_mode_holds_inside_the_program():
    create = program('false\necho "not reached"')
    loader = render_loader("host-swarm", "host_swarm.sh", create, "create")
    result = run(loader, render_stdin(create, None))
    assert result.returncode == 1 and "not reached" not in result.stdout


def test_without_its_program_on_stdin_a_step_fails_instead_of_doing_nothing():
    loader = render_loader("host-swarm", "host_swarm.sh", program("true"), "create")
    assert run(loader, "").returncode != 0
    assert run(loader, "bm90IGJhc2U2NCBhdCBhbGwh!!!\n\n").returncode != 0


def test_the_troubleshooting_page_shows_a_failure_as_the_loader_prints_it():
    # docs/troubleshooting.md, "Troubleshoot a failed release" (moved there from the README).
    page = (Path(__file__).parents[2] / "docs" / "troubleshooting.md").read_text()
    shown = re.search(r'error: Process exited with status 1: running "(.*?)\\n', page)
    assert shown, "the failure example of docs/troubleshooting.md is gone"
    loader = render_loader("event1-stack", "event_stack.sh", program("true"), "create")
    header = loader.splitlines()[0]
    assert re.sub(r"program [0-9a-f]{12}", "program <digest>", header) == re.sub(
        r"program [0-9a-f]{12}", "program <digest>", shown.group(1)
    )


# --- Replacement: Pulumi creates the new instance of a step before it deletes the old one -------


class CountedStep:
    """A step with a delete, as step_inputs makes one, whose instances are counted in a file of
    ``tmp_path``; its create prints "done" and its delete "undone"."""

    def __init__(self, tmp_path: Path, create_body: str = "echo done"):
        self.count_file = tmp_path / "steps" / "event1-stack"
        hold, release = instance_counting(str(self.count_file))
        self.create = (
            render_script("host_key.sh", {}, hold).removesuffix(script_text("host_key.sh"))
            + create_body
        )
        self.delete = (
            render_script("host_key.sh", {}, release).removesuffix(script_text("host_key.sh"))
            + "echo undone"
        )

    def run(self, action: str) -> subprocess.CompletedProcess:
        program = self.delete if action == "delete" else self.create
        loader = render_loader("event1-stack", "event_stack.sh", program, action)
        result = run(loader, render_stdin(self.create, self.delete))
        return result

    def count(self) -> str | None:
        return self.count_file.read_text().strip() if self.count_file.exists() else None


def test_the_old_instances_delete_after_its_replacement_undoes_nothing(tmp_path):
    step = CountedStep(tmp_path)
    assert step.run("create").stdout == "done\n"
    # `pulumi up --replace`: the new instance's create, then the old instance's delete.
    assert step.run("create").stdout == "done\n"
    old = step.run("delete")
    assert (old.returncode, old.stdout) == (0, "")
    assert "its replacement is in place" in old.stderr
    # The event leaves the config: the one instance left undoes the step.
    last = step.run("delete")
    assert (last.returncode, last.stdout) == (0, "undone\n")
    assert step.count() is None


def test_updates_run_the_same_instance_again_and_count_nothing(tmp_path):
    step = CountedStep(tmp_path)
    step.run("create")
    for _ in range(3):
        assert step.run("update").stdout == "done\n"
    assert step.count() == "1"
    assert step.run("delete").stdout == "undone\n"


def test_a_step_from_before_counting_counts_itself_on_its_update_or_is_undone(tmp_path):
    # An instance created by a version without counting has no count file: its first update
    # (every step's text changes with the upgrade) counts it, and a delete undoes it.
    step = CountedStep(tmp_path)
    assert step.run("delete").stdout == "undone\n"
    step.run("update")
    assert step.count() == "1"
    step.run("create")
    assert step.run("delete").stdout == ""
    assert step.run("delete").stdout == "undone\n"


def test_a_replacement_whose_create_failed_still_counts(tmp_path):
    # Pulumi keeps a failed create in its state (and retries it as an update), and the old
    # instance is then deleted: that delete must leave the host alone too.
    step = CountedStep(tmp_path)
    step.run("create")
    failing = CountedStep(tmp_path, "echo failed >&2; exit 1")
    assert failing.run("create").returncode == 1
    assert step.run("delete").stdout == ""
    assert step.run("update").stdout == "done\n"
    assert step.run("delete").stdout == "undone\n"


def test_a_failed_undo_is_retried_in_full(tmp_path):
    step = CountedStep(tmp_path)
    step.run("create")
    step.delete = step.delete.replace("echo undone", "echo undo failed >&2; exit 1")
    assert step.run("delete").returncode == 1
    step.delete = step.delete.replace("echo undo failed >&2; exit 1", "echo undone")
    assert step.run("delete").stdout == "undone\n"
