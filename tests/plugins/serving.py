"""What every test plugin shares: the start line, the gRPC server, failures and engine logs.

A test plugin stands in for a provider plugin that the test machines cannot download (see
``tests/plugins/README.md``). It is a :class:`pulumi.provider.experimental.provider.Provider`
served by :func:`serve`, which differs from the SDK's own ``server.main`` in three ways:

- it prints one line on stderr saying what it stands in for (stdout carries the port number the
  engine reads);
- a :class:`ProviderError` reaches the engine as its message alone, as a Go provider's error does,
  instead of the SDK's message followed by a Python traceback;
- a :class:`ResourceInitError` carries the ``ErrorResourceInitFailed`` detail that Go providers
  return for a resource that exists but failed to initialize (pulumi/pulumi
  ``sdk/go/common/resource/plugin/provider_server.go``, ``Create``/``Update``: the id and
  properties ride in the gRPC status details). The engine keeps such a resource in its state
  with the init error and runs ``Update`` on the next ``up``.

:func:`log` sends a diagnostic to the engine for a resource, as a Go provider's
``ctx.Log``/``p.host.Log`` does, so the engine prints it under that resource and the Automation
API delivers it as a ``DiagnosticEvent``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import grpc
from google.protobuf import any_pb2
from pulumi.provider.experimental import provider as provider_api
from pulumi.provider.experimental.property_value import Computed, PropertyValue
from pulumi.provider.experimental.server import _GRPC_CHANNEL_OPTIONS, ProviderServicer
from pulumi.runtime import rpc
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2,
    provider_pb2_grpc,
    status_pb2,  # google.rpc.Status, as the SDK registers it
)

_engine: engine_pb2_grpc.EngineStub | None = None


def _marshal_unknowns(marshal):
    """The SDK (3.272.0) unmarshals the engine's unknown values to ``Computed`` but cannot
    marshal them back (``Unsupported value type``): send them as the engine's unknown sentinel,
    which is how the engine writes them on the wire."""

    def patched(self: PropertyValue):
        if isinstance(self.value, Computed):
            return marshal(PropertyValue(rpc.UNKNOWN, self.is_secret, self.dependencies))
        return marshal(self)

    return patched


PropertyValue.marshal = _marshal_unknowns(PropertyValue.marshal)


class ProviderError(Exception):
    """A failed operation: the engine reports ``str(error)`` as the resource's error."""


class ResourceInitError(ProviderError):
    """A create or update that failed after the resource came to exist: the engine keeps
    ``resource_id`` with ``properties`` in its state, marked with the error, and retries it as an
    update on the next ``up``."""

    def __init__(
        self,
        message: str,
        resource_id: str,
        properties: dict[str, PropertyValue],
        inputs: dict[str, PropertyValue] | None = None,
    ):
        super().__init__(message)
        self.resource_id = resource_id
        self.properties = properties
        self.inputs = inputs


async def log(urn: str, message: str, severity: str = "info", ephemeral: bool = False) -> None:
    """A diagnostic for resource ``urn`` on the engine's output (no-op without an engine)."""
    if _engine is None:
        return
    level = {
        "debug": engine_pb2.DEBUG,
        "info": engine_pb2.INFO,
        "warning": engine_pb2.WARNING,
        "error": engine_pb2.ERROR,
    }[severity]
    await _engine.Log(
        engine_pb2.LogRequest(severity=level, message=message, urn=urn, ephemeral=ephemeral)
    )


async def _abort(context: grpc.aio.ServicerContext, error: ProviderError) -> Any:
    status = status_pb2.Status(code=grpc.StatusCode.UNKNOWN.value[0], message=str(error))
    if isinstance(error, ResourceInitError):
        detail = provider_pb2.ErrorResourceInitFailed(
            id=error.resource_id,
            properties=PropertyValue.marshal_map(error.properties),
            reasons=[str(error)],
            inputs=PropertyValue.marshal_map(error.inputs) if error.inputs is not None else None,
        )
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    await context.abort(grpc.StatusCode.UNKNOWN, str(error))


class _Servicer(ProviderServicer):
    """The SDK's servicer, with :class:`ProviderError` turned into plain gRPC errors."""


def _plain_errors(method_name: str):
    inner = getattr(ProviderServicer, method_name)
    # The SDK wraps each method to append a traceback to any error; call what it wraps.
    unwrapped = getattr(inner, "__wrapped__", None) or inner.__closure__[0].cell_contents

    async def method(self, request, context):
        try:
            return await unwrapped(self, request, context)
        except ProviderError as error:
            return await _abort(context, error)

    method.__name__ = method_name
    return method


for _name in ("Check", "Diff", "Create", "Update", "Delete", "Read", "CheckConfig", "Configure"):
    setattr(_Servicer, _name, _plain_errors(_name))


def serve(name: str, version: str, provider: provider_api.Provider) -> None:
    """Serve ``provider`` as the plugin ``pulumi-resource-<name>`` at ``version``."""
    global _engine
    print(
        f"test plugin: stands in for pulumi-resource-{name} {version} "
        "(tests/plugins; users get the real plugin)",
        file=sys.stderr,
        flush=True,
    )
    parser = argparse.ArgumentParser(description=f"test plugin for {name} {version}")
    parser.add_argument("engine", help="the engine's gRPC address")
    known, _ = parser.parse_known_args()

    async def run() -> None:
        global _engine
        channel = grpc.aio.insecure_channel(known.engine, options=_GRPC_CHANNEL_OPTIONS)
        _engine = engine_pb2_grpc.EngineStub(channel)
        server = grpc.aio.server(options=_GRPC_CHANNEL_OPTIONS)
        servicer = _Servicer(sys.argv[1:], version, provider, engine_address=known.engine)
        provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        await server.wait_for_termination()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
