"""What the random and tls test plugins share: a resource generated once and never updated.

Both real providers are Terraform providers bridged to Pulumi (pulumi-terraform-bridge), and the
resources the program uses from them have the same life, read from their Terraform schemas:

G1  Check fills in the schema's defaults (``Default:`` of each attribute).
G2  Every input is ``RequiresReplace``: any change replaces the resource, creating the new one
    before deleting the old (no ``delete_before_replace``).
G3  A preview generates nothing: every computed output is unknown.
G4  Create generates the outputs; ``Sensitive`` attributes are secret in the engine's state (the
    bridge marks them so).
G5  Delete only forgets the resource (nothing exists outside the state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pulumi.provider.experimental import provider as api

from tests.plugins import serving
from tests.plugins.values import UNKNOWN, diff_inputs, plain_map, wrap, wrap_map


class GeneratedResourceProvider(api.Provider):
    """One resource type ``TYPE`` with inputs ``DEFAULTS`` (``None``: no default) whose outputs
    ``generate`` makes; ``SECRET_OUTPUTS`` are secret."""

    TYPE: ClassVar[str]
    DEFAULTS: ClassVar[Mapping[str, Any]]
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    OUTPUTS: ClassVar[tuple[str, ...]]
    SECRET_OUTPUTS: ClassVar[tuple[str, ...]] = ()

    def generate(self, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The resource's id and computed outputs for ``inputs`` (defaults filled in)."""
        raise NotImplementedError

    async def check(self, request: api.CheckRequest) -> api.CheckResponse:
        inputs = dict(request.new_inputs)
        missing = [key for key in self.REQUIRED if inputs.get(key) is None]
        if missing:
            return api.CheckResponse(
                failures=[
                    api.CheckFailure(key, f"Missing required argument: {key}") for key in missing
                ]
            )
        for key, default in self.DEFAULTS.items():
            if default is not None and (inputs.get(key) is None or inputs[key].value is None):
                inputs[key] = wrap(default)
        return api.CheckResponse(inputs=inputs)

    async def diff(self, request: api.DiffRequest) -> api.DiffResponse:
        keys = [*self.DEFAULTS, *self.REQUIRED]
        return diff_inputs(request.old_state, request.new_inputs, keys, replace_keys=keys)

    async def create(self, request: api.CreateRequest) -> api.CreateResponse:
        if request.preview:
            unknown = {key: UNKNOWN for key in self.OUTPUTS}
            return api.CreateResponse(
                "", {**request.properties, **wrap_map(unknown, self.SECRET_OUTPUTS)}
            )
        try:
            resource_id, outputs = self.generate(plain_map(request.properties))
        except ValueError as error:
            raise serving.ProviderError(str(error)) from None
        return api.CreateResponse(
            resource_id, {**request.properties, **wrap_map(outputs, self.SECRET_OUTPUTS)}
        )

    async def delete(self, request: api.DeleteRequest) -> None:
        return None
