"""Test plugin: stands in for ``pulumi-resource-random`` 4.21.4, resource ``RandomPassword``.

pulumi-random bridges hashicorp/terraform-provider-random; requirements.txt's 4.21.4 builds on its
commit ``f8d869dc98d9`` (pulumi/pulumi-random ``provider/go.mod``). The rules, read there, beside
the shared ones of ``generated.py`` (G1-G5):

R1  Defaults: ``special``, ``upper``, ``lower``, ``numeric`` true; ``minUpper``, ``minLower``,
    ``minNumeric``, ``minSpecial`` 0 (``internal/provider/resource_password.go``, the schema's
    ``Default:``). Every attribute is ``RequiresReplace`` (G2).
R2  The result (``internal/random/string.go`` ``CreateString``): the character set is upper, lower,
    digits and the specials ``!@#$%&*()-_=+[]{}<>:?`` (or ``overrideSpecial``), each where
    enabled; first ``min*`` characters of each class, then the rest from the whole set, then
    shuffled; all from a cryptographic source. An empty set fails with ``the character set
    specified is empty``.
R3  ``result`` and ``bcryptHash`` are ``Sensitive``: secret in the state. ``bcryptHash`` is bcrypt
    of the first 72 bytes of the result (``generateHash``); the id is ``none``.

Not modelled, because the program does not use them: ``RandomString`` and the other resources,
``keepers`` semantics beyond G2, the length validators (the program's lengths are constants).
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

import bcrypt

from tests.plugins import serving
from tests.plugins.generated import GeneratedResourceProvider
from tests.plugins.install import pinned_versions

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
SPECIALS = "!@#$%&*()-_=+[]{}<>:?"


def random_string(params: dict[str, Any]) -> str:
    """R2: the result for checked inputs ``params``."""
    specials = params.get("overrideSpecial") or SPECIALS
    classes = [
        (UPPER, params["upper"], params["minUpper"]),
        (LOWER, params["lower"], params["minLower"]),
        (DIGITS, params["numeric"], params["minNumeric"]),
        (specials, params["special"], params["minSpecial"]),
    ]
    chars = "".join(text for text, enabled, _ in classes if enabled)
    if not chars:
        raise ValueError("the character set specified is empty")
    result = [secrets.choice(text) for text, _, minimum in classes for _ in range(int(minimum))]
    result += [secrets.choice(chars) for _ in range(int(params["length"]) - len(result))]
    secrets.SystemRandom().shuffle(result)
    return "".join(result)


class RandomPasswordProvider(GeneratedResourceProvider):
    TYPE = "random:index/randomPassword:RandomPassword"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "special": True,
        "upper": True,
        "lower": True,
        "numeric": True,
        "minUpper": 0,
        "minLower": 0,
        "minNumeric": 0,
        "minSpecial": 0,
        "overrideSpecial": None,
        "keepers": None,
    }
    REQUIRED = ("length",)
    OUTPUTS = ("result", "bcryptHash")
    SECRET_OUTPUTS = OUTPUTS

    def generate(self, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        result = random_string(inputs)
        digest = bcrypt.hashpw(
            result.encode()[:72], bcrypt.gensalt(rounds=10)
        ).decode()  # Go DefaultCost
        return "none", {"result": result, "bcryptHash": digest}


if __name__ == "__main__":
    serving.serve("random", pinned_versions()["random"], RandomPasswordProvider())
