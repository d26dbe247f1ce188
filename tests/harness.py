"""Run the real Pulumi program (``infra/__main__.py``) under Pulumi's mock runtime.

The fast unit tests (``tests/infra``) run the program through :func:`run_program`, with no
engine: it sets the stack config as a user would (``pulumi config set``), executes ``infra/``
exactly as the Python language host does (``deploy.run_program``, as ``./deploy.sh``), and
records every resource the program registers, in registration order, with its resolved inputs,
which inputs were secret, its parent, its dependencies and whether it is protected.
:class:`FakeCloud` answers with plausible outputs (the DigitalOcean API is out of reach). The
rehearsal runs the same program through the real engine instead (``tests/engine.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

# infra/ is on sys.path for the unit tests (tests/infra/conftest.py), as for the program.
import deploy

# The address range DigitalOcean gives a new VPC, as FakeCloud answers it.
VPC_RANGE = "10.114.0.0/20"
# The ed25519 host key FakeCloud's servers present on first contact.
# What `docker swarm join-token -q worker` prints on the mock manager.
MOCK_JOIN_TOKEN = "SWMTKN-1-mock0join0token"
MOCK_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKeyOfTheServer"
# What an unknown value (known only after `pulumi up`) looks like in recorded inputs.
UNKNOWN = rpc.UNKNOWN
_SECRET_KEY = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig


@dataclass
class Recorded:
    """One resource as the program registered it."""

    urn: str
    type: str
    name: str
    parent: str
    inputs: dict[str, Any]
    secret_paths: set[str]
    dependencies: list[str]
    protect: bool
    additional_secret_outputs: list[str]
    id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProgramRun:
    """Everything one run of the program declared."""

    resources: list[Recorded]
    exports: dict[str, Any]
    secret_exports: set[str]

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Recorded:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def index(self, name: str) -> int:
        return next(i for i, r in enumerate(self.resources) if r.name == name)


def _secret_paths(value: Any, path: str = "") -> set[str]:
    """Dotted paths of the secret values inside a serialized property struct."""
    found: set[str] = set()
    if isinstance(value, dict):
        if value.get(_SECRET_KEY) == _SECRET_SIG:
            return {path}
        for key, inner in value.items():
            found |= _secret_paths(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found |= _secret_paths(inner, f"{path}[{i}]")
    return found


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, keeping the whole registration request of every resource."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.recorded: list[Recorded] = []

    def RegisterResource(self, request):
        """The mock monitor's registration, plus a record, plus the engine's secret marking.

        The real engine marks ``additionalSecretOutputs`` (a generated password's ``result``)
        as secret; the plain mock monitor does not, so tests could not see a leak. Here it does.
        """
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        raw_inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        inputs = _plain(raw_inputs)
        resource_id, state = self.mocks.new_resource(
            pulumi_mocks.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=_unwrap(raw_inputs),
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
            )
        )
        secret_outputs = set(request.additionalSecretOutputs) | _secret_paths(raw_inputs)
        marked = {
            k: pulumi.Output.secret(v) if k in secret_outputs else v for k, v in state.items()
        }
        obj_proto = _sync_await(rpc.serialize_properties(marked, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        self.recorded.append(
            Recorded(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                inputs=inputs,
                secret_paths=_secret_paths(raw_inputs),
                dependencies=list(request.dependencies),
                protect=bool(request.protect),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                id=resource_id,
                outputs=dict(state),
            )
        )
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj_proto)


def _unwrap(value: Any) -> Any:
    """Deserialized properties with secret wrappers removed (unknowns kept)."""
    if isinstance(value, dict):
        if value.get(_SECRET_KEY) == _SECRET_SIG:
            return _unwrap(value["value"])
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Like :func:`_unwrap`, with unknowns as the :data:`UNKNOWN` string, for comparing runs."""
    value = _unwrap(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.output.Unknown):
        return UNKNOWN
    return value


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class FakeCloud(pulumi_mocks.Mocks):
    """Plausible provider answers for unit tests; nothing is created anywhere.

    In preview mode it returns the inputs only, so every computed output stays unknown, as it is
    in ``pulumi preview`` before anything exists.
    """

    def __init__(self, preview: bool = False):
        self.preview = preview

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        inputs = dict(args.inputs)
        # DigitalOcean ids are numbers; attachments parse them with int().
        resource_id = str(int(_digest(args.typ, args.name)[:8], 16))
        if self.preview:
            return resource_id, inputs
        return resource_id, {**inputs, **self.computed_outputs(args)}

    def computed_outputs(self, args: pulumi_mocks.MockResourceArgs) -> dict[str, Any]:
        t, inputs = args.typ, args.inputs
        if t == "digitalocean:index/droplet:Droplet":
            # The manager, or worker N (its name ends in -worker-N).
            n = int(args.name.rsplit("-worker-", 1)[1]) if "-worker-" in args.name else 0
            return {
                "ipv4Address": f"203.0.113.{30 + n}" if n else "203.0.113.10",
                "ipv4AddressPrivate": f"10.114.0.{2 + n}",
                "dropletUrn": f"do:droplet:{args.name}",
            }
        if t == "digitalocean:index/reservedIp:ReservedIp":
            return {"ipAddress": "203.0.113.20", "reservedIpUrn": f"do:reservedip:{args.name}"}
        if t == "digitalocean:index/volume:Volume":
            return {"volumeUrn": f"do:volume:{args.name}"}
        if t == "digitalocean:index/vpc:Vpc":
            return {"ipRange": VPC_RANGE}
        if t == "tls:index/privateKey:PrivateKey":
            return {
                "publicKeyOpenssh": f"ssh-ed25519 AAAAC3Nza-mock-{args.name}\n",
                "privateKeyOpenssh": f"-----BEGIN OPENSSH PRIVATE KEY-----\nmock-{args.name}\n",
                "privateKeyPem": f"-----BEGIN PRIVATE KEY-----\nmock-{args.name}\n",
            }
        if t.startswith("random:"):
            return {"result": f"mock-{args.name}-{_digest(inputs)[:12]}"}
        if t == "docker:index/image:Image":
            name = inputs.get("imageName", "")
            repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            return {"repoDigest": f"{repo}@sha256:{_digest(inputs)}"}
        if t == "command:remote:Command" and args.name.endswith("-host-key"):
            return {"stdout": MOCK_HOST_KEY, "stderr": ""}
        if t == "command:remote:Command" and args.name.endswith("-join-token"):
            return {"stdout": MOCK_JOIN_TOKEN + "\n", "stderr": ""}
        if t == "command:remote:Command" and args.name.endswith("-join"):
            return {"stdout": f"mock-node-{args.name.removesuffix('-join')}\n", "stderr": ""}
        if t == "command:remote:Command":
            return {"stdout": "", "stderr": ""}
        return {}

    def call(self, args: pulumi_mocks.MockCallArgs):
        return {}, None


def _forget_copies_of(error: BaseException) -> None:
    """Keep asyncio from printing ``error`` again for every resource that was waiting on it.

    When one resource fails, Pulumi's runtime re-raises the same exception in the futures of
    everything that depended on it; only the first is awaited, and the others would each be
    logged at garbage collection as "Future exception was never retrieved", long after the test
    that expected the failure has reported it. Any other unretrieved exception is still logged.
    """
    loop = _ensure_event_loop()
    previous = loop.get_exception_handler()

    def handler(loop, context):
        if context.get("exception") is error:
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def stack_config(values: Mapping[str, Any]) -> dict[str, str]:
    """``pulumi config set`` equivalents: project-qualified keys, objects as JSON text."""
    return {
        f"{deploy.PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
    }


def run_program(
    config: Mapping[str, Any],
    secret_keys: Iterable[str] = (),
    mocks: pulumi_mocks.Mocks | None = None,
    preview: bool = False,
    stack: str = "test",
) -> ProgramRun:
    """Run ``infra/__main__.py`` once under mocks and return what it declared.

    ``config`` maps plain keys (``"events"``) to values; ``secret_keys`` names those set with
    ``--secret``. Exceptions raised by the program (a config error, say) propagate.
    """
    mocks = mocks or FakeCloud(preview=preview)
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=deploy.PROJECT, stack=stack, preview=preview, monitor=monitor
    )
    pulumi.runtime.set_all_config(
        stack_config(config), secret_keys=[f"{deploy.PROJECT}:{k}" for k in secret_keys]
    )
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    exports: dict[str, Any] = {}
    secret_exports: set[str] = set()

    async def resolve_exports() -> None:
        root = settings.get_root_resource()
        for name, value in root.outputs.items():
            output = pulumi.Output.from_input(value)
            exports[name] = _plain(await output.future(with_unknowns=True))
            if await output.is_secret():
                secret_exports.add(name)

    def program():
        deploy.run_program()
        return resolve_exports()

    try:
        _sync_await(run_pulumi_func(program))
    except Exception as error:
        _forget_copies_of(error)
        raise
    return ProgramRun(
        resources=list(monitor.recorded), exports=exports, secret_exports=secret_exports
    )
