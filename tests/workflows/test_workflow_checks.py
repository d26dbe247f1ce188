"""The `checks` workflow runs the README's test command, as .ci/run does, on every change."""

from workflow_files import REPO, load_workflow, triggers

CHECKS = load_workflow("checks")
SETUP_COMMAND = "sudo bash tests/setup_machine.sh"
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
    assert commands(job) == [SETUP_COMMAND, TEST_COMMAND]


def test_runs_what_ci_runs():
    # .ci/run is root already, so it runs the same two scripts without sudo.
    ci_commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip().startswith("bash ")
    ]
    assert ci_commands == [SETUP_COMMAND.removeprefix("sudo "), TEST_COMMAND]


def test_the_readme_gives_the_same_commands():
    readme = (REPO / "README.md").read_text()
    assert SETUP_COMMAND in readme
    assert TEST_COMMAND in readme
