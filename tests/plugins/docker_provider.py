"""Test plugin: stands in for ``pulumi-resource-docker`` 5.2.0, resource ``Image``.

``Image`` is the one native (not bridged) resource of pulumi/pulumi-docker. The rules were read
in ``provider/provider.go`` and ``provider/image.go`` at the newest commit of the stored snapshot,
237b7899 (after v5.1.0; the snapshot holds no v5.2.0 tag, and neither file changed between
v5.1.0 and that commit but for one line of ``Configure``):

D1  Check (``Check``, ``marshalBuildAndApplyDefaults``): ``build.context`` defaults to ``.``,
    ``build.dockerfile`` to ``<context>/Dockerfile``; ``buildOnPreview`` to false;
    ``build.platform`` to ``linux/<the machine's arch>``, with an info diagnostic saying so. A
    Dockerfile that cannot be opened fails Check: ``could not open dockerfile at relative path
    "<path>": <reason>``.
D2  Check adds ``build.contextDigest`` (``hashContext``): sha256 over, for the Dockerfile (named
    ``Dockerfile``, mode 0) and then each file of the context that ``.dockerignore`` leaves in
    (``getIgnorePatterns``; walked in name order), its relative name, its mode and the sha256 of
    its content (of its target path, for a symlink). Any change of a file's content, name or mode
    thus changes an input.
D3  Diff (``Diff``, ``diffUpdates``): the new inputs against the inputs kept in the state's
    ``__inputs``. Any changed key is an update, never a replace; a change of ``registry`` counts
    only when its ``server`` changed (not its username or password).
D4  Preview (``Create``/``Update`` with ``preview``, ``canPreview``): with ``buildOnPreview``
    false (the default) nothing is built and the inputs come back as they are, so every output
    the program reads (``repoDigest``) stays unknown.
D5  Create and Update (``dockerBuild``): build the context with the Dockerfile, tagged
    ``imageName``, with ``build.args``, ``build.platform`` and ``build.target``; then, unless
    ``skipPush``, push ``imageName`` with the registry's username and password (when both are
    set; else the machine's own Docker credentials). ``repoDigest`` is ``<imageName less its
    tag>@<the digest the push reports>``; the other outputs are ``imageName``,
    ``baseImageName``, ``registryServer``, ``context``, ``dockerfile`` (relative to the context)
    and ``platform``; the id is ``imageName``. The state keeps the inputs under ``__inputs``,
    secret as a whole (``checkpointObject``), so the registry password in them stays secret.
D6  Delete does nothing: the image stays in the local store and in the registry. Read returns
    the state as it is.

Where this plugin differs, on purpose: it runs the ``docker`` CLI, not the engine's API, with
the classic builder (``DOCKER_BUILDKIT=0``; the real one asks the API for BuildKit, which the
machines' Docker 20.10 CLI runs only through buildx, not installed). The credentials go to a
private ``DOCKER_CONFIG`` (mode 700) through ``docker login --password-stdin``, never a command
line, and that directory is removed after the push. Not modelled, because the program does not
use them: ``cacheFrom``, ``addHosts``, ``network``, ``builderVersion``, ``buildOnPreview: true``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import posixpath
import re
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from docker.utils.build import PatternMatcher
from pulumi.provider.experimental import provider as api
from pulumi.provider.experimental.property_value import PropertyValue

from tests.plugins import serving
from tests.plugins.install import pinned_versions
from tests.plugins.values import (
    diff_inputs,
    has_secret,
    is_unknown,
    plain,
    plain_map,
    wrap,
    wrap_map,
)

TYPE = "docker:index/image:Image"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
HOST_PLATFORM = f"linux/{ARCH}"
PLATFORM_NOTE = (
    f"Building your image for {HOST_PLATFORM} architecture.\n"
    "To ensure you are building for the correct platform, consider explicitly setting the "
    "`platform` field on ImageBuildOptions."
)


def ignore_patterns(context: Path, dockerfile: Path) -> list[str]:
    """``<dockerfile>.dockerignore``, else ``<context>/.dockerignore``, as Docker reads them."""
    for candidate in (Path(f"{dockerfile}.dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            lines = (line.strip() for line in candidate.read_text().splitlines())
            return [line for line in lines if line and not line.startswith("#")]
    return []


def _entry(path: Path, name: str, mode: str) -> bytes:
    content = hashlib.sha256()
    if path.is_symlink():
        content.update(os.path.realpath(path).encode())
    elif path.is_file():
        content.update(path.read_bytes())
    return name.encode() + mode.encode() + content.digest() + b"\0"


def context_digest(context: Path, dockerfile: Path) -> str:
    """D2: the digest of the build context and the Dockerfile."""
    matcher = PatternMatcher(ignore_patterns(context, dockerfile))
    # docker-py never excludes .dockerignore itself (it appends `!.dockerignore`); the real
    # provider's walk excludes it like any other file.
    matcher.patterns.pop()
    accumulated = _entry(dockerfile, "Dockerfile", "----------")  # Go's FileMode(0).String()
    for relative in sorted(matcher.walk(str(context))):
        path = context / relative
        if path.is_dir() and not path.is_symlink():
            continue
        accumulated += _entry(path, Path(relative).as_posix(), stat.filemode(path.lstat().st_mode))
    return hashlib.sha256(accumulated).hexdigest()


def _docker(argv: list[str], stdin: str | None = None, config: str | None = None) -> str:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    if config:
        env["DOCKER_CONFIG"] = config
    done = subprocess.run(
        ["docker", *argv], input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise serving.ProviderError(done.stderr.strip() or f"docker {argv[0]} failed")
    return done.stdout


def repository(image_name: str) -> str:
    """``image_name`` less its tag (a ``:`` after the last ``/``)."""
    head, _, last = image_name.rpartition("/")
    return f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]


def compared_inputs(inputs: Mapping[str, PropertyValue]) -> dict[str, PropertyValue]:
    """D3: what Diff compares of ``inputs``: all of them, but of ``registry`` only its server."""
    compared = dict(inputs)
    registry = plain(compared.get("registry"))
    if isinstance(registry, dict):
        compared["registry"] = wrap(registry.get("server"))
    return compared


class DockerImageProvider(api.Provider):
    async def check(self, request: api.CheckRequest) -> api.CheckResponse:
        inputs = plain_map(request.new_inputs)
        build = dict(inputs.get("build") or {})
        inputs.setdefault("buildOnPreview", False)
        if build.get("context") is None:
            build["context"] = "."
        if not is_unknown(build["context"]) and build.get("dockerfile") is None:
            # Go's path.Join, which cleans: "./Dockerfile" is "Dockerfile".
            build["dockerfile"] = posixpath.normpath(posixpath.join(build["context"], "Dockerfile"))
        dockerfile = build.get("dockerfile")
        if not is_unknown(dockerfile) and not is_unknown(build["context"]):
            if not Path(dockerfile).is_file():
                reason = f"stat {dockerfile}: no such file or directory"
                raise serving.ProviderError(
                    f'could not open dockerfile at relative path "{dockerfile}": {reason}'
                )
            build["contextDigest"] = context_digest(Path(build["context"]), Path(dockerfile))
        if build.get("platform") is None:
            build["platform"] = HOST_PLATFORM
            await serving.log(request.urn, PLATFORM_NOTE)
        inputs["build"] = build
        secret = [key for key, value in request.new_inputs.items() if has_secret(value)]
        return api.CheckResponse(inputs=wrap_map(inputs, secret))

    async def diff(self, request: api.DiffRequest) -> api.DiffResponse:
        old_inputs = request.old_state.get("__inputs")
        olds = compared_inputs(old_inputs.value if old_inputs is not None else {})
        news = compared_inputs(request.new_inputs)
        # Every change updates; the Go provider's PropertyDiffs leave InputDiff unset.
        return diff_inputs(olds, news, sorted({*olds, *news}), replace_keys=(), input_diff=False)

    async def create(self, request: api.CreateRequest) -> api.CreateResponse:
        if request.preview:
            return api.CreateResponse("", request.properties)
        image_name, outputs = self._build_and_push(request.properties)
        return api.CreateResponse(image_name, outputs)

    async def update(self, request: api.UpdateRequest) -> api.UpdateResponse:
        if request.preview:
            return api.UpdateResponse(request.news)
        _, outputs = self._build_and_push(request.news)
        return api.UpdateResponse(outputs)

    async def read(self, request: api.ReadRequest) -> api.ReadResponse:
        return api.ReadResponse(request.resource_id, request.properties, request.inputs)

    async def delete(self, request: api.DeleteRequest) -> None:
        return None

    def _build_and_push(self, properties: dict) -> tuple[str, dict]:
        """D5: the image's id and its state (outputs and ``__inputs``)."""
        inputs = plain_map(properties)
        build, registry = inputs["build"], inputs.get("registry") or {}
        image_name = inputs["imageName"]
        argv = ["build", "-q", "-t", image_name, "-f", build["dockerfile"]]
        for name, value in sorted((build.get("args") or {}).items()):
            argv += ["--build-arg", f"{name}={value}"]
        argv += ["--platform", build["platform"]]
        if build.get("target"):
            argv += ["--target", build["target"]]
        _docker([*argv, build["context"]])
        outputs: dict[str, Any] = {
            "dockerfile": os.path.relpath(build["dockerfile"], build["context"]),
            "context": build["context"],
            "baseImageName": image_name,
            "registryServer": registry.get("server"),
            "imageName": image_name,
            "platform": build["platform"],
        }
        if inputs.get("skipPush"):
            inspected = _docker(["image", "inspect", "-f", "{{.Id}}", image_name])
            outputs["repoDigest"] = inspected.strip()
        else:
            outputs["repoDigest"] = f"{repository(image_name)}@{self._push(image_name, registry)}"
        state = wrap_map(outputs)
        state["__inputs"] = wrap(inputs, secret=True)
        return image_name, state

    def _push(self, image_name: str, registry: dict) -> str:
        """Push with the registry's credentials; the digest the push reports."""
        with tempfile.TemporaryDirectory(prefix="docker-plugin-config-") as private_config:
            config = None  # without both credentials: the machine's own
            if registry.get("username") and registry.get("password"):
                config = private_config
                server = registry.get("server") or image_name.split("/")[0]
                _docker(
                    ["login", server, "--username", registry["username"], "--password-stdin"],
                    stdin=registry["password"],
                    config=config,
                )
            pushed = _docker(["push", image_name], config=config)
        found = re.findall(r"digest: (sha256:[0-9a-f]{64})", pushed)
        if not found:
            raise serving.ProviderError(f"pushed {image_name} but the push reported no digest")
        return found[-1]


if __name__ == "__main__":
    serving.serve("docker", pinned_versions()["docker"], DockerImageProvider())
