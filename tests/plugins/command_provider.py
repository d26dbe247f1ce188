"""Test plugin: stands in for ``pulumi-resource-command`` 1.2.1, ``command:remote:Command``.

Only what the program uses: ``remote.Command`` over SSH with a private key. Each rule below was
read from pulumi/pulumi-command at tag ``v1.2.1`` (``provider/pkg/provider/``) and from the
library it is built on, pulumi/pulumi-go-provider ``v1.3.0`` (``infer/resource.go``), which turns
the Go structs into the provider protocol. ``tests/plugins/README.md`` lists them with their tests.

C1  Check: the connection gets the schema defaults ``user: root``, ``port: 22``,
    ``dialErrorLimit: 10``, ``perDialTimeout: 15``, and is secret (``remote/connection.go``
    ``Connection.Annotate``; ``remote/command.go`` ``CommandInputs``: ``provider:"secret"``).
C2  Diff: a change of ``triggers`` replaces (``common/inputs.go``: ``replaceOnChanges``); a
    change of any other input is an update, because the resource has ``Update``
    (go-provider ``Diff``: without ``CustomUpdate`` every change would replace). The old
    inputs are compared with the new ones; the replacement is created before the old one is
    deleted (``DeleteBeforeReplace`` is never set).
C3  Create in a preview runs nothing and answers the inputs with empty ``stdout``/``stderr``
    (``remote/commandController.go`` ``Create``: ``if preview { return ... }``; go-provider's
    encoder fills the zero values). Without ``create`` nothing runs either. The id is the
    resource name followed by 8 random hex digits (``resource.NewUniqueHex(name, 8, 0)``).
C4  Running a command (``remote/commandOutputs.go`` ``run``): dial (C8); with
    ``addPreviousOutputInEnv`` unset or true, the previous ``stdout``/``stderr``, when not
    empty, are sent as ``PULUMI_COMMAND_STDOUT``/``PULUMI_COMMAND_STDERR``; a server that
    refuses them (sshd's ``AcceptEnv``) costs a warning and the command runs on. ``stdin`` is
    sent when not empty. Each output line is logged as an ephemeral info message
    (``util.LogOutput``: ``InfoStatus``) unless ``logging`` leaves that stream out
    (``remote/logging.go``). A non-zero exit fails with ``<exit error>: running "<command, Go
    %q-quoted>":\\n<stdout and stderr as they arrived>``, where the exit error is
    ``Process exited with status N`` (golang.org/x/crypto ``ssh`` ``Waitmsg.String``). On
    success ``stdout``/``stderr`` are the streams with one trailing newline cut.
C5  Update (``remote/commandController.go`` ``Update``): a preview runs nothing and answers the
    new inputs with the old ``stdout``/``stderr``; otherwise it runs the new ``update``, or the
    new ``create`` when there is no ``update``, with the new connection, ``stdin`` and
    ``logging``, and the old outputs for C4's environment. A failure is a plain error
    (go-provider ``Update``), so the engine keeps the old state and diffs again next time.
C6  Delete (``remote/commandController.go`` ``Delete``): runs the ``delete`` stored in the state,
    with the state's connection, ``stdin``, ``logging`` and outputs; nothing without one.
C7  A failed create is a plain error (``Create`` returns ``err``, not ``ResourceInitFailedError``):
    the engine keeps nothing of it, and the next ``up`` creates it again.
C8  Dial (``remote/connection.go`` ``Dial``, ``dialWithRetry``, ``SSHConfig``): with ``hostKey``
    the server must present exactly that key, and only that key type is offered; without it any
    key is accepted. A failed dial is retried after 100 ms, growing 1.5 times to at most 5 s
    (pulumi ``sdk/go/common/util/retry/until.go`` defaults), logging ``Dial <n>/<limit> failed:
    retrying`` (ephemeral); after ``dialErrorLimit`` retries (``-1``: no limit) it fails with
    ``after <retries> failed attempts: <last error>``. Each attempt waits ``perDialTimeout``
    seconds at most.

Not modelled, because the program does not use them: ``local.Command``, ``CopyToRemote``,
``CopyFile``, proxies, password and agent authentication, ``environment``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.message import Message
from pulumi.provider.experimental import provider as api

from local.box import load_private_key
from tests.plugins import serving
from tests.plugins.install import pinned_versions
from tests.plugins.values import diff_inputs, plain_map, wrap

TYPE = "command:remote:Command"
INPUTS = (
    "triggers",
    "create",
    "update",
    "delete",
    "stdin",
    "logging",
    "connection",
    "environment",
    "addPreviousOutputInEnv",
)
CONNECTION_DEFAULTS = {"user": "root", "port": 22, "dialErrorLimit": 10, "perDialTimeout": 15}
# Where the SSH sessions run: the engine creates many steps at once, and paramiko blocks.
_pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ssh")


_SETENV_REFUSED = (
    "Unable to set '{}'. This only works if your SSH server is configured to accept\n"
    "\tthese variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the"
    " remote host, you could\n\tprefix the command itself with the variables in the form"
    " 'VAR=value command'"
)


class CommandFailed(serving.ProviderError):
    pass


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` prints it (``strconv.Quote``): printable characters stay."""
    escapes = {
        "\a": r"\a",
        "\b": r"\b",
        "\f": r"\f",
        "\n": r"\n",
        "\r": r"\r",
        "\t": r"\t",
        "\v": r"\v",
        "\\": "\\\\",
        '"': '\\"',
    }
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


