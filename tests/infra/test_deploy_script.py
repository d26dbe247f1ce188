"""deploy.sh's checks before it deploys, run with the real Pulumi CLI where they need one.

The CLI is the one tests/setup_machine.sh puts on PATH. Its file backend, stack creation and
config commands need no language host and no provider plugin, so everything deploy.sh does
before `pulumi up` runs for real here, in a copy of the project with a stack of its own.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
REGISTRY_TOKEN = "ghp_registry-token-of-the-deploy-test"


def user_environment(home: Path) -> dict[str, str]:
    # The CLI finds its own home (~/.pulumi) from the user database, not from HOME.
    return {
        "HOME": str(home),
        "PULUMI_HOME": str(home / ".pulumi"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }


def run_deploy(project: Path, home: Path, path: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(project / "deploy.sh")],
        env={"PATH": path, **user_environment(home), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_the_pulumi_cli_it_says_where_to_get_it(tmp_path):
    # A PATH with bash and coreutils but no pulumi, as on a laptop before the CLI is installed.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "python3"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = run_deploy(REPO_ROOT, tmp_path, str(bin_dir))
    assert result.returncode == 1
    assert "the Pulumi CLI is not installed" in result.stderr
    assert "https://www.pulumi.com/docs/install/" in result.stderr
    # It stopped before creating anything.
    assert not (tmp_path / ".django-swarm").exists()


@pytest.fixture
def project(tmp_path) -> Path:
    """deploy.sh in a copy of the project whose stack `deploytest` targets an existing server.

    The virtual environment and the requirements are the repository's own (links), so
    deploy.sh's `pip install` finds everything installed.
    """
    project = tmp_path / "project"
    project.mkdir()
    for name in ("deploy.sh", "Pulumi.yaml"):
        shutil.copy(REPO_ROOT / name, project / name)
    for name in (".venv", "requirements.txt", "app"):
        (project / name).symlink_to(REPO_ROOT / name)
    (project / "Pulumi.deploytest.yaml").write_text(
        "config:\n  django-swarm:target: existing\n  django-swarm:host: 198.51.100.7\n"
    )
    return project


def pulumi(project: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pulumi", *args, "--stack", "deploytest", "--non-interactive"],
        cwd=project,
        env={
            "PATH": os.environ["PATH"],
            **user_environment(home),
            "PULUMI_BACKEND_URL": f"file://{home}/.django-swarm/state",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.fixture
def home(tmp_path, project) -> Path:
    """A user's home where deploy.sh's default state directory holds the stack `deploytest`."""
    home = tmp_path / "home"
    (home / ".django-swarm" / "state").mkdir(parents=True)
    pulumi(project, home, "stack", "init", "--secrets-provider", "passphrase",
           PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)  # fmt: skip
    return home


def set_registry_password(project: Path, home: Path) -> None:
    pulumi(project, home, "config", "set", "--secret", "registryPassword", REGISTRY_TOKEN,
           PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)  # fmt: skip


def test_a_missing_passphrase_is_named_as_such(project, home):
    set_registry_password(project, home)
    result = run_deploy(project, home, os.environ["PATH"], STACK="deploytest")
    assert result.returncode == 1
    assert "PULUMI_CONFIG_PASSPHRASE is not set" in result.stderr
    assert "registryPassword is not set" not in result.stderr


def test_a_missing_registry_password_is_named_without_reading_any_secret(project, home):
    result = run_deploy(project, home, os.environ["PATH"], STACK="deploytest",
                        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)  # fmt: skip
    assert result.returncode == 1
    assert "registryPassword is not set" in result.stderr
    assert "pulumi config set --secret registryPassword --stack deploytest" in result.stderr


def test_it_deploys_without_changing_the_users_default_backend(project, home):
    set_registry_password(project, home)
    result = run_deploy(project, home, os.environ["PATH"], STACK="deploytest",
                        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)  # fmt: skip
    # Every check passed: it went on to `pulumi up` on the stack.
    assert "Deploying stack deploytest" in result.stderr, result.stderr
    assert "is not set" not in result.stderr
    assert REGISTRY_TOKEN not in result.stdout + result.stderr
    # `pulumi login` would have recorded the backend as the user's current one.
    credentials = home / ".pulumi" / "credentials.json"
    if credentials.exists():
        assert not json.loads(credentials.read_text()).get("current"), credentials.read_text()
