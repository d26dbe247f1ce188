"""The `pulumi` workflow: preview commented on pull requests, up on main behind an environment,
destroy only on a confirmed manual run."""

import os
import re
import subprocess

import pytest
import yaml
from workflow_expressions import evaluate, is_truthy
from workflow_files import REPO, load_workflow, run_scripts, triggers

PULUMI = load_workflow("pulumi")
JOBS = PULUMI["jobs"]
STACK = "prod"
ENVIRONMENT = "production"
PREVIEW_ENVIRONMENT = "preview"
# Environments whose runs wait for a reviewer (docs/workflows.md: Required reviewers).
GATED_ENVIRONMENTS = {ENVIRONMENT, PREVIEW_ENVIRONMENT}
COMMAND_OF_JOB = {"preview": "preview", "up": "up", "destroy": "destroy"}
REPOSITORY = "ieee-branch/django-swarm"
# Where the README's "GitHub workflows" section and its one-time set-up now live.
WORKFLOWS_PAGE = REPO / "docs" / "workflows.md"
# The values given to the Pulumi step, all from secrets or variables of the same name.
DEPLOY_SETTINGS = {
    "PULUMI_BACKEND_URL": "vars",
    "AWS_ACCESS_KEY_ID": "secrets",
    "AWS_SECRET_ACCESS_KEY": "secrets",
    "PULUMI_CONFIG_PASSPHRASE": "secrets",
    "DIGITALOCEAN_TOKEN": "secrets",
}


def pulumi_step(job):
    (step,) = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    return step


def step_index(job, predicate):
    (index,) = [i for i, step in enumerate(job["steps"]) if predicate(step)]
    return index


def context(event_name, *, head_repository=REPOSITORY, confirm_stack=None):
    event = {"pull_request": {"number": 7, "head": {"repo": {"full_name": head_repository}}}}
    return {
        "github": {
            "event_name": event_name,
            "repository": REPOSITORY,
            "event": event if event_name == "pull_request" else {},
        },
        "inputs": {} if confirm_stack is None else {"confirm_stack": confirm_stack},
    }


def jobs_that_run(ctx):
    return {job_id for job_id, job in JOBS.items() if is_truthy(evaluate(job["if"], ctx))}


def test_triggers():
    on = triggers(PULUMI)
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]
    assert on["pull_request"]["branches"] == ["main"]


def test_destroy_asks_for_the_stack_name_with_nothing_prefilled():
    (name,) = triggers(PULUMI)["workflow_dispatch"]["inputs"]
    confirm = triggers(PULUMI)["workflow_dispatch"]["inputs"][name]
    assert name == "confirm_stack"
    assert confirm["type"] == "string"
    assert confirm["required"] is True
    assert "default" not in confirm
    assert STACK in confirm["description"]


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (context("pull_request"), {"preview"}),
        # A fork's pull request gets no secrets: no preview rather than a failing one.
        (context("pull_request", head_repository="someone/fork"), set()),
        (context("push"), {"up"}),
        (context("workflow_dispatch", confirm_stack=STACK), {"destroy"}),
        (context("workflow_dispatch", confirm_stack="production"), {"destroy-refused"}),
        (context("workflow_dispatch", confirm_stack="prod "), {"destroy-refused"}),
        (context("workflow_dispatch", confirm_stack="yes"), {"destroy-refused"}),
        (context("workflow_dispatch", confirm_stack=""), {"destroy-refused"}),
        (context("workflow_dispatch"), {"destroy-refused"}),
    ],
    ids=lambda value: repr(value) if isinstance(value, set) else None,
)
def test_which_jobs_run(ctx, expected):
    assert jobs_that_run(ctx) == expected


