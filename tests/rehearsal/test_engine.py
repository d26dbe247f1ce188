"""The replay engine itself, proven on a tiny program (toy_program/) against a real box.

Ordered as a story on one box and one state file: create, no-change, update, replace, removal,
failure, unknown type, forced re-run, `--replace`, destroy.
"""

import pytest
import requests

from tests import harness
from tests.rehearsal.conftest import REGISTRY_USER
from tests.rehearsal.replay import ReplayCloud, converge, image, tree_digest

TOY_DIR = harness.REPO_ROOT / "tests" / "rehearsal" / "toy_program"
SECRET_KEYS = ["sshPrivateKey", "registryPassword"]


@pytest.fixture(scope="module")
def toy(box, tmp_path_factory):
    """Converges of the toy program into the module's box, sharing one state file."""
    workdir = tmp_path_factory.mktemp("rehearsal-toy")
    state = workdir / "state.json"

    def run(rerun_commands: bool = False, replace: tuple[str, ...] = (), **extra):
        config = {
            "host": "127.0.0.1",
            "sshPort": box.ssh_port,
            "sshPrivateKey": box.private_key,
            "registry": {
                "server": box.registry_server,
                "repository": "rehearsal-toy",
                "username": REGISTRY_USER,
            },
            "registryPassword": box.registry_password,
            **extra,
        }
        return converge(
            config, SECRET_KEYS, state, workdir, rerun_commands=rerun_commands, replace=replace
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(harness, "INFRA_DIR", TOY_DIR)
        yield run


def actions(result) -> list[tuple[str, str]]:
    return [(e.key.rsplit("::", 1)[1], e.action) for e in result.cloud.executions]


def test_first_converge_creates_everything_for_real(toy, box):
    result = toy()
    assert sorted(actions(result)) == [("toy-log", "create"), ("toy-secret-file", "create")]
    password = result.program.named("toy-password").outputs["result"]
    assert len(password) == 24 == result.program.exports["passwordLength"]
    # The secret went over stdin, byte for byte.
    assert box.check("cat /root/toy/secret") == password
    assert box.check("cat /root/toy/program.py") == (TOY_DIR / "__main__.py").read_text()
    assert result.program.exports["publicKey"].startswith("ssh-ed25519 ")
    repository, digest = result.program.exports["digest"].split("@")
    assert repository == f"{box.registry_server}/rehearsal-toy"
    manifest = f"http://{box.registry_server}/v2/rehearsal-toy/manifests/latest"
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    assert requests.get(manifest, headers=accept, timeout=10).status_code == 401
    pushed = requests.get(
        manifest, headers=accept, auth=(REGISTRY_USER, box.registry_password), timeout=10
    )
    assert pushed.headers["Docker-Content-Digest"] == digest


def test_no_change_runs_nothing(toy):
    result = toy()
    assert result.cloud.executions == []
    assert result.cloud.builds == []
    assert result.deleted == []


def test_changed_inputs_update_and_changed_triggers_replace(toy, box):
    result = toy(label="second", trigger="two", greeting="bonjour")
    # Pulumi's order for a replacement: the new instance is created first, the old one deleted
    # last.
    assert actions(result) == [
        ("toy-secret-file", "update"),
        ("toy-log", "create"),
        ("toy-log", "delete"),
    ]
    assert result.deleted == ["command:remote:Command::toy-log"]
    assert result.cloud.executions[0].stdout == "updated\n"
    assert box.check("cat /root/toy/label") == "second\n"
    assert box.check("cat /root/toy-log").split() == ["create", "create", "delete"]
    assert len(result.cloud.builds) == 1


def test_a_resource_the_program_drops_is_deleted_after_the_run(toy, box):
    added = toy(label="second", trigger="two", greeting="bonjour", withExtra=True)
    assert actions(added) == [("toy-extra", "create")]
    assert box.ssh("test -e /root/toy-extra").status == 0
    dropped = toy(label="second", trigger="two", greeting="bonjour")
    assert dropped.deleted == ["command:remote:Command::toy-extra"]
    assert actions(dropped) == [("toy-extra", "delete")]
    assert box.ssh("test -e /root/toy-extra").status == 1


def test_a_failing_command_fails_the_converge_with_its_output_and_is_run_again(toy):
    failure = r"(?s)toy-failing \(create\): Process exited with status 3: running .*disk"
    with pytest.raises(Exception, match=failure):
        toy(label="second", trigger="two", greeting="bonjour", withFailure=True)
    # Like the engine, the state keeps the failed step, and the next run tries it again even
    # though its inputs did not change.
    with pytest.raises(Exception, match=failure):
        toy(label="second", trigger="two", greeting="bonjour", withFailure=True)


def test_an_unknown_resource_type_is_an_error_not_a_skip(toy):
    with pytest.raises(Exception, match="does not know how to generate random:index/randomPet"):
        toy(label="second", trigger="two", greeting="bonjour", withUnknownType=True)


def test_rerun_commands_runs_every_command_again_as_an_update(toy, box):
    result = toy(rerun_commands=True, label="second", trigger="two", greeting="bonjour")
    assert sorted(actions(result)) == [("toy-log", "create"), ("toy-secret-file", "update")]
    assert result.cloud.builds == []
    # The failed step the program no longer declares went after the run.
    assert result.deleted == ["command:remote:Command::toy-failing"]


def test_replace_creates_the_new_instance_then_deletes_the_old_one(toy, box):
    """`pulumi up --replace`: a delete that undoes what its create did (toy-secret-file's
    `rm -rf /root/toy`) undoes its own replacement. The program's steps count their instances
    against exactly this (remote_script.py)."""
    result = toy(replace=("toy-secret-file",), label="second", trigger="two", greeting="bonjour")
    assert actions(result) == [("toy-secret-file", "create"), ("toy-secret-file", "delete")]
    assert box.ssh("test -e /root/toy/secret").status == 1


def test_destroy_runs_deletes_in_reverse_order(toy, box, tmp_path_factory):
    cloud = ReplayCloud(toy_state(tmp_path_factory), tmp_path_factory.getbasetemp())
    cloud.destroy()
    assert actions_of(cloud) == [("toy-log", "delete"), ("toy-secret-file", "delete")]
    assert box.ssh("test -e /root/toy").status == 1
    assert box.check("tail -n 1 /root/toy-log") == "delete\n"
    assert cloud.state.resources == {}


def toy_state(tmp_path_factory):
    return next(tmp_path_factory.getbasetemp().glob("rehearsal-toy*/state.json"))


def actions_of(cloud) -> list[tuple[str, str]]:
    return [(e.key.rsplit("::", 1)[1], e.action) for e in cloud.executions]


def test_an_image_context_digest_leaves_out_what_dockerignore_excludes(tmp_path):
    """Like pulumi-docker: a file the build never sees does not make the image change."""
    (tmp_path / ".dockerignore").write_text("# generated\n**/__pycache__\n*.log\nbuild/\n")
    (tmp_path / "app.py").write_text("print('one')\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.txt").write_text("a")
    patterns = image.dockerignore_rules(tmp_path)
    before = tree_digest(tmp_path, patterns)

    (tmp_path / "build" / "out.txt").write_text("b")
    (tmp_path / "debug.log").write_text("noise")
    assert tree_digest(tmp_path, patterns) == before
    (tmp_path / "app.py").write_text("print('two')\n")
    assert tree_digest(tmp_path, patterns) != before
