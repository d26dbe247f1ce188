"""The replay engine: ``pulumi up`` without the Pulumi engine, executing what the program declares.

:class:`ReplayCloud` is a set of Pulumi mocks whose ``new_resource`` carries each resource out for
real at the moment the program registers it. Registration happens only once every input and
``depends_on`` of a resource has resolved, that is once the resources it depends on have been
carried out, so the order respects dependencies (independent resources run in parallel, as under
the engine). A state file (resource key -> inputs, outputs) gives a second converge the engine's
update semantics; see :meth:`ReplayCloud.new_resource`. Nothing here knows any of the program's
scripts: it only runs the strings the program declared.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import string
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import bcrypt
import paramiko
import pulumi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pulumi.runtime import mocks as pulumi_mocks

import image
from image import DockerignoreRules
from tests import harness
from tests.rehearsal.box import run_over, ssh_connect

COMMAND = "command:remote:Command"
COPY_TO_REMOTE = "command:remote:CopyToRemote"
IMAGE = "docker:index/image:Image"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
OUTPUT_TAIL_LINES = 40


class ReplayError(RuntimeError):
    """A resource could not be carried out (what `pulumi up` would print as its error)."""


@dataclass
class Execution:
    """One command run on the box: which resource, which of its commands, and what it printed."""

    key: str
    action: str  # create | update | delete
    command: str
    status: int
    stdout: str
    stderr: str
    logging: str


@dataclass
class StoredResource:
    key: str
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    # A command whose create failed: the engine keeps it (the provider returns its id with the
    # error) and runs it again as an update on the next `up`.
    failed: bool = False


def canonical(value: Any) -> Any:
    """Inputs as JSON-comparable data; assets and archives by their content."""
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        path = Path(str(value.path))
        return {"asset": type(value).__name__, "path": str(path), "sha256": tree_digest(path)}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": "StringAsset", "sha256": hashlib.sha256(value.text.encode()).hexdigest()}
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        raise ReplayError(f"cannot replay an asset of type {type(value).__name__}")
    if isinstance(value, pulumi.output.Unknown):
        raise ReplayError(
            "an input is still unknown at registration: the program used a value "
            "that only exists after `up` where the engine needs it before"
        )
    if isinstance(value, Mapping):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def tree_digest(path: Path, ignore: DockerignoreRules | None = None) -> str:
    """Content hash of a file or of every file under a directory (names and bytes), leaving out
    the paths ``ignore`` excludes (``image.dockerignore_rules``)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        relative = file.relative_to(path).as_posix()
        if "__pycache__" in file.parts or (ignore and image.is_excluded(relative, ignore)):
            continue
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


class ReplayState:
    """The stack state: resources in registration order, saved after every change."""

    def __init__(self, path: Path):
        self.path = path
        self.resources: dict[str, StoredResource] = {}
        if path.exists():
            for item in json.loads(path.read_text()):
                self.resources[item["key"]] = StoredResource(**item)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in self.resources.values()], indent=1))
        tmp.chmod(0o600)
        tmp.replace(self.path)


