"""Conformance of the random test plugin: rules G1-G5 (``generated.py``) and R1-R3
(``random_provider.py``), through the real engine."""

from __future__ import annotations

import json
import string

import bcrypt
import pulumi
import pulumi_random as random
import pytest

from tests.engine import EngineRunError
from tests.plugins.random_provider import SPECIALS

SECRET_SIG = "4dabf18193072939515e22adb298388d"


@pytest.fixture
def passwords(tiny_stack):
    """``passwords(spec)``: a stack with one ``RandomPassword`` per entry of ``spec`` (name ->
    keyword arguments, read anew at every run); each logs the length of its result once known."""

    def make(spec: dict[str, dict]):
        def program() -> None:
            for name, kwargs in spec.items():
                password = random.RandomPassword(name, **kwargs)
                password.result.apply(lambda v, n=name: pulumi.log.info(f"{n} known: {len(v)}"))

        return tiny_stack(program)

    return make


def revealed(stack, name: str) -> dict:
    outputs = stack.resource(name, show_secrets=True)["outputs"]
    return {
        k: json.loads(v["plaintext"]) if isinstance(v, dict) and SECRET_SIG in v else v
        for k, v in outputs.items()
    }


def known(run) -> list[str]:
    return [d.message.strip() for d in run.diagnostics if "known:" in d.message]


def test_g1_r1_defaults_in_the_state(passwords):
    stack = passwords({"p": {"length": 12}})
    stack.up()
    inputs = stack.resource("p")["inputs"]
    assert {
        k: inputs[k]
        for k in (
            "special",
            "upper",
            "lower",
            "numeric",
            "minUpper",
            "minLower",
            "minNumeric",
            "minSpecial",
        )
    } == {
        "special": True,
        "upper": True,
        "lower": True,
        "numeric": True,
        "minUpper": 0,
        "minLower": 0,
        "minNumeric": 0,
        "minSpecial": 0,
    }


def test_g3_preview_leaves_the_result_unknown(passwords):
    stack = passwords({"p": {"length": 12}})
    assert known(stack.preview()) == []
    assert known(stack.up()) == ["p known: 12"]


def test_g2_g5_a_changed_input_replaces_create_first_and_removal_forgets(passwords):
    spec = {"p": {"length": 12}}
    stack = passwords(spec)
    stack.up()
    first = revealed(stack, "p")["result"]
    spec["p"] = {"length": 12, "special": False}
    run = stack.up()
    assert [op for _, op in run.ran()] == ["create-replacement", "replace", "delete-replaced"]
    assert revealed(stack, "p")["result"] != first
    spec.clear()
    assert stack.up().ran() == [("p", "delete")]


def test_r2_character_classes_and_minimums(passwords):
    stack = passwords(
        {
            "alnum": {"length": 200, "special": False},
            "mins": {"length": 12, "min_numeric": 5, "min_special": 4, "min_upper": 3},
            "override": {"length": 200, "override_special": "#", "upper": False, "lower": False},
        }
    )
    stack.up()
    alnum = revealed(stack, "alnum")["result"]
    assert len(alnum) == 200 and set(alnum) <= set(string.ascii_letters + string.digits)
    assert set(alnum) & set(string.digits) and set(alnum) & set(string.ascii_uppercase)
    mins = revealed(stack, "mins")["result"]
    assert len(mins) == 12
    assert sum(c.isdigit() for c in mins) >= 5 and sum(c in SPECIALS for c in mins) >= 4
    assert sum(c.isupper() for c in mins) >= 3
    override = revealed(stack, "override")["result"]
    assert set(override) == set(string.digits + "#")  # 200 draws from 11 characters


def test_r2_an_empty_character_set_fails(passwords):
    stack = passwords(
        {"empty": {"length": 4, "upper": False, "lower": False, "numeric": False, "special": False}}
    )
    with pytest.raises(EngineRunError) as failed:
        stack.up()
    assert "the character set specified is empty" in failed.value.text


def test_r3_result_and_hash_are_secret_and_the_hash_matches(passwords):
    stack = passwords({"p": {"length": 40}})
    stack.up()
    hidden = stack.resource("p")
    assert (
        SECRET_SIG in hidden["outputs"]["result"] and SECRET_SIG in hidden["outputs"]["bcryptHash"]
    )
    shown = revealed(stack, "p")
    assert shown["result"] not in json.dumps(stack.export())
    assert bcrypt.checkpw(shown["result"].encode(), shown["bcryptHash"].encode())
    assert shown["bcryptHash"].startswith("$2b$10$") and hidden["id"] == "none"
