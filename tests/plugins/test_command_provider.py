"""Conformance of the command test plugin: each rule C1-C8 of ``command_provider.py``, through
the real engine, against a Debian box over SSH."""

from __future__ import annotations

import json
import re

import pytest
from pulumi_command import remote

from local.box import free_loopback_port
from tests.engine import EngineRunError
from tests.plugins.command_provider import go_quote

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine's state marks a secret value


@pytest.fixture
def commands(tiny_stack, plugin_box):
    """``commands(spec)``: a stack whose program declares one ``remote.Command`` per entry of
    ``spec`` (name -> keyword arguments, without ``connection``), read anew at every run; the
    connection reaches the box (``spec`` may hold a ``"connection"`` to override fields)."""

    def make(spec: dict[str, dict]):
        def program() -> None:
            for name, kwargs in spec.items():
                kwargs = dict(kwargs)
                extra = kwargs.pop("connection", {})
                connection = remote.ConnectionArgs(
                    **{
                        "host": "127.0.0.1",
                        "port": plugin_box.ssh_port,
                        "private_key": plugin_box.private_key,
                        **extra,
                    }
                )
                opts = kwargs.pop("opts", None)
                remote.Command(name, connection=connection, opts=opts, **kwargs)

        return tiny_stack(program)

    return make


def box_file(box, path: str) -> str | None:
    result = box.ssh(f"cat {path}")
    return result.stdout if result.status == 0 else None


def test_c1_connection_defaults_and_secret(commands, plugin_box):
    stack = commands({"c1": {"create": "true"}})
    stack.up()
    shown = stack.resource("c1", show_secrets=True)
    connection = json.loads(shown["outputs"]["connection"]["plaintext"])
    assert (connection["user"], connection["dialErrorLimit"], connection["perDialTimeout"]) == (
        "root",
        10,
        15,
    )
    hidden = stack.resource("c1")
    assert hidden["outputs"]["connection"][SECRET_SIG]  # the whole connection is a secret
    assert hidden["inputs"]["connection"][SECRET_SIG]
    assert plugin_box.private_key not in str(stack.export())


def test_c2_create_change_updates_and_trigger_change_replaces_create_first(commands, plugin_box):
    log = "/root/c2.log"
    spec = {
        "c2": {
            "create": f"echo create-1 >> {log}",
            "delete": f"echo delete >> {log}",
            "triggers": ["a"],
        }
    }
    stack = commands(spec)
    stack.up()
    spec["c2"]["create"] = f"echo create-2 >> {log}"
    assert stack.up().ran() == [("c2", "update")]
    spec["c2"]["triggers"] = ["b"]
    run = stack.up()
    assert [op for _, op in run.ran()] == ["create-replacement", "replace", "delete-replaced"]
    # The replacement's create ran before the old instance's delete.
    assert box_file(plugin_box, log) == "create-1\ncreate-2\ncreate-2\ndelete\n"


def test_c3_preview_runs_nothing_and_id_is_name_and_hex(commands, plugin_box):
    marker = "/root/c3.marker"
    stack = commands({"c3": {"create": f"touch {marker}"}})
    preview = stack.preview()
    assert [op for _, op in preview.ran()] == ["create"]
    assert box_file(plugin_box, marker) is None
    stack.up()
    assert box_file(plugin_box, marker) == ""
    assert re.fullmatch(r"c3[0-9a-f]{8}", stack.resource("c3")["id"])


def test_c4_streams_stdin_logging_and_failure_text(commands):
    spec = {
        "logged": {
            "create": "cat; echo to-stderr >&2; printf 'last\\n\\n'",
            "stdin": "from-stdin\n",
        },
        "quiet": {"create": "echo quiet-line", "logging": remote.Logging.NONE},
    }
    stack = commands(spec)
    run = stack.up()
    outputs = stack.resource("logged")["outputs"]
    assert outputs["stdout"] == "from-stdin\nlast\n"  # one trailing newline cut
    assert outputs["stderr"] == "to-stderr"
    messages = [d.message.strip() for d in run.diagnostics]
    assert "from-stdin" in messages and "to-stderr" in messages
    assert "quiet-line" not in messages
    failing = 'echo out; echo "err"\t>&2; exit 3'
    spec["failing"] = {"create": failing}
    with pytest.raises(EngineRunError) as failed:
        stack.up()
    expected = f"Process exited with status 3: running {go_quote(failing)}:\nout\nerr\n"
    errors = [d.message for d in failed.value.diagnostics if d.severity == "error"]
    assert any(expected in message for message in errors), errors


