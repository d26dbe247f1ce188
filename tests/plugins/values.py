"""Property values of the provider protocol, as plain Python and back, and the inputs' diff.

The SDK's :class:`PropertyValue` nests: a map's values and a list's items are ``PropertyValue``
too, numbers are floats, and an unknown value (preview) is ``Computed``. The test plugins work on
plain values (:func:`plain`), keep track of which top-level keys are secret, and answer with
:func:`wrap`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi.provider.experimental import provider as api
from pulumi.provider.experimental.property_value import Computed, PropertyValue


class Unknown:
    """An input the engine does not know yet (a preview before its dependency exists)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


def plain(value: PropertyValue | None) -> Any:
    """``value`` without secrets and dependencies, ``UNKNOWN`` where it is computed."""
    if value is None:
        return None
    inner = value.value
    if isinstance(inner, Computed):
        return UNKNOWN
    if isinstance(inner, Mapping):
        return {k: plain(v) for k, v in inner.items()}
    if isinstance(inner, (list, tuple)):
        return [plain(v) for v in inner]
    return inner


def plain_map(values: Mapping[str, PropertyValue]) -> dict[str, Any]:
    return {key: plain(value) for key, value in values.items()}


def has_secret(value: PropertyValue) -> bool:
    """Whether ``value`` or any value nested in it is secret (a secret registry password inside
    an object input, say), which :func:`plain` forgets."""
    inner = value.value
    if value.is_secret:
        return True
    if isinstance(inner, Mapping):
        return any(has_secret(v) for v in inner.values())
    if isinstance(inner, (list, tuple)):
        return any(has_secret(v) for v in inner)
    return False


def is_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return False


def wrap(value: Any, secret: bool = False) -> PropertyValue:
    """A plain value as a ``PropertyValue`` (ints become the protocol's floats)."""
    if value is UNKNOWN:
        return PropertyValue.computed().with_secret(secret)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        inner: Any = value
    elif isinstance(value, (int, float)):
        inner = float(value)
    elif isinstance(value, Mapping):
        inner = {k: wrap(v) for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        inner = [wrap(v) for v in value]
    else:
        raise TypeError(f"no property value for {type(value).__name__}")
    return PropertyValue(inner, is_secret=secret)


def wrap_map(
    values: Mapping[str, Any], secret_keys: Iterable[str] = ()
) -> dict[str, PropertyValue]:
    secret = set(secret_keys)
    return {key: wrap(value, key in secret) for key, value in values.items() if value is not None}


def diff_inputs(
    old_state: Mapping[str, PropertyValue],
    new_inputs: Mapping[str, PropertyValue],
    input_keys: Iterable[str],
    replace_keys: Iterable[str],
    input_diff: bool = True,
) -> api.DiffResponse:
    """The diff of a provider that compares each input with the same key of its state: a changed
    key in ``replace_keys`` replaces the resource, any other changed input updates it.

    Secretness does not count as a change (the values are compared plain); an unknown new value
    counts as a change, as the engine's own object diff treats a computed value. ``input_diff``
    says whether the detailed diff is against the old inputs (as the provider reports it).
    """
    olds, news = plain_map(old_state), plain_map(new_inputs)
    replace = set(replace_keys)
    changed = sorted(key for key in input_keys if olds.get(key) != news.get(key))
    detailed = {}
    for key in changed:
        if key not in olds or olds[key] is None:
            kind = api.PropertyDiffKind.ADD_REPLACE if key in replace else api.PropertyDiffKind.ADD
        elif key not in news or news[key] is None:
            kind = (
                api.PropertyDiffKind.DELETE_REPLACE
                if key in replace
                else api.PropertyDiffKind.DELETE
            )
        else:
            kind = (
                api.PropertyDiffKind.UPDATE_REPLACE
                if key in replace
                else api.PropertyDiffKind.UPDATE
            )
        detailed[key] = api.PropertyDiff(kind, input_diff=input_diff)
    return api.DiffResponse(
        changes=bool(changed),
        replaces=[key for key in changed if key in replace],
        diffs=changed,
        detailed_diff=detailed,
        delete_before_replace=False,
    )