# -- dialing (C8) -----------------------------------------------------------------------------


def _dial_once(connection: dict[str, Any]) -> paramiko.Transport:
    host, port = connection["host"], int(connection["port"])
    endpoint = f"{host}:{port}"
    timeout = connection["perDialTimeout"] or None
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise OSError(f"dial tcp {endpoint}: i/o timeout") from None
    except ConnectionRefusedError:
        raise OSError(f"dial tcp {endpoint}: connect: connection refused") from None
    except OSError as error:
        raise OSError(f"dial tcp {endpoint}: {error.strerror or error}") from None
    transport = paramiko.Transport(sock)
    try:
        pinned = connection.get("hostKey")
        if pinned:
            key_type, key_data = pinned.split()[:2]
            expected = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data))
            transport.get_security_options().key_types = [key_type]
        try:
            transport.start_client(timeout=timeout)
        except paramiko.SSHException as error:
            raise OSError(f"ssh: handshake failed: {error}") from None
        if pinned and transport.get_remote_server_key() != expected:
            raise OSError("ssh: handshake failed: ssh: host key mismatch")
        key = load_private_key(connection["privateKey"])
        try:
            transport.auth_publickey(connection["user"], key)
        except paramiko.AuthenticationException:
            raise OSError(
                "ssh: handshake failed: ssh: unable to authenticate, attempted methods "
                "[none publickey], no supported methods remain"
            ) from None
        return transport
    except BaseException:
        transport.close()
        raise


def dial(connection: dict[str, Any], status: Callable[[str], None]) -> paramiko.Transport:
    limit = int(connection["dialErrorLimit"])
    delay, tries = 0.1, 0
    while True:
        try:
            return _dial_once(connection)
        except OSError as error:
            dials = tries + 1
            if limit > -1 and dials > limit:
                raise CommandFailed(f"after {tries} failed attempts: {error}") from None
            status(f"Dial {dials}/{'inf' if limit == -1 else limit} failed: retrying")
        time.sleep(min(delay, 5.0))
        delay = min(delay, 5.0) * 1.5
        tries += 1


# -- one command (C4) -------------------------------------------------------------------------


def _setenv(channel: paramiko.Channel, name: str, value: str) -> None:
    """An ``env`` request that wants a reply, as Go's ``Session.Setenv`` sends it (paramiko's
    own sends none, so a refusal would pass unseen)."""
    message = Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("env")
    message.add_boolean(True)
    message.add_string(name)
    message.add_string(value)
    channel._event_pending()
    channel.transport._send_user_message(message)
    channel._wait_for_event()


class _Lines:
    """Splits a stream into lines for the log, as ``bufio.Scanner`` does."""

    def __init__(self, emit: Callable[[str], None]):
        self.emit, self.rest = emit, b""

    def feed(self, chunk: bytes) -> None:
        self.rest += chunk
        *lines, self.rest = self.rest.split(b"\n")
        for line in lines:
            self.emit(line.decode(errors="replace"))

    def close(self) -> None:
        if self.rest:
            self.emit(self.rest.decode(errors="replace"))
        self.rest = b""


