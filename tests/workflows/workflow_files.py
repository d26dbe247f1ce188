"""The repository's GitHub workflow files, read the way GitHub reads them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO / ".github" / "workflows"
WORKFLOW_PATHS = sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])

BOOL_TAG = "tag:yaml.org,2002:bool"


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML speaks YAML 1.1, where the key `on` is the boolean true; GitHub reads YAML 1.2,
    where only true and false are booleans."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|false)$"), list("tf"))


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=Yaml12Loader)  # noqa: S506 -- a SafeLoader subclass


def load_workflow(name: str) -> dict[str, Any]:
    return load(WORKFLOWS_DIR / f"{name}.yml")


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The `on:` section as a mapping, whichever of its three spellings is used."""
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return {event: settings or {} for event, settings in on.items()}


def effective_permissions(workflow: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
    """A job's token scopes: its own `permissions`, else the workflow's. A missing block means
    the repository default, which may be write-all: treated here as an error by the caller."""
    permissions = job.get("permissions", workflow.get("permissions"))
    if permissions is None:
        raise AssertionError("no permissions block: the token would get the repository default")
    if isinstance(permissions, str):
        raise AssertionError(f"permissions: {permissions} grants every scope at once")
    return permissions


def run_scripts(workflow: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(job id, step name, script) of every `run:` step."""
    return [
        (job_id, step.get("name", step["run"].splitlines()[0]), step["run"])
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if "run" in step
    ]
