"""SiteImage: the event site's image, built from ``app/`` and pushed; the host's registry login.

Every event deploys the pushed image by digest (``repo_digest``), so a code change rolls every
event, and only the events. The tag is a hash of what goes into the build, so a tag in the
registry says which sources it holds.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
from pulumi_command import remote

from config import StackConfig
from remote_script import Script, step_inputs

APP_DIR = Path(__file__).resolve().parent.parent / "app"
# Droplets are x86-64; a build on an ARM laptop must still run there.
PLATFORM = "linux/amd64"
# ``.dockerignore`` read as (path pattern, whether a match excludes) pairs, in file order.
DockerignoreRules = list[tuple[re.Pattern[str], bool]]


def dockerignore_rules(context: Path) -> DockerignoreRules:
    """``context/.dockerignore`` as (pattern, excludes) rules, read the way Docker reads them.

    Patterns are relative to the context (a leading ``/`` changes nothing); ``*`` and ``?`` stay
    within one path segment, ``**`` spans any number of them; ``!`` re-includes; the last rule
    that matches a path, or one of its parent directories, decides.
    """
    file = context / ".dockerignore"
    rules = []
    for line in file.read_text().splitlines() if file.is_file() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip().lstrip("/"))
        rules.append((re.compile(_glob_regex(pattern)), excludes))
    return rules


def _glob_regex(pattern: str) -> str:
    regex = ""
    for part in re.split(r"(\*\*/?|\*|\?)", pattern):
        if part.startswith("**"):
            regex += "(?:.*/)?" if part.endswith("/") else ".*"
        elif part == "*":
            regex += "[^/]*"
        elif part == "?":
            regex += "[^/]"
        else:
            regex += re.escape(part)
    return regex


def is_excluded(relative: str, rules: DockerignoreRules) -> bool:
    """Whether ``dockerignore_rules`` leave the file at ``relative`` (posix) out of the build."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    decision = False
    for pattern, excludes in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            decision = excludes
    return decision


def build_context_files(context: Path) -> list[str]:
    """The files of ``context`` that decide the image: tracked by git (every file when the
    project is not a git checkout), less what ``.dockerignore`` excludes; sorted, relative.

    Files git does not track (a ``.env``, a virtualenv, an editor's backups) differ from one
    machine to the next: counting them would give a laptop and CI different tags for one commit.
    """
    listed = subprocess.run(
        ["git", "-C", str(context), "ls-files", "-z", "--cached", "--", "."],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode == 0:
        candidates = [name for name in listed.stdout.split("\0") if name]
    else:
        candidates = [p.relative_to(context).as_posix() for p in context.rglob("*")]
    rules = dockerignore_rules(context)
    return sorted(
        name for name in candidates if (context / name).is_file() and not is_excluded(name, rules)
    )


def source_tag(app_dir: Path, build_args: dict[str, str]) -> str:
    """A short hash of the build inputs: the build context's files (``build_context_files``,
    as they are in the working tree) and the build args."""
    digest = hashlib.sha256()
    for name in build_context_files(app_dir):
        content = (app_dir / name).read_bytes()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    for name, value in sorted(build_args.items()):
        digest.update(f"{name}={value}\0".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class SiteImageArgs:
    stack: StackConfig
    connection: remote.ConnectionArgs
    # The last provisioning step: Docker is installed on the host.
    host_ready: pulumi.Resource


class SiteImage(pulumi.ComponentResource):
    """The site's image in the registry, and the host's credential to pull it."""

    repo_digest: pulumi.Output[str]
    registry_login: remote.Command

    def __init__(self, name: str, args: SiteImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-swarm:index:SiteImage", name, None, opts)
        registry = args.stack.registry
        build_args = {"BASE_IMAGE": args.stack.base_image}
        image = docker.Image(
            f"{name}-image",
            # Relative to the program's working directory (infra/, the project's `main`, where
            # the engine starts the docker plugin too), so that the same program on a laptop and
            # in CI declares the same build.
            build=docker.DockerBuildArgs(
                context=os.path.relpath(APP_DIR), args=build_args, platform=PLATFORM
            ),
            image_name=f"{registry.image_name}:{source_tag(APP_DIR, build_args)}",
            registry=docker.RegistryArgs(
                server=registry.server, username=registry.username, password=registry.password
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repo_digest = image.repo_digest
        self.registry_login = remote.Command(
            f"{name}-registry-login",
            connection=args.connection,
            **step_inputs(
                f"{name}-registry-login",
                Script(
                    "registry_login.sh",
                    {"REGISTRY_SERVER": registry.server, "REGISTRY_USERNAME": registry.username},
                ),
                Script("registry_logout.sh", {"REGISTRY_SERVER": registry.server}),
                # The server only pulls: it keeps the pull-only token when there is one.
                secrets=[registry.pull_password],
            ),
            logging=remote.Logging.NONE,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.host_ready],
                additional_secret_outputs=["stdout", "stderr"],
            ),
        )
        self.register_outputs({"repo_digest": self.repo_digest})
