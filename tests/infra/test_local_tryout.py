"""``./deploy.sh --local``'s checks and its private workspace, without a box: the committed
stack config is one the program deploys, a port that is taken or a missing Docker stops it
before anything is made, and the workspace in ``.local/`` keeps what Pulumi wrote to it while the
committed file stays as committed. The whole try-out, box and engine included, is
tests/tryout (the README's commands from a fresh clone)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import EXISTING_PRIVATE_KEY, UserConfig

import deploy
from local import tryout
from local.tryout import LocalTryout, TryoutError

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"{deploy.PROJECT}:"


@pytest.fixture
def project(tmp_path) -> Path:
    """A project root with the committed Pulumi.yaml and Pulumi.local.yaml."""
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def committed(project: Path) -> dict:
    return yaml.safe_load((project / "Pulumi.local.yaml").read_text())


def set_committed(project: Path, key: str, value) -> None:
    settings = committed(project)
    settings["config"][PREFIX + key] = value
    (project / "Pulumi.local.yaml").write_text(yaml.safe_dump(settings))


def test_the_committed_local_stack_deploys_its_events_to_the_box_on_loopback():
    """Pulumi.local.yaml, plus the two secrets deploy.sh --local sets, under the mock runtime."""
    values = {k.removeprefix(PREFIX): v for k, v in committed(REPO_ROOT)["config"].items()}
    run = (
        UserConfig(values)
        .with_secret("registryPassword", "local registry password")
        .with_secret("sshPrivateKey", EXISTING_PRIVATE_KEY)
        .run()
    )
    assert run.exports["publicAddress"] == "127.0.0.1"
    assert run.exports["sshCommand"] == f"ssh -p {values['sshPort']} root@127.0.0.1"
    assert run.exports["eventUrls"] == {
        event["name"]: f"http://127.0.0.1{event['path']}/" for event in values["events"]
    }
    assert len(values["events"]) == 2
    assert run.exports["imageDigest"].startswith(values["registry"]["server"] + "/")


def test_a_taken_port_is_refused_by_number_before_anything_is_made(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        set_committed(project, "sshPort", port)
        with pytest.raises(TryoutError) as refused:
            LocalTryout(project, deploy.PROJECT).check_ports_free()
    assert f"port {port} on 127.0.0.1 is taken" in str(refused.value)
    assert "sshPort in Pulumi.local.yaml" in str(refused.value)
    assert not (project / ".local").exists()


def test_a_registry_that_is_not_on_loopback_is_refused_naming_the_key(project):
    set_committed(project, "registry", {"server": "ghcr.io", "repository": "a/b", "username": "u"})
    with pytest.raises(TryoutError, match=r"registry.server in Pulumi.local.yaml is 'ghcr.io'"):
        LocalTryout(project, deploy.PROJECT).ports()


def test_without_docker_it_says_where_to_get_it_and_makes_nothing(project, monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(TryoutError, match=r"Docker is not installed.*docs.docker.com"):
        LocalTryout(project, deploy.PROJECT).start_box(print)
    assert not (project / ".local").exists()


def test_the_workspace_keeps_pulumis_salt_and_secrets_and_follows_the_committed_config(
    project, monkeypatch
):
    monkeypatch.setattr(tryout, "image_exists", lambda name: False)
    local = LocalTryout(project, deploy.PROJECT)
    assert local.write_workspace(project / "Pulumi.yaml") == ["sshPrivateKey", "registryPassword"]
    private = project / ".local" / "Pulumi.local.yaml"
    assert yaml.safe_load(private.read_text()) == {"config": committed(project)["config"]}
    assert stat.S_IMODE((project / ".local").stat().st_mode) == 0o700
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    workspace = yaml.safe_load((project / ".local" / "Pulumi.yaml").read_text())
    assert (project / ".local" / workspace["main"]).resolve() == (project / "infra").resolve()

    # What `pulumi stack init` and `pulumi config set --secret` add to the private copy.
    written = yaml.safe_load(private.read_text())
    written["encryptionsalt"] = "v1:salt"
    written["config"][PREFIX + "registryPassword"] = {"secure": "v1:ciphertext"}
    private.write_text(yaml.safe_dump(written))
    # The user adds an event to the committed file.
    events = committed(project)["config"][PREFIX + "events"]
    set_committed(project, "events", [*events, {"name": "winter", "path": "/winter"}])
    before = (project / "Pulumi.local.yaml").read_text()

    assert local.write_workspace(project / "Pulumi.yaml") == ["sshPrivateKey"]
    again = yaml.safe_load(private.read_text())
    assert again["encryptionsalt"] == "v1:salt"
    assert again["config"][PREFIX + "registryPassword"] == {"secure": "v1:ciphertext"}
    assert again["config"][PREFIX + "events"][-1]["name"] == "winter"
    assert (project / "Pulumi.local.yaml").read_text() == before


def test_where_the_setups_python_base_exists_the_site_builds_from_it(project, monkeypatch):
    monkeypatch.setattr(tryout, "image_exists", lambda name: name == tryout.LOCAL_PYTHON_BASE)
    LocalTryout(project, deploy.PROJECT).write_workspace(project / "Pulumi.yaml")
    private = yaml.safe_load((project / ".local" / "Pulumi.local.yaml").read_text())
    assert private["config"][PREFIX + "baseImage"] == tryout.LOCAL_PYTHON_BASE
    assert committed(project)["config"][PREFIX + "baseImage"] != tryout.LOCAL_PYTHON_BASE


def test_the_sites_are_printed_at_the_boxs_published_port():
    local = LocalTryout(REPO_ROOT, deploy.PROJECT)
    urls = local.site_urls({"spring": "http://127.0.0.1/spring/"})
    assert urls == {"spring": f"http://127.0.0.1:{tryout.HTTP_PORT}/spring/"}


def test_deploy_sh_local_without_docker_stops_before_the_engine(tmp_path):
    """As a newcomer runs it: bash, python3 and pulumi on PATH, no docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "python3", "pulumi"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy.sh"), "--local"],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), "PULUMI_SKIP_UPDATE_CHECK": "true"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "deploy.sh: Docker is not installed" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".pulumi").exists()
    assert os.listdir(tmp_path) == ["bin"]


def test_a_box_left_without_its_key_is_named_with_the_way_out(project, monkeypatch):
    """.local/ removed by hand while the box runs: the box only takes the key that is gone."""
    local = LocalTryout(project, deploy.PROJECT)
    monkeypatch.setattr(local, "check_docker", lambda: None)
    monkeypatch.setattr(local, "box_state", lambda: "running")
    with pytest.raises(TryoutError, match=r"remove the box with ./deploy.sh --local --destroy"):
        local.start_box(print)
    assert not (project / ".local").exists()