class ReplayCloud(pulumi_mocks.Mocks):
    """Mocks that execute each registered resource against the box and the registry.

    Per resource, against the stored state:
    - new: create (a command's ``create``, an image build and push, a generated value);
    - inputs unchanged: nothing runs, the stored outputs are returned;
    - a command replaced (its ``triggers`` changed, or named in ``replace``, as
      ``pulumi up --replace``): in the engine's order, the new instance's ``create`` now and the
      old instance's ``delete`` after the program (:meth:`delete_replaced`);
    - a command whose other inputs changed, or whose create failed last time: its ``update`` if
      set, else its ``create``;
    - an image whose inputs or build context changed: build and push again;
    - generated values and keys whose inputs changed: generated anew (they are replaced).
    Resources the program no longer declares are deleted by :meth:`delete_missing`.
    ``rerun_commands`` runs every command again even when unchanged, as an update (its
    ``update`` if set, else its ``create``), as when a new version changed every step.
    Not modelled: a replacement whose create fails (the engine keeps both instances).
    """

    def __init__(
        self,
        state_path: Path,
        work_dir: Path,
        rerun_commands: bool = False,
        replace: Iterable[str] = (),
    ):
        self.state = ReplayState(state_path)
        self.work_dir = work_dir
        self.rerun_commands = rerun_commands
        self.replace = set(replace)
        # The old instances of replaced commands, whose deletes run after the program.
        self.replaced: list[StoredResource] = []
        self.seen: list[str] = []
        self.executions: list[Execution] = []
        self.builds: list[str] = []
        self.lock = threading.Lock()

    # -- Pulumi mock interface -------------------------------------------------------------

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        key = f"{args.typ}::{args.name}"
        with self.lock:
            if key in self.seen:
                raise ReplayError(f"two resources of type {args.typ} named {args.name!r}")
            self.seen.append(key)
        if not args.custom or args.typ.startswith("pulumi:providers:"):
            return "", {}
        inputs = canonical(args.inputs)
        if args.typ == IMAGE:
            # pulumi-docker diffs the build context's content (what .dockerignore leaves of it),
            # not just its path.
            context, dockerfile = image_paths(args.inputs)
            inputs["contextDigest"] = tree_digest(
                context, image.dockerignore_rules(context)
            ) + tree_digest(dockerfile)
        stored = self.state.resources.get(key)
        if (
            stored is not None
            and stored.inputs == inputs
            and not stored.failed
            and not self._forced(args.typ)
            and args.name not in self.replace
        ):
            outputs = stored.outputs
        else:
            try:
                outputs = self._carry_out(key, args, inputs, stored)
            except ReplayError:
                if stored is None and args.typ == COMMAND:
                    with self.lock:
                        failed = StoredResource(key, args.typ, args.name, inputs, {}, failed=True)
                        self.state.resources[key] = failed
                        self.state.save()
                raise
            with self.lock:
                stored = StoredResource(key, args.typ, args.name, inputs, outputs)
                self.state.resources[key] = stored
                self.state.save()
        resource_id = outputs.get("id") or hashlib.sha256(key.encode()).hexdigest()[:16]
        return resource_id, {**args.inputs, **outputs}

    def call(self, args: pulumi_mocks.MockCallArgs):
        raise ReplayError(f"the rehearsal cannot replay the invoke {args.token}")

    # -- Engine steps ----------------------------------------------------------------------

    def _forced(self, type_: str) -> bool:
        return self.rerun_commands and type_ == COMMAND

    def _carry_out(self, key: str, args, inputs: dict, stored: StoredResource | None) -> dict:
        t = args.typ
        if t == COMMAND:
            return self._command(key, args.name, inputs, stored)
        if t == COPY_TO_REMOTE:
            return self._copy_to_remote(key, args.inputs)
        if t == IMAGE:
            return self._image(key, args.inputs)
        if t.startswith("random:"):
            return generate_random(t, args.inputs)
        if t == PRIVATE_KEY:
            return generate_private_key(args.inputs)
        if t.startswith("digitalocean:"):
            raise ReplayError(f"{key}: an `existing` target must not create DigitalOcean resources")
        raise ReplayError(f"{key}: the rehearsal does not know how to replay type {t}")

    def _command(self, key: str, name: str, inputs: dict, stored: StoredResource | None) -> dict:
        if inputs.get("environment"):
            raise ReplayError(
                f"{key}: `environment` is sent with SSH setenv, which sshd rejects unless the "
                "names are in its AcceptEnv (pass values in the script text or on stdin)"
            )
        if stored is None:
            action = "create"
        elif name in self.replace or stored.inputs.get("triggers") != inputs.get("triggers"):
            action = "create"
            with self.lock:
                self.replaced.append(stored)
        else:
            action = "update" if inputs.get("update") else "create"
        result = self.run_command(key, action, inputs)
        # pulumi-command drops the one trailing newline of each stream.
        return {
            "stdout": result.stdout.removesuffix("\n"),
            "stderr": result.stderr.removesuffix("\n"),
        }

    @staticmethod
    def _connect(key: str, action: str, conn: Mapping[str, Any]) -> paramiko.SSHClient:
        """Log in with the resource's ``connection``, checking its ``hostKey`` if it has one."""
        try:
            return ssh_connect(
                conn["host"], int(conn.get("port") or 22), conn.get("user") or "root",
                conn["privateKey"], conn.get("hostKey"),
            )  # fmt: skip
        except paramiko.BadHostKeyException as error:
            # The provider's words (golang.org/x/crypto/ssh FixedHostKey), then paramiko's.
            raise ReplayError(f"{key} ({action}): ssh: host key mismatch: {error}") from error

    def run_command(self, key: str, action: str, inputs: Mapping[str, Any]) -> Execution:
        conn = inputs["connection"]
        command = inputs[action]
        result = run_over(self._connect(key, action, conn), command, stdin=inputs.get("stdin"))
        execution = Execution(
            key, action, command, result.status, result.stdout, result.stderr,
            inputs.get("logging") or "stdoutAndStderr",
        )  # fmt: skip
        with self.lock:
            self.executions.append(execution)
        if result.status != 0:
            # The provider's own words (remote/commandOutputs.go): the command text quoted as
            # Go's %q does, then the output of both streams as it came.
            raise ReplayError(
                f"{key} ({action}): Process exited with status {result.status}: "
                f"running {json.dumps(command, ensure_ascii=False)}:\n{result.output}"
            )
        return execution

    def _copy_to_remote(self, key: str, inputs: Mapping[str, Any]) -> dict:
        conn = inputs["connection"]
        source = Path(str(inputs["source"].path))
        remote = inputs["remotePath"]
        client = self._connect(key, "copy", conn)
        try:
            sftp = client.open_sftp()
            if source.is_file():
                sftp.put(str(source), remote)
            else:
                for path in sorted(source.rglob("*")):
                    target = f"{remote}/{path.relative_to(source)}"
                    if path.is_dir():
                        sftp.mkdir(target)
                    else:
                        sftp.put(str(path), target)
        finally:
            client.close()
        return {}

    def _image(self, key: str, inputs: Mapping[str, Any]) -> dict:
        build = inputs.get("build") or {}
        context, dockerfile = image_paths(inputs)
        image_name = inputs["imageName"]
        argv = ["docker", "build", "-q", "-t", image_name, "-f", str(dockerfile)]
        for name, value in sorted((build.get("args") or {}).items()):
            argv += ["--build-arg", f"{name}={value}"]
        if build.get("platform"):
            argv += ["--platform", build["platform"]]
        if build.get("target"):
            argv += ["--target", build["target"]]
        argv.append(str(context))
        self._docker(key, argv)
        with self.lock:
            self.builds.append(image_name)
        registry = inputs.get("registry") or {}
        if inputs.get("skipPush"):
            return {"imageName": image_name, "repoDigest": ""}
        with tempfile.TemporaryDirectory(prefix="rehearsal-docker-config-") as config_dir:
            if registry.get("username"):
                self._docker(
                    key,
                    ["docker", "--config", config_dir, "login", registry["server"],
                     "-u", registry["username"], "--password-stdin"],
                    stdin=registry["password"],
                )  # fmt: skip
            self._docker(key, ["docker", "--config", config_dir, "push", image_name])
        repository = image_name
        if ":" in image_name.rsplit("/", 1)[-1]:
            repository = image_name.rsplit(":", 1)[0]
        digests = json.loads(
            self._docker(key, ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}",
                               image_name])
        )  # fmt: skip
        repo_digest = next((d for d in digests if d.startswith(repository + "@")), None)
        if repo_digest is None:
            raise ReplayError(f"{key}: pushed {image_name} but found no digest in {digests}")
        return {
            "imageName": image_name,
            "repoDigest": repo_digest,
            "registryServer": registry.get("server", ""),
            "baseImageName": image_name,
        }

    def _docker(self, key: str, argv: list[str], stdin: str | None = None) -> str:
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise ReplayError(
                f"{key}: {' '.join(argv[:3])} ... exited {done.returncode}\n{tail(done.stderr)}"
            )
        return done.stdout

    # -- After the program -----------------------------------------------------------------

    def delete_replaced(self) -> list[str]:
        """The old instances' deletes, after their replacements were created, newest first."""
        done = [stored.key for stored in reversed(self.replaced)]
        for stored in reversed(self.replaced):
            self._undo(stored.key, stored)
        self.replaced = []
        return done

    def delete_missing(self) -> list[str]:
        """Delete what the state holds and this run did not declare, newest first."""
        gone = [k for k in self.state.resources if k not in self.seen]
        self.delete(reversed(gone))
        return gone

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._undo(key, self.state.resources[key])
            del self.state.resources[key]
            self.state.save()

    def _undo(self, key: str, stored: StoredResource) -> None:
        """A resource's delete: a command's ``delete`` runs; other resources have nothing."""
        if stored.type == COMMAND and stored.inputs.get("delete"):
            self.run_command(key, "delete", stored.inputs)

    def destroy(self) -> None:
        """`pulumi destroy`: every resource's delete, in reverse registration order."""
        self.delete(reversed(list(self.state.resources)))