@pytest.mark.parametrize(("job_id", "command"), COMMAND_OF_JOB.items())
def test_each_job_runs_its_pulumi_command_on_the_stack(job_id, command):
    inputs = pulumi_step(JOBS[job_id])["with"]
    assert inputs["command"] == command
    assert inputs["stack-name"] == STACK
    assert inputs["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"


def test_only_the_preview_comments_on_the_pull_request():
    comments = {job: pulumi_step(JOBS[job])["with"].get("comment-on-pr") for job in COMMAND_OF_JOB}
    assert comments == {"preview": True, "up": None, "destroy": None}


def test_destroy_keeps_what_the_program_protects():
    # The PostgreSQL data volume is protected; a plain destroy fails on it.
    assert pulumi_step(JOBS["destroy"])["with"]["exclude-protected"] is True
    assert "exclude-protected" not in pulumi_step(JOBS["up"])["with"]


def test_permissions():
    assert PULUMI["permissions"] == {}
    assert JOBS["preview"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert JOBS["up"]["permissions"] == {"contents": "read"}
    assert JOBS["destroy"]["permissions"] == {"contents": "read"}
    assert JOBS["destroy-refused"]["permissions"] == {}


def test_up_and_destroy_wait_for_the_production_environment():
    assert JOBS["up"]["environment"] == ENVIRONMENT
    assert JOBS["destroy"]["environment"] == ENVIRONMENT


def test_the_preview_runs_in_its_own_environment():
    assert JOBS["preview"]["environment"] == PREVIEW_ENVIRONMENT


def secrets_read_by(job) -> set[str]:
    """Names of the secrets a job's text refers to (``secrets.NAME``), but the run's own token."""
    return set(re.findall(r"\bsecrets\.(\w+)", yaml.safe_dump(job))) - {"GITHUB_TOKEN"}


@pytest.mark.parametrize("workflow_name", ["pulumi", "checks"])
def test_no_job_reads_a_secret_without_an_approval_gate(workflow_name):
    # Credentials are environment secrets (docs/workflows.md) and both environments have required
    # reviewers: a job that names no environment, or another one, would read a repository
    # secret, which no reviewer guards.
    for job_id, job in load_workflow(workflow_name)["jobs"].items():
        if secrets_read_by(job):
            assert job.get("environment") in GATED_ENVIRONMENTS, (workflow_name, job_id)


@pytest.mark.parametrize("event", ["pull_request", "push", "workflow_dispatch"])
def test_code_from_a_pull_request_never_reaches_the_production_environment(event):
    # Only a push to main (merged code) and a manual run on a chosen branch get production's
    # write-scoped credentials; a pull request's jobs run in `preview` at most.
    ctx = context(event, confirm_stack=STACK if event == "workflow_dispatch" else None)
    environments = {JOBS[job].get("environment") for job in jobs_that_run(ctx)}
    if event == "pull_request":
        assert environments == {PREVIEW_ENVIRONMENT}
    else:
        assert environments == {ENVIRONMENT}


def test_the_workflows_page_says_to_create_environment_secrets_with_read_scope_for_previews():
    # The one-time set-up moved from the README to docs/workflows.md (the README links to it).
    page = WORKFLOWS_PAGE.read_text()
    for environment in GATED_ENVIRONMENTS:
        assert f"`{environment}`" in page
    assert "**Required reviewers**" in page
    assert "not** as repository secrets" in page
    (token_row,) = [
        line for line in page.splitlines() if line.strip().startswith("| `DIGITALOCEAN_TOKEN`")
    ]
    production, preview = token_row.split("|")[-3:-1]
    assert "**write** scope" in production
    assert "**read** scope" in preview


def test_up_and_destroy_never_overlap_nor_cancel_each_other():
    up, destroy = JOBS["up"]["concurrency"], JOBS["destroy"]["concurrency"]
    assert up == destroy
    assert "${{" not in up["group"]
    assert up["cancel-in-progress"] is False


def test_the_program_is_installed_into_the_projects_virtualenv_before_pulumi_runs():
    runtime_options = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["runtime"]["options"]
    venv = runtime_options["virtualenv"]
    assert runtime_options["toolchain"] == "pip"
    venv_pattern = re.escape(venv)
    install = re.compile(
        rf"python -m venv {venv_pattern}\n{venv_pattern}/bin/pip install .*-r requirements\.txt"
    )
    for job_id in COMMAND_OF_JOB:
        job = JOBS[job_id]
        checkout = step_index(job, lambda s: s.get("uses", "").startswith("actions/checkout@"))
        python = step_index(job, lambda s: s.get("uses", "").startswith("actions/setup-python@"))
        pip = step_index(job, lambda s: bool(install.search(s.get("run", ""))))
        pulumi = job["steps"].index(pulumi_step(job))
        assert checkout < python < pip < pulumi, job_id


def test_the_cli_is_the_version_of_the_sdk():
    (sdk,) = re.findall(r"^pulumi==(\S+)$", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    assert PULUMI["env"]["PULUMI_CLI_VERSION"] == sdk
    for job_id in COMMAND_OF_JOB:
        inputs = pulumi_step(JOBS[job_id])["with"]
        assert inputs["pulumi-version"] == "${{ env.PULUMI_CLI_VERSION }}"


@pytest.mark.parametrize("job_id", COMMAND_OF_JOB)
def test_secrets_go_only_to_the_settings_check_and_the_pulumi_step(job_id):
    expected_env = {name: f"${{{{ {kind}.{name} }}}}" for name, kind in DEPLOY_SETTINGS.items()}
    job = JOBS[job_id]
    check = settings_check(job)
    assert check["env"] == expected_env
    assert pulumi_step(job)["env"] == expected_env
    others = [step for step in job["steps"] if step is not check and step is not pulumi_step(job)]
    assert all("env" not in step for step in others), job_id
    assert "env" not in job


def settings_check(job):
    (step,) = [s for s in job["steps"] if s.get("name", "").startswith("Check that the deploy")]
    return step


def run_settings_check(settings):
    script = settings_check(JOBS["up"])["run"]
    env = {"PATH": os.environ["PATH"], **settings}
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], env=env, capture_output=True, text=True
    )


def test_the_settings_check_passes_silently_when_everything_is_set():
    settings = {name: f"value-of-{name}" for name in DEPLOY_SETTINGS}
    result = run_settings_check(settings)
    assert result.returncode == 0, result.stderr
    assert "value-of-" not in result.stdout + result.stderr


@pytest.mark.parametrize("missing", sorted(set(DEPLOY_SETTINGS) - {"DIGITALOCEAN_TOKEN"}))
def test_the_settings_check_names_what_is_missing_and_never_a_value(missing):
    settings = {name: f"value-of-{name}" for name in DEPLOY_SETTINGS if name != missing}
    result = run_settings_check(settings)
    assert result.returncode == 1
    assert result.stdout.startswith("::error::")
    assert missing in result.stdout
    assert "value-of-" not in result.stdout + result.stderr


def test_the_settings_check_leaves_the_digitalocean_token_to_the_provider():
    # A stack with `target: existing` needs no DigitalOcean token at all.
    settings = {name: "set" for name in DEPLOY_SETTINGS if name != "DIGITALOCEAN_TOKEN"}
    assert run_settings_check(settings).returncode == 0


def test_no_script_expands_a_secret():
    # The settings check looks the values up by name (${!name}) and prints names only.
    secrets = [name for name, kind in DEPLOY_SETTINGS.items() if kind == "secrets"]
    for job_id, name, script in run_scripts(PULUMI):
        for secret in secrets:
            assert not re.search(rf"\$\{{?{secret}\b", script), (job_id, name, secret)


def test_the_refusal_explains_itself():
    (step,) = JOBS["destroy-refused"]["steps"]
    result = subprocess.run(["bash", "-e", "-c", step["run"]], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Nothing was destroyed" in result.stdout
    assert STACK in result.stdout


def test_the_workflows_page_documents_every_secret_and_variable():
    page = WORKFLOWS_PAGE.read_text()
    missing = [name for name in DEPLOY_SETTINGS if name not in page]
    assert not missing, f"docs/workflows.md should say what {missing} are and where to get them"
    assert ENVIRONMENT in page
