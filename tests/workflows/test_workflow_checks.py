"""The `checks` workflow runs the README's test command, as .ci/run does, on every change."""

import re

from workflow_files import REPO, load_workflow, triggers

CHECKS = load_workflow("checks")
SETUP_COMMAND = "sudo bash tests/setup_machine.sh"
# On GitHub, sudo keeps PATH so that the set-up finds the CLI that pulumi/actions installed.
GITHUB_SETUP_COMMAND = 'sudo env "PATH=$PATH" bash tests/setup_machine.sh'
TEST_COMMAND = "bash tests/run_all.sh"


def commands(job):
    return [step["run"].strip() for step in job["steps"] if "run" in step]


def test_runs_on_every_push_and_pull_request():
    assert triggers(CHECKS) == {"push": {}, "pull_request": {}}


def test_token_can_only_read_the_code():
    assert CHECKS["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in CHECKS["jobs"].values())


def test_runs_the_test_command_after_preparing_the_machine():
    (job,) = CHECKS["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert job["steps"][0]["uses"].startswith("actions/checkout@")
    assert commands(job) == [GITHUB_SETUP_COMMAND, TEST_COMMAND]


def test_installs_the_cli_version_that_the_set_up_builds_elsewhere():
    (job,) = CHECKS["jobs"].values()
    (step,) = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert "command" not in step["with"]  # install only
    go_mod = (REPO / "tests" / "pulumi_cli" / "go.mod").read_text()
    (version,) = re.findall(r"github\.com/pulumi/pulumi/pkg/v3 v(\S+)", go_mod)
    assert step["with"]["pulumi-version"] == version
    steps = job["steps"]
    setup = next(i for i, s in enumerate(steps) if s.get("run") == GITHUB_SETUP_COMMAND)
    assert steps.index(step) < setup


def test_runs_what_ci_runs():
    # .ci/run is root already, so it runs the same two scripts without sudo.
    ci_commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip().startswith("bash ")
    ]
    assert ci_commands == [SETUP_COMMAND.removeprefix("sudo "), TEST_COMMAND]


def test_the_readme_and_the_tests_page_give_the_same_commands():
    # The README's "Tests" section gives both commands; docs/tests.md, which it links to, too.
    for document in (REPO / "README.md", REPO / "docs" / "tests.md"):
        text = document.read_text()
        assert SETUP_COMMAND in text, document
        assert TEST_COMMAND in text, document
