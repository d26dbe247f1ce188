"""Provisioning of the server: the steps that turn a bare Debian host into a single-node swarm
with PostgreSQL and Nginx, each one ``remote.Command`` running one script of ``scripts/``.

The steps run in this order, each after the previous one: wait until booted, packages,
[mount the PostgreSQL volume], swarm, PostgreSQL, the media directory, Nginx (+TLS). Editing a
script or a parameter changes that step's program, and with it the digest in its ``create`` text,
so the next ``pulumi up`` re-runs that step and, because the later steps depend on it, nothing
else unless their own program changed.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_random as random
from pulumi_command import remote

import layout
import render_event
import render_host
from config import StackConfig
from remote_script import Script, remote_step
from server import Server

# Bounded waits: a step that cannot finish must fail with a message, not hang `pulumi up`.
BOOT_TIMEOUT_SECONDS = 900
WAIT_FOR_GATEWAY_SECONDS = 60


class Host(pulumi.ComponentResource):
    ready: pulumi.Resource
    # restic's password of the backup repository (secret); without it no backup can be read.
    restic_password: pulumi.Output[str]
    # Where the backups go: s3:<endpoint>/<bucket>, or a directory of the server.
    backup_repository: str

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        server: Server,
        tls: pulumi.Input[bool],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("django-swarm:index:Host", name, None, opts)
        self._name = name
        self._server = server
        self._last_step: pulumi.Resource | None = None

        self._step(
            "wait-ready", "host_wait_ready.sh", {"BOOT_TIMEOUT_SECONDS": BOOT_TIMEOUT_SECONDS}
        )
        self._step(
            "packages",
            "host_packages.sh",
            {"INSTALL_CERTBOT": int(cfg.tls_enabled), "ROLE": "manager"},
        )
        volume = server.postgres_volume
        if volume is not None:
            volume_params = {"VOLUME_DEVICE": volume.device, "MOUNT_POINT": volume.mount_point}
            self._step(
                "volume",
                "host_volume.sh",
                volume_params,
                delete=("host_volume_remove.sh", volume_params),
                after=[volume.attachment],
            )
        self._step(
            "swarm",
            "host_swarm.sh",
            {
                "SWARM_SUBNET": cfg.swarm_subnet,
                "SWARM_GATEWAY": cfg.swarm_gateway,
                "ADVERTISE_ADDRESS": server.private_address,
                "ETC_DIR": layout.ETC_DIR,
                "STACKS_DIR": layout.STACKS_DIR,
            },
            delete=("host_swarm_remove.sh", {"ETC_DIR": layout.ETC_DIR}),
        )
        self._step(
            "postgres",
            "host_postgres.sh",
            {
                "PG_DATA_ROOT": volume.mount_point if volume else "",
                "SWARM_SUBNET": cfg.swarm_subnet,
                "SWARM_GATEWAY": cfg.swarm_gateway,
                "WAIT_FOR_GATEWAY_SECONDS": WAIT_FOR_GATEWAY_SECONDS,
                # The workers' tasks log in over the network the nodes share; each worker's own
                # step admits its address (worker.py). A droplet listens on its VPC address with
                # or without workers: a change is a restart, which Pulumi would run (an update)
                # before it drains a removed last worker. Your own server's advertiseAddress may
                # be public: there PostgreSQL listens on it only while there are workers.
                "PRIVATE_ADDRESS": (
                    server.private_address if server.workers or cfg.target == "digitalocean" else ""
                ),
            },
            delete=("host_postgres_remove.sh", {}),
        )
        self._step(
            "media",
            "host_media.sh",
            {"MEDIA_ROOT": layout.MEDIA_ROOT, "DATA_ROOT": volume.mount_point if volume else ""},
        )
        self._backup_steps(cfg, volume.mount_point if volume else layout.DATA_DIR)
        nginx_paths = {
            "NGINX_SITE": layout.NGINX_SITE,
            "NGINX_SITE_ENABLED": layout.NGINX_SITE_ENABLED,
            "NGINX_LOCATIONS_DIR": layout.NGINX_LOCATIONS_DIR,
            "NGINX_UPSTREAMS_DIR": layout.NGINX_UPSTREAMS_DIR,
        }
        self.ready = self._step(
            "nginx",
            "host_nginx.sh",
            {
                **nginx_paths,
                "STATIC_ROOT": layout.STATIC_ROOT,
                "ACME_ROOT": render_host.ACME_ROOT,
                "HTTP_SITE": render_host.nginx_site(cfg.domain, tls=False),
                # Empty while TLS waits for the domain to lead here (tls_gate): HTTP only.
                "TLS_SITE": pulumi.Output.from_input(tls).apply(
                    lambda on: render_host.nginx_site(cfg.domain, tls=True) if on else ""
                ),
                "DOMAIN": cfg.domain or "",
                "TLS_EMAIL": cfg.tls_email or "",
            },
            delete=("host_nginx_remove.sh", nginx_paths),
            after=server.dns_records,
        )
        self.register_outputs({})

    def _backup_steps(self, cfg: StackConfig, data_dir: str) -> None:
        """restic, its tools and timer (scripts/host_backup.sh), with a generated password."""
        backups = cfg.backups
        # Protected: a new password would make every existing backup unreadable.
        password = random.RandomPassword(
            f"{self._name}-restic-password",
            length=40,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.restic_password = password.result
        self.backup_repository = render_host.backup_repository(backups, data_dir)
        if not backups.off_host:
            pulumi.log.warn(
                f"Backups are not off-host: they go to {self.backup_repository} on the server"
                " itself, which a lost server takes with it. Set backups.bucket"
                " (docs/backups.md)."
            )
        paths = {
            "ENV_FILE": layout.BACKUP_ENV,
            "PASSWORD_FILE": layout.RESTIC_PASSWORD_FILE,
            "TOOLS_DIR": layout.TOOLS_DIR,
        }
        self._step(
            "backup",
            "host_backup.sh",
            {
                **paths,
                "ENV_TEXT": render_host.backup_env(backups, data_dir, render_event.SITE_UID),
                "BACKUP_TOOL": render_host.backup_tool("backup"),
                "RESTORE_TOOL": render_host.backup_tool("restore"),
                "SERVICE_UNIT": render_host.backup_service_unit(),
                "TIMER_UNIT": render_host.backup_timer_unit(backups.schedule),
                "SCHEDULE": backups.schedule,
                "MAINTENANCE_DIR": layout.MAINTENANCE_DIR,
                "LOCAL_REPOSITORY": "" if backups.off_host else self.backup_repository,
            },
            delete=("host_backup_remove.sh", paths),
            secrets=[password.result, backups.secret_access_key or ""],
        )

    def _step(
        self,
        step: str,
        script: str,
        params: Mapping[str, pulumi.Input[str | int]],
        delete: tuple[str, Mapping[str, str]] | None = None,
        after: list[pulumi.Resource] | None = None,
        secrets: list[pulumi.Input[str]] | None = None,
    ) -> remote.Command:
        """One provisioning step, run after every step declared before it; a step that reads
        secrets from stdin logs nothing."""
        command = remote_step(
            f"{self._name}-{step}",
            self._server.connection,
            Script(script, params),
            Script(*delete) if delete else None,
            secrets or [],
            parent=self,
            depends_on=[*([self._last_step] if self._last_step else []), *(after or [])],
        )
        self._last_step = command
        return command