def image_paths(inputs: Mapping[str, Any]) -> tuple[Path, Path]:
    """Build context and Dockerfile; relative paths start at the program's working directory."""
    build = inputs.get("build") or {}
    context = Path(build.get("context", ".")).resolve()
    dockerfile = Path(build.get("dockerfile") or context / "Dockerfile")
    if not dockerfile.is_absolute():
        dockerfile = dockerfile.resolve() if dockerfile.exists() else context / dockerfile
    return context, dockerfile


def generate_random(type_: str, inputs: Mapping[str, Any]) -> dict:
    """What pulumi-random computes, with a real CSPRNG."""
    kind = type_.rsplit(":", 1)[-1]
    if kind in ("RandomPassword", "RandomString"):
        result = random_string(inputs)
        outputs = {"result": result}
        if kind == "RandomPassword":
            outputs["bcryptHash"] = bcrypt.hashpw(result.encode(), bcrypt.gensalt()).decode()
        return outputs
    if kind == "RandomId":
        raw = secrets.token_bytes(int(inputs["byteLength"]))
        b64url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return {
            "hex": raw.hex(),
            "b64Url": inputs.get("prefix", "") + b64url,
            "b64Std": inputs.get("prefix", "") + base64.b64encode(raw).decode(),
            "dec": inputs.get("prefix", "") + str(int.from_bytes(raw, "big")),
            "id": b64url,
        }
    if kind == "RandomUuid":
        return {"result": str(uuid.uuid4())}
    if kind == "RandomInteger":
        low, high = int(inputs["min"]), int(inputs["max"])
        return {"result": low + secrets.randbelow(high - low + 1)}
    raise ReplayError(f"the rehearsal does not know how to generate {type_}")


