"""SiteImage: the event site's image, built from ``app/`` and pushed; the host's registry login.

Every event deploys the pushed image by digest (``repo_digest``), so a code change rolls every
event, and only the events. The tag is a hash of what goes into the build, so a tag in the
registry says which sources it holds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
from pulumi_command import remote

from config import StackConfig
from remote_script import render_script, secret_stdin

APP_DIR = Path(__file__).resolve().parent.parent / "app"
# Droplets are x86-64; a build on an ARM laptop must still run there.
PLATFORM = "linux/amd64"
# Generated files that are not sources (and are not sent to the build either: app/.dockerignore).
_GENERATED = ("__pycache__", "staticfiles")


def source_tag(app_dir: Path, build_args: dict[str, str]) -> str:
    """A short hash of the build inputs: every source file under ``app_dir``, the build args."""
    digest = hashlib.sha256()
    for path in sorted(app_dir.rglob("*")):
        relative = path.relative_to(app_dir)
        if not path.is_file() or path.suffix == ".pyc" or set(relative.parts) & set(_GENERATED):
            continue
        digest.update(f"{relative.as_posix()}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
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
            # Relative to the project root (the program's working directory), so that the same
            # program on a laptop and in CI declares the same build.
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
            create=render_script(
                "registry_login.sh",
                {"REGISTRY_SERVER": registry.server, "REGISTRY_USERNAME": registry.username},
            ),
            delete=render_script("registry_logout.sh", {"REGISTRY_SERVER": registry.server}),
            stdin=secret_stdin(registry.password),
            logging=remote.Logging.NONE,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.host_ready],
                additional_secret_outputs=["stdout", "stderr"],
            ),
        )
        self.register_outputs({"repo_digest": self.repo_digest})