def test_c4_previous_output_in_env_refused_by_sshd_is_a_warning(commands, plugin_box):
    spec = {"env": {"create": "echo previous", "update": "echo next > /root/c4-env"}}
    stack = commands(spec)
    stack.up()
    spec["env"]["update"] = "echo next-2 > /root/c4-env"
    run = stack.up()
    warnings = [d.message for d in run.diagnostics if d.severity == "warning"]
    assert any("Unable to set 'PULUMI_COMMAND_STDOUT'" in w for w in warnings), warnings
    assert box_file(plugin_box, "/root/c4-env") == "next-2\n"  # the command ran on
    spec["env"]["add_previous_output_in_env"] = False
    spec["env"]["update"] = "echo next-3 > /root/c4-env"
    run = stack.up()
    assert not [d for d in run.diagnostics if "PULUMI_COMMAND" in d.message]


def test_c5_update_runs_new_update_with_new_stdin_and_a_failure_keeps_old_state(
    commands, plugin_box
):
    spec = {"c5": {"create": "cat > /root/c5", "update": "cat > /root/c5-update", "stdin": "1"}}
    stack = commands(spec)
    stack.up()
    spec["c5"]["stdin"] = "2"
    stack.up()
    assert (box_file(plugin_box, "/root/c5"), box_file(plugin_box, "/root/c5-update")) == ("1", "2")
    spec["c5"]["update"] = "exit 1"
    with pytest.raises(EngineRunError):
        stack.up()
    assert stack.resource("c5")["inputs"]["update"] == "cat > /root/c5-update"
    spec["c5"]["update"] = "cat > /root/c5-fixed"
    assert stack.up().ran() == [("c5", "update")]  # diffed against the old state again
    assert box_file(plugin_box, "/root/c5-fixed") == "2"


def test_c6_delete_runs_the_stored_delete_with_the_stored_stdin(commands, plugin_box):
    spec = {"c6": {"create": "true", "delete": "cat > /root/c6-deleted", "stdin": "stored"}}
    stack = commands(spec)
    stack.up()
    del spec["c6"]
    assert stack.up().ran() == [("c6", "delete")]
    assert box_file(plugin_box, "/root/c6-deleted") == "stored"


def test_c7_failed_create_leaves_nothing_and_is_created_next_time(commands, plugin_box):
    spec = {"c7": {"create": "test -e /root/c7-ok && touch /root/c7-done"}}
    stack = commands(spec)
    with pytest.raises(EngineRunError) as failed:
        stack.up()
    assert "c7" in failed.value.failed_steps()
    assert [r for r in stack.resources() if r["type"] == "command:remote:Command"] == []
    plugin_box.check("touch /root/c7-ok")
    assert stack.up().ran() == [("c7", "create")]
    assert box_file(plugin_box, "/root/c7-done") == ""


def test_c8_host_key_pinning(commands, plugin_box):
    host_key = plugin_box.check("cat /etc/ssh/ssh_host_ed25519_key.pub").strip()
    stack = commands({"pinned": {"create": "true", "connection": {"host_key": host_key}}})
    stack.up()
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    stack = commands(
        {"wrong": {"create": "true", "connection": {"host_key": other, "dial_error_limit": 0}}}
    )
    with pytest.raises(EngineRunError) as failed:
        stack.up()
    assert "after 0 failed attempts: ssh: handshake failed: ssh: host key mismatch" in (
        failed.value.text
    )


def test_c8_dial_retries_then_names_the_last_error(commands):
    port = free_loopback_port()  # nothing listens there
    stack = commands(
        {"c8": {"create": "true", "connection": {"port": port, "dial_error_limit": 2}}}
    )
    with pytest.raises(EngineRunError) as failed:
        stack.up()
    assert (
        f"after 2 failed attempts: dial tcp 127.0.0.1:{port}: connect: connection refused"
        in failed.value.text
    )
    retries = [d.message.strip() for d in failed.value.diagnostics]
    assert "Dial 1/2 failed: retrying" in retries and "Dial 2/2 failed: retrying" in retries


def test_go_quote_matches_go_strconv_quote():
    # Expected texts as Go's fmt.Sprintf("%q", ...) prints them (Go spec: strconv.Quote).
    assert go_quote('a "b"\n\tc\\') == '"a \\"b\\"\\n\\tc\\\\"'
    assert go_quote("é\x1b") == '"é\\x1b"'