def random_string(inputs: Mapping[str, Any]) -> str:
    """pulumi-random's string rules: class switches, minimum counts, overrideSpecial."""
    classes = {
        "upper": (string.ascii_uppercase, inputs.get("upper", True), inputs.get("minUpper", 0)),
        "lower": (string.ascii_lowercase, inputs.get("lower", True), inputs.get("minLower", 0)),
        "numeric": (
            string.digits,
            inputs.get("numeric", inputs.get("number", True)),
            inputs.get("minNumeric", 0),
        ),
        "special": (
            inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?",
            inputs.get("special", True),
            inputs.get("minSpecial", 0),
        ),
    }
    rng = secrets.SystemRandom()
    chosen = [
        c
        for chars, on, minimum in classes.values()
        if on
        for c in rng.choices(chars, k=int(minimum))
    ]
    pool = "".join(chars for chars, on, _ in classes.values() if on)
    length = int(inputs["length"])
    chosen += rng.choices(pool, k=max(0, length - len(chosen)))
    rng.shuffle(chosen)
    return "".join(chosen[:length])


def generate_private_key(inputs: Mapping[str, Any]) -> dict:
    """What pulumi-tls's PrivateKey computes."""
    algorithm = inputs.get("algorithm", "RSA")
    if algorithm == "RSA":
        key = rsa.generate_private_key(65537, int(inputs.get("rsaBits", 2048)))
        legacy = serialization.PrivateFormat.TraditionalOpenSSL
    elif algorithm == "ECDSA":
        curves = {
            "P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1
        }  # fmt: skip
        key = ec.generate_private_key(curves[inputs.get("ecdsaCurve", "P224")]())
        legacy = serialization.PrivateFormat.TraditionalOpenSSL
    elif algorithm == "ED25519":
        key = ed25519.Ed25519PrivateKey.generate()
        legacy = serialization.PrivateFormat.PKCS8
    else:
        raise ReplayError(f"tls PrivateKey algorithm {algorithm!r} is not known")
    pem, none = serialization.Encoding.PEM, serialization.NoEncryption()
    formats = serialization.PrivateFormat
    public = key.public_key()
    openssh_public = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    wire = base64.b64decode(openssh_public.split()[1])
    md5 = hashlib.md5(wire, usedforsecurity=False).hexdigest()
    return {
        "privateKeyPem": key.private_bytes(pem, legacy, none).decode(),
        "privateKeyPemPkcs8": key.private_bytes(pem, formats.PKCS8, none).decode(),
        "privateKeyOpenssh": key.private_bytes(pem, formats.OpenSSH, none).decode(),
        "publicKeyPem": public.public_bytes(
            pem, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyOpenssh": openssh_public.decode() + "\n",
        "publicKeyFingerprintMd5": ":".join(md5[i : i + 2] for i in range(0, 32, 2)),
        "publicKeyFingerprintSha256": "SHA256:"
        + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("="),
    }


@dataclass
class Converge:
    """One `pulumi up`: what the program declared, what ran, and how long it took."""

    program: harness.ProgramRun
    cloud: ReplayCloud
    deleted: list[str]
    seconds: float


def converge(
    config: Mapping[str, Any],
    secret_keys: Iterable[str],
    state_path: Path,
    work_dir: Path,
    rerun_commands: bool = False,
    replace: Iterable[str] = (),
) -> Converge:
    """Run the program once against the state, then delete the old instances of what it replaced
    (``replace``: resource names, as ``pulumi up --replace``) and what it no longer declares.

    Like the engine, deletions happen only after a run without errors.
    """
    cloud = ReplayCloud(state_path, work_dir, rerun_commands=rerun_commands, replace=replace)
    started = time.monotonic()
    # The engine runs the program in the project directory, where Pulumi.yaml is.
    with contextlib.chdir(harness.REPO_ROOT):
        program = harness.run_program(config, secret_keys, mocks=cloud)
        deleted = cloud.delete_replaced() + cloud.delete_missing()
    return Converge(program, cloud, deleted, time.monotonic() - started)