def run_command(
    props: dict[str, Any], command: str, log: Callable[[str, str], None]
) -> tuple[str, str]:
    """Run ``command`` as C4 says, with ``props`` (inputs and previous outputs); ``log(severity,
    message)`` reaches the engine as an ephemeral message. Returns (stdout, stderr)."""
    connection = props["connection"]
    logging = props.get("logging")
    transport = dial(connection, lambda message: log("info", message))
    try:
        channel = transport.open_session()
        if props.get("addPreviousOutputInEnv") is None or props.get("addPreviousOutputInEnv"):
            for name, key in (
                ("PULUMI_COMMAND_STDOUT", "stdout"),
                ("PULUMI_COMMAND_STDERR", "stderr"),
            ):
                if not props.get(key):
                    continue
                try:
                    _setenv(channel, name, props[key])
                except paramiko.SSHException:
                    log("warning", _SETENV_REFUSED.format(name))
                    # paramiko closes a channel whose request failed; Go's session stays open.
                    channel = transport.open_session()
        channel.exec_command(command)
        stdin = props.get("stdin")
        if stdin:
            channel.sendall(stdin.encode())
        channel.shutdown_write()
        out, err, both = io.BytesIO(), io.BytesIO(), io.BytesIO()
        lines = _Lines(lambda line: log("info", line))
        log_out = logging in (None, "stdout", "stdoutAndStderr")
        log_err = logging in (None, "stderr", "stdoutAndStderr")
        while True:
            if channel.recv_ready():
                chunk = channel.recv(65536)
                out.write(chunk)
                logged = log_out
            elif channel.recv_stderr_ready():
                chunk = channel.recv_stderr(65536)
                err.write(chunk)
                logged = log_err
            elif channel.exit_status_ready() and (channel.eof_received or channel.closed):
                if not (channel.recv_ready() or channel.recv_stderr_ready()):
                    break
                continue
            else:
                time.sleep(0.02)
                continue
            both.write(chunk)
            if logged:
                lines.feed(chunk)
        lines.close()
        status = channel.recv_exit_status()
    finally:
        transport.close()
    if status != 0:
        reason = (
            f"Process exited with status {status}"
            if status >= 0
            else "wait: remote command exited without exit status or exit signal"
        )
        raise CommandFailed(
            f"{reason}: running {go_quote(command)}:\n{both.getvalue().decode(errors='replace')}"
        )

    def trim(stream: io.BytesIO) -> str:
        text = stream.getvalue().decode(errors="replace")
        return text[:-1] if text.endswith("\n") else text

    return trim(out), trim(err)


class CommandProvider(api.Provider):
    async def check(self, request: api.CheckRequest) -> api.CheckResponse:
        inputs = dict(request.new_inputs)
        connection = inputs.get("connection")
        if connection is not None and isinstance(connection.value, dict):
            filled = dict(connection.value)
            for key, default in CONNECTION_DEFAULTS.items():
                if filled.get(key) is None or filled[key].value is None:
                    filled[key] = wrap(default)
            inputs["connection"] = connection.with_value(filled).with_secret(True)
        elif connection is not None:
            inputs["connection"] = connection.with_secret(True)
        return api.CheckResponse(inputs=inputs)

    async def diff(self, request: api.DiffRequest) -> api.DiffResponse:
        return diff_inputs(request.old_state, request.new_inputs, INPUTS, ["triggers"])

    async def _run(self, urn: str, props: dict[str, Any], command: str) -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        sent: list[asyncio.Future] = []
        lock = threading.Lock()

        def log(severity: str, message: str) -> None:
            future = asyncio.run_coroutine_threadsafe(
                serving.log(urn, message, severity, ephemeral=severity == "info"), loop
            )
            with lock:
                sent.append(future)

        try:
            return await loop.run_in_executor(_pool, run_command, props, command, log)
        finally:
            for future in sent:
                await asyncio.wrap_future(future)

    async def create(self, request: api.CreateRequest) -> api.CreateResponse:
        inputs = plain_map(request.properties)
        resource_id = request.name + secrets.token_hex(4)
        if request.preview or inputs.get("create") is None:
            return api.CreateResponse(resource_id, self._keep_secrets(request.properties, "", ""))
        stdout, stderr = await self._run(request.urn, inputs, inputs["create"])
        return api.CreateResponse(
            resource_id, self._keep_secrets(request.properties, stdout, stderr)
        )

    async def update(self, request: api.UpdateRequest) -> api.UpdateResponse:
        olds, news = plain_map(request.olds), plain_map(request.news)
        stdout, stderr = olds.get("stdout", ""), olds.get("stderr", "")
        command = news.get("update") or news.get("create")
        if not request.preview and command is not None:
            props = {**news, "stdout": stdout, "stderr": stderr}
            stdout, stderr = await self._run(request.urn, props, command)
        return api.UpdateResponse(self._keep_secrets(request.news, stdout, stderr))

    async def delete(self, request: api.DeleteRequest) -> None:
        state = plain_map(request.properties)
        if state.get("delete") is not None:
            await self._run(request.urn, state, state["delete"])

    @staticmethod
    def _keep_secrets(inputs, stdout: str, stderr: str) -> dict:
        """The outputs: the inputs as the engine sent them (secrets and unknowns kept), and the
        streams (the engine makes them secret where ``additionalSecretOutputs`` says so)."""
        return {**inputs, "stdout": wrap(stdout), "stderr": wrap(stderr)}


if __name__ == "__main__":
    serving.serve("command", pinned_versions()["command"], CommandProvider())
