"""deploy.sh and its entry point (infra/deploy.py), run with the real Pulumi CLI and engine.

The CLI is the one tests/setup_machine.sh puts on PATH; the user's Pulumi home holds the test
plugins (tests/plugins), as a laptop's would hold the real ones. Everything runs in a copy of the
project with a stack of its own, whose server (198.51.100.7, a documentation address) is never
contacted: the checks stop before the engine, and a preview runs nothing on a server.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # tests.engine, for the test plugins' home

import deploy  # noqa: E402  (infra/ is on sys.path: tests/infra/conftest.py)
from tests.engine import EngineHome  # noqa: E402

PASSPHRASE = "correct horse battery staple"
REGISTRY_TOKEN = "ghp_registry-token-of-the-deploy-test"


def user_environment(home: Path) -> dict[str, str]:
    # The CLI finds its own home (~/.pulumi) from the user database, not from HOME.
    return {
        "HOME": str(home),
        "PULUMI_HOME": str(home / ".pulumi"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # A plugin the home lacks is an error, never a download.
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }


def run_deploy(
    project: Path, home: Path, path: str, *args: str, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(project / "deploy.sh"), *args],
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
    shutil.copytree(
        REPO_ROOT / "infra", project / "infra", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in (".venv", "requirements.txt", "app", "local"):
        (project / name).symlink_to(REPO_ROOT / name)
    config = {
        "target": "existing",
        "host": "198.51.100.7",
        "registry": {"server": "ghcr.io", "repository": "ieee-branch/hits", "username": "bot"},
        "events": [{"name": "event1", "path": "/event1"}, {"name": "event2", "path": "/event2"}],
    }
    (project / "Pulumi.deploytest.yaml").write_text(
        json.dumps({"config": {f"django-swarm:{k}": v for k, v in config.items()}})
    )
    return project


def pulumi(
    project: Path, home: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pulumi", *args, "--stack", "deploytest", "--non-interactive"],
        input=stdin,
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
    # The plugins requirements.txt pins, as a laptop has them once downloaded.
    plugins = EngineHome(tmp_path / "engine")
    plugins.prepare()
    plugins.home.rename(home / ".pulumi")
    pulumi(project, home, "stack", "init", "--secrets-provider", "passphrase",
           PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)  # fmt: skip
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    pulumi(project, home, "config", "set", "--secret", "sshPrivateKey", stdin=key.decode(),
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


def test_it_previews_with_the_engine_and_asks_before_it_deploys(project, home):
    set_registry_password(project, home)
    result = run_deploy(project, home, os.environ["PATH"], STACK="deploytest",
                        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)  # fmt: skip
    # Every check passed and the engine previewed the program: its own progress lines, with the
    # steps it would create on the server.
    assert "Preview of stack deploytest" in result.stderr, result.stderr
    assert "is not set" not in result.stderr
    assert " plugin " not in result.stderr  # the home has the pinned plugins: none installed
    assert "command:remote:Command" in result.stdout and "create" in result.stdout, result.stdout
    assert "event1-stack" in result.stdout
    # Without a terminal to ask on, it deploys nothing and says how to go on.
    assert result.returncode == 1
    assert "run it again with --yes to go on without asking" in result.stderr
    assert "Deploying stack" not in result.stderr
    state = json.loads(
        pulumi(project, home, "stack", "export", PULUMI_CONFIG_PASSPHRASE=PASSPHRASE).stdout
    )
    assert not state["deployment"].get("resources"), "the preview changed the state"
    assert REGISTRY_TOKEN not in result.stdout + result.stderr
    # `pulumi login` would have recorded the backend as the user's current one.
    credentials = home / ".pulumi" / "credentials.json"
    if credentials.exists():
        assert not json.loads(credentials.read_text()).get("current"), credentials.read_text()


def test_the_plugins_it_installs_are_the_versions_requirements_txt_pins():
    requirements = (REPO_ROOT / "requirements.txt").read_text()
    pins = dict(line.split("==") for line in requirements.split() if line.startswith("pulumi-"))
    droplet = deploy.pinned_plugins(requirements, "digitalocean")
    assert droplet == {name.removeprefix("pulumi-"): version for name, version in pins.items()}
    # Your own server needs no DigitalOcean provider.
    existing = deploy.pinned_plugins(requirements, "existing")
    assert existing == {k: v for k, v in droplet.items() if k != "digitalocean"}
    assert set(existing) == {"command", "docker", "random", "tls"}


def test_a_wrong_passphrase_stops_it_in_pulumis_words_before_anything_runs(project, home):
    set_registry_password(project, home)
    result = run_deploy(project, home, os.environ["PATH"], STACK="deploytest",
                        PULUMI_CONFIG_PASSPHRASE="not the passphrase")  # fmt: skip
    assert result.returncode == 1
    assert "incorrect passphrase" in result.stderr, result.stderr
    assert "Deploying stack" not in result.stderr


def test_destroy_of_a_stack_with_nothing_deployed_previews_and_changes_nothing(project, home):
    set_registry_password(project, home)
    result = run_deploy(project, home, os.environ["PATH"], "--destroy", STACK="deploytest",
                        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Preview of tearing down stack deploytest" in result.stderr
    assert "Nothing to tear down" in result.stderr
    assert "Tearing down" not in result.stderr


def test_a_teardown_says_when_the_data_goes_with_the_droplet():
    listing = {"django-swarm:target": {"value": "digitalocean"}}
    assert "PostgreSQL volume" in deploy.data_kept("digitalocean", listing)
    without_volume = {**listing, "django-swarm:postgresVolumeGb": {"value": "0"}}
    assert deploy.data_kept("digitalocean", without_volume) is None
    assert "on your server" in deploy.data_kept("existing", without_volume)
