"""The expression evaluator that the workflow tests rely on follows GitHub's rules."""

import pytest
from workflow_expressions import evaluate, is_truthy

CONTEXT = {
    "github": {"event_name": "workflow_dispatch", "repository": "ieee/site"},
    "inputs": {"confirm_stack": "prod"},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("github.event_name == 'workflow_dispatch'", True),
        ("${{ github.event_name == 'push' }}", False),
        ("inputs.confirm_stack == 'PROD'", True),  # GitHub compares strings ignoring case
        ("inputs.confirm_stack != 'prod'", False),
        ("github.missing.deeper == null", True),
        ("inputs.missing == ''", True),  # null and '' are both 0 as numbers
        ("inputs.missing == 'prod'", False),
        ("!inputs.missing", True),
        ("!inputs.confirm_stack == false", True),  # ! binds tighter than ==
        ("github.event_name == 'push' || inputs.confirm_stack == 'prod'", True),
        ("github.event_name == 'push' && inputs.confirm_stack == 'prod'", False),
        ("(github.event_name == 'push' || true) && 'it''s'", "it's"),
    ],
)
def test_evaluates_like_github(expression, expected):
    assert evaluate(expression, CONTEXT) == expected


@pytest.mark.parametrize(("value", "truthy"), [("", False), ("0", True), (0, False), (None, False)])
def test_truthiness_like_github(value, truthy):
    assert is_truthy(value) is truthy


@pytest.mark.parametrize("expression", ["contains(github.event_name, 'push')", "a == ", "(a == b"])
def test_refuses_what_it_does_not_understand(expression):
    with pytest.raises(ValueError):
        evaluate(expression, CONTEXT)
