"""Provisioning of the server: the steps that turn a bare Debian host into a single-node swarm
with PostgreSQL and Nginx, each one ``remote.Command`` running one script of ``scripts/``.

The steps run in this order, each after the previous one: wait until booted, packages,
[mount the PostgreSQL volume], swarm, PostgreSQL, Nginx (+TLS). Editing a script or a
parameter changes that step's program, and with it the digest in its ``create`` text, so the next
``pulumi up`` re-runs that step and, because the later steps depend on it, nothing else unless
their own program changed.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
from pulumi_command import remote

import layout
import render_host
from config import StackConfig
from remote_script import Script, step_inputs
from server import Server

# Bounded waits: a step that cannot finish must fail with a message, not hang `pulumi up`.
BOOT_TIMEOUT_SECONDS = 900
WAIT_FOR_GATEWAY_SECONDS = 60


class Host(pulumi.ComponentResource):
    ready: pulumi.Resource

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
        self._step("packages", "host_packages.sh", {"INSTALL_CERTBOT": int(cfg.tls_enabled)})
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
            },
            delete=("host_postgres_remove.sh", {}),
        )
        nginx_paths = {
            "NGINX_SITE": layout.NGINX_SITE,
            "NGINX_SITE_ENABLED": layout.NGINX_SITE_ENABLED,
            "NGINX_LOCATIONS_DIR": layout.NGINX_LOCATIONS_DIR,
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

    def _step(
        self,
        step: str,
        script: str,
        params: Mapping[str, pulumi.Input[str | int]],
        delete: tuple[str, Mapping[str, str]] | None = None,
        after: list[pulumi.Resource] | None = None,
    ) -> remote.Command:
        """One provisioning step, run after every step declared before it."""
        title = f"{self._name}-{step}"
        command = remote.Command(
            title,
            connection=self._server.connection,
            **step_inputs(title, Script(script, params), Script(*delete) if delete else None),
            # The provider would send the previous output as PULUMI_COMMAND_* variables, which
            # sshd refuses (AcceptEnv) with a warning on every run; no script reads them.
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*([self._last_step] if self._last_step else []), *(after or [])],
            ),
        )
        self._last_step = command
        return command
