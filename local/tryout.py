"""``./deploy.sh --local``: the whole product on this machine, deployed to a box on its own
Docker engine, with nothing else to sign up for.

The stack is ``local``, whose config is the committed ``Pulumi.local.yaml`` (``target:
existing``, the box on 127.0.0.1). Everything this machine makes for it stays in ``.local/``,
which git ignores and only its owner can read:

- ``Pulumi.yaml`` and ``Pulumi.local.yaml``: the engine's workspace. The second is the committed
  config, plus what Pulumi adds to it (the passphrase's salt, the secrets set with
  ``pulumi config set --secret``), so that the committed file never changes;
- ``state/``: the stack's state (a file backend), ``passphrase``: its generated passphrase;
- ``id_ed25519`` and ``registry-password``: the box's SSH key and its registry's password;
- ``admin-logins``: each event's admin user and password, once deployed.

``--local --destroy`` removes the box, its volume, its images and ``.local/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from local.box import BOX_IMAGE, Box, box_base, build_box_image, docker, image_exists

STACK = "local"
BOX_NAME = "django-swarm-local"
# Where the box's Nginx answers on this machine (127.0.0.1 only).
HTTP_PORT = 8080
# The image tests/setup_machine.sh makes where Docker Hub cannot be reached (the test machines):
# the site is built FROM it there instead of the committed baseImage.
LOCAL_PYTHON_BASE = "django-swarm/python-base:trixie"
SECRET_KEYS = ("sshPrivateKey", "registryPassword")


class TryoutError(Exception):
    """What stops the local try-out before anything changes: the message says what to do."""


class LocalTryout:
    def __init__(self, project_dir: Path, project: str):
        self.project_dir = project_dir
        self.project = project
        self.work_dir = project_dir / ".local"
        self.committed_config_file = project_dir / f"Pulumi.{STACK}.yaml"
        # The engine's copy of it, with Pulumi's salt and secrets (write_workspace).
        self.stack_file = self.work_dir / f"Pulumi.{STACK}.yaml"

    # -- the committed config ------------------------------------------------------------------

    def committed_config(self) -> dict[str, object]:
        if not self.committed_config_file.is_file():
            raise TryoutError(
                f"{self.committed_config_file.name} is missing: the local stack's config is"
                " committed with the code (git checkout -- Pulumi.local.yaml)"
            )
        return yaml.safe_load(self.committed_config_file.read_text()).get("config") or {}

    def setting(self, key: str) -> object:
        return self.committed_config().get(f"{self.project}:{key}")

    def ports(self) -> tuple[int, int, int]:
        """SSH, HTTP and the registry's port on 127.0.0.1, as the committed config says."""
        registry = self.setting("registry") or {}
        server = str(registry.get("server", "")) if isinstance(registry, dict) else ""
        host, _, port = server.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            raise TryoutError(
                f"registry.server in {self.committed_config_file.name} is {server!r}: the local"
                " box's registry is 127.0.0.1:<port>, like 127.0.0.1:5050"
            )
        return int(self.setting("sshPort") or 22), HTTP_PORT, int(port)

    # -- the box -------------------------------------------------------------------------------

    def box(self) -> Box:
        registry = self.setting("registry")
        return Box(
            self.private_dir(),
            str(registry["username"]),
            self.private_value("registry-password", lambda: secrets.token_urlsafe(24)),
            hostname=BOX_NAME,
            name=BOX_NAME,
            ports=self.ports(),
        )

    def private_dir(self) -> Path:
        self.work_dir.mkdir(mode=0o700, exist_ok=True)
        self.work_dir.chmod(0o700)
        return self.work_dir

    def private_value(self, name: str, make) -> str:
        """``.local/<name>``, made with ``make()`` the first time (readable by its owner only)."""
        path = self.private_dir() / name
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(make())
        return path.read_text()

    def check_docker(self) -> None:
        if shutil.which("docker") is None:
            raise TryoutError(
                "Docker is not installed: the local try-out runs a Debian server in a container"
                " on your Docker engine. Install Docker (https://docs.docker.com/get-docker/)"
                " and run me again"
            )
        done = subprocess.run(["docker", "info"], capture_output=True, text=True)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
            raise TryoutError(
                f"the Docker engine does not answer ({reason}): start Docker Desktop or the"
                " docker service, then run me again"
            )

    def box_state(self) -> str | None:
        """The box container's state (running, exited, ...), or None where there is none."""
        done = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Status}}", BOX_NAME],
            capture_output=True,
            text=True,
        )
        return done.stdout.strip() if done.returncode == 0 else None

    def check_ports_free(self) -> None:
        """A box not yet started needs its three ports free on 127.0.0.1."""
        ssh, http, registry = self.ports()
        uses = {
            ssh: "SSH (sshPort in Pulumi.local.yaml)",
            http: "the sites (HTTP)",
            registry: "the registry (registry.server in Pulumi.local.yaml)",
        }
        for port, use in uses.items():
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise TryoutError(
                        f"port {port} on 127.0.0.1 is taken by another program, and the local"
                        f" box needs it for {use}: stop that program, or change the port where"
                        " it is set, then run me again"
                    ) from None

    def start_box(self, log) -> Box:
        """The box, built and started if it is not running (its disks are kept across runs)."""
        self.check_docker()
        state = self.box_state()
        if state is None:
            self.check_ports_free()
        elif not (self.work_dir / "id_ed25519").exists():
            raise TryoutError(
                f"the box {BOX_NAME} is there, but not .local/ with the key that logs in to it:"
                " remove the box with ./deploy.sh --local --destroy, then run me again"
            )
        box = self.box()
        if state == "running":
            box.wait_ready()
            return box
        if state is None:
            base = box_base()
            log(f"Building the box image {BOX_IMAGE} FROM {base} (a minute the first time)")
            build_box_image(base)
            log(f"Starting the box {BOX_NAME}: Debian 13 with systemd, sshd and a registry")
            box.start()
        else:
            log(f"Starting the box {BOX_NAME} again")
            docker("start", BOX_NAME)
            box.wait_ready(timeout=180)
        return box

    # -- the engine's workspace ----------------------------------------------------------------

    def write_workspace(self, project_file: Path) -> list[str]:
        """``.local/Pulumi.yaml`` (the project's, its program in ``infra/``) and
        ``.local/Pulumi.local.yaml``: the committed config, with the salt and the secrets that
        Pulumi wrote to the previous copy. Returns the secrets (SECRET_KEYS) the copy lacks."""
        project = yaml.safe_load(project_file.read_text())
        project["main"] = self.from_work_dir(project["main"])
        options = project.get("runtime", {}).get("options", {})
        if "virtualenv" in options:
            options["virtualenv"] = self.from_work_dir(options["virtualenv"])
        (self.private_dir() / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        previous = yaml.safe_load(self.stack_file.read_text()) if self.stack_file.exists() else {}
        config = dict(self.committed_config())
        missing = []
        for key in SECRET_KEYS:
            kept = (previous.get("config") or {}).get(f"{self.project}:{key}")
            if kept is None:
                missing.append(key)
            else:
                config[f"{self.project}:{key}"] = kept
        if image_exists(LOCAL_PYTHON_BASE):
            config[f"{self.project}:baseImage"] = LOCAL_PYTHON_BASE
        settings: dict[str, object] = {"config": config}
        if previous.get("encryptionsalt"):
            settings["encryptionsalt"] = previous["encryptionsalt"]
        self.stack_file.touch(mode=0o600)
        self.stack_file.write_text(yaml.safe_dump(settings, sort_keys=False))
        return missing

    def from_work_dir(self, path: str) -> str:
        """A path of the project's, relative to ``.local/``."""
        return os.path.relpath(self.project_dir / path, self.work_dir)

    def secret_value(self, key: str, box: Box) -> str:
        return {"sshPrivateKey": box.private_key, "registryPassword": box.registry_password}[key]

    def environment(self) -> dict[str, str]:
        """The engine's backend and passphrase: both private to ``.local/``. They win over the
        user's own (a ``PULUMI_CONFIG_PASSPHRASE`` exported for another stack), in the engine's
        environment only."""
        state = self.private_dir() / "state"
        state.mkdir(mode=0o700, exist_ok=True)
        return {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": self.private_value(
                "passphrase", lambda: secrets.token_urlsafe(32)
            ),
            "PULUMI_CONFIG_PASSPHRASE_FILE": "",
        }

    # -- what the user gets --------------------------------------------------------------------

    def site_urls(self, event_urls: Mapping[str, str]) -> dict[str, str]:
        """The program's event URLs (http://127.0.0.1/<path>/) at the box's published port."""
        return {
            event: urlsplit(url)._replace(netloc=f"127.0.0.1:{HTTP_PORT}").geturl()
            for event, url in event_urls.items()
        }

    def save_admin_logins(self, admins: Mapping[str, Mapping[str, str]]) -> Path:
        lines = [
            f"{event}: {self.site_urls({event: login['url']})[event]}"
            f"  user {login['username']}  password {login['password']}"
            for event, login in sorted(admins.items())
        ]
        path = self.private_dir() / "admin-logins"
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n")
        return path

    # -- removing it all -----------------------------------------------------------------------

    def remove(self, log) -> None:
        """The box, its Docker volume, the images it was built from and pushed, and
        ``.local/`` (the stack's state with it)."""
        self.check_docker()
        if self.box_state() is not None:
            log(f"Removing the box {BOX_NAME}, its volume and the site images pushed to it")
            self.box().remove()
        if image_exists(BOX_IMAGE):
            log(f"Removing the box image {BOX_IMAGE}")
            docker("rmi", BOX_IMAGE)
        if self.work_dir.exists():
            log(f"Removing {self.work_dir} (the local stack's state, key and passwords)")
            shutil.rmtree(self.work_dir)
