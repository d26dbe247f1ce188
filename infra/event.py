"""EventSite: one event's site on the host, as a chain of remote steps.

What runs on the host when event X is deployed, in order (each a script in ``scripts/``):

1. ``event_database.sh``  its database and role, with a generated password (sent as its SCRAM
                          verifier)
2. ``event_secrets.sh``   swarm secrets for the Django secret key and that password (versioned)
   ``event_network.sh``   its overlay network, through which its tasks reach PostgreSQL
3. ``event_migrate.sh``   the new image's migrations, once, as a swarm job with a timeout; the same
                          job makes the event's administrator (``manage.py ensure_admin``)
4. ``event_static.sh``    the new image's static files, with the live release's, switched in at once
   ``event_media.sh``     its directory of uploaded files, which its tasks mount
5. ``event_stack.sh``     the swarm stack (``render_event.stack_file``), checked after the rollout;
                          each release publishes whichever of the event's two ports is free
6. ``event_nginx.sh``     its Nginx upstream (both ports) and locations, then a reload

Each step's ``delete`` undoes it when the event leaves the config (or on ``pulumi destroy``); the
database and the uploaded files are only removed when the event sets ``dropDatabaseOnDelete``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_command import remote

import layout
import render_event
from config import EventConfig, StackConfig, event_ports
from remote_script import Script, remote_step

# Upper bounds for the waits on the host; a step that hits one fails with what it saw.
MIGRATE_TIMEOUT_SECONDS = 600
# The snapshot before the migrations: a 50 MB event takes seconds; an unreachable bucket, forever.
SNAPSHOT_TIMEOUT_SECONDS = 1800
DEPLOY_TIMEOUT_SECONDS = 600
REMOVE_TIMEOUT_SECONDS = 120


def secret_version(value: pulumi.Output[str]) -> pulumi.Output[str]:
    """A name-safe version of a secret value: changes exactly when the value does.

    12 hex digits of a hash of a long random value tell nothing about it, so the version may
    appear in plain text (command lines, swarm secret names).
    """
    return pulumi.Output.unsecret(
        value.apply(lambda v: hashlib.sha256(v.encode()).hexdigest()[:12])
    )


def release_id(image_ref: str) -> str:
    """A short id of the image ``<name>@sha256:<hex>`` for the static files' bookkeeping."""
    return image_ref.rsplit("@sha256:", 1)[-1][:12]


@dataclass(frozen=True)
class EventSiteArgs:
    event: EventConfig
    stack: StackConfig
    connection: remote.ConnectionArgs
    # "<server>/<repository>@sha256:..." (SiteImage.repo_digest)
    image_ref: pulumi.Input[str]
    public_address: pulumi.Input[str]
    # HTTPS is on (tls_gate.tls_active): secure cookies, HSTS, https URLs.
    tls: pulumi.Input[bool]
    # The last provisioning step, and the login that lets the host pull the image.
    host_ready: pulumi.Resource
    registry_login: pulumi.Resource
    # The manager's address on the network the nodes share (where workers reach PostgreSQL).
    manager_address: pulumi.Input[str] = ""
    # The workers' addresses on that network, and their last steps (ready for tasks).
    workers: Sequence[pulumi.Input[str]] = ()
    workers_ready: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class _Passwords:
    """The event's generated values; each is stored (encrypted) in the state."""

    db: random.RandomPassword
    secret_key: random.RandomPassword
    admin: random.RandomPassword


class EventSite(pulumi.ComponentResource):
    """One event: database, secrets, migration, static files, swarm stack, Nginx location."""

    url: pulumi.Output[str]
    admin_login: pulumi.Output[dict]

    def __init__(self, name: str, args: EventSiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-swarm:index:EventSite", name, None, opts)
        self._name, self._args, self._event = name, args, args.event
        self._public_host = pulumi.Output.from_input(args.stack.domain or args.public_address)

        passwords = self._passwords()
        database = self._database_step(passwords)
        secrets, secrets_step = self._secrets_step(passwords)
        network = self._network_step()
        spec = self._site_spec(secrets)
        migrate = self._migrate_step(spec, [database, secrets_step, network, args.registry_login])
        static = self._static_step()
        media = self._media_step()
        stack = self._stack_step(
            spec, [migrate, static, media, secrets_step, network, *args.workers_ready]
        )
        self._nginx_step(stack)

        self.url = pulumi.Output.all(self._public_host, args.tls).apply(
            lambda values: f"{'https' if values[1] else 'http'}://{values[0]}{self._event.path}/"
        )
        # Secret: the administrator's login (docs/how-to.md, "Log in to an event's admin").
        self.admin_login = pulumi.Output.secret(
            {
                "url": self.url.apply(lambda url: f"{url}admin/"),
                "username": render_event.ADMIN_USERNAME,
                "password": passwords.admin.result,
            }
        )
        self.register_outputs({"url": self.url, "admin_login": self.admin_login})

    def _step(
        self,
        suffix: str,
        depends_on: list[pulumi.Resource],
        create: Script,
        delete: Script | None = None,
        secrets: list[pulumi.Input[str]] | None = None,
    ) -> remote.Command:
        """A remote step of this event; a step that reads secrets from stdin logs nothing."""
        return remote_step(
            f"{self._name}-{suffix}",
            self._args.connection,
            create,
            delete,
            secrets or [],
            parent=self,
            depends_on=depends_on,
        )

    def _passwords(self) -> _Passwords:
        child = pulumi.ResourceOptions(parent=self)
        return _Passwords(
            db=random.RandomPassword(f"{self._name}-db-password", length=40, opts=child),
            # Django's check --deploy wants at least 50 characters with some variety.
            secret_key=random.RandomPassword(f"{self._name}-secret-key", length=64, opts=child),
            # The event's administrator, made by the migration job (`manage.py ensure_admin`).
            admin=random.RandomPassword(
                f"{self._name}-admin-password", length=32, special=False, opts=child
            ),
        )

    def _database_step(self, passwords: _Passwords) -> remote.Command:
        database = layout.database_name(self._event.name)
        return self._step(
            "database",
            [self._args.host_ready],
            Script("event_database.sh", {"DATABASE": database}),
            (
                Script("event_database_drop.sh", {"DATABASE": database})
                if self._event.drop_database_on_delete
                else None
            ),
            [passwords.db.result.apply(render_event.scram_verifier)],
        )

    def _secrets_step(
        self, passwords: _Passwords
    ) -> tuple[pulumi.Output[render_event.EventSecrets], remote.Command]:
        """Swarm secrets named by a version of their value, and the step that creates them."""
        event = self._event.name
        # eventSecrets of this event, in the order of EventSecrets.names().
        settings = sorted(self._args.stack.event_secrets.get(event, {}).items())
        setting_versions = [
            pulumi.Output.unsecret(
                pulumi.Output.all(passwords.secret_key.result, value).apply(
                    lambda kv, setting=setting: render_event.setting_version(kv[0], setting, kv[1])
                )
            )
            for setting, value in settings
        ]
        secrets = pulumi.Output.all(
            secret_version(passwords.secret_key.result),
            secret_version(passwords.db.result),
            secret_version(passwords.admin.result),
            *setting_versions,
        ).apply(
            lambda versions: render_event.EventSecrets(
                secret_key=render_event.secret_name(event, "secret_key", versions[0]),
                db_password=render_event.secret_name(event, "db_password", versions[1]),
                admin_password=render_event.secret_name(event, "admin_password", versions[2]),
                settings={
                    setting: render_event.secret_name(event, "setting", version)
                    for (setting, _), version in zip(settings, versions[3:], strict=True)
                },
            )
        )
        step = self._step(
            "secrets",
            [self._args.host_ready],
            Script(
                "event_secrets.sh",
                {"EVENT": event, "SECRETS": secrets.apply(lambda s: " ".join(s.names()))},
            ),
            Script("event_secrets_remove.sh", {"EVENT": event}),
            [
                passwords.secret_key.result,
                passwords.db.result,
                passwords.admin.result,
                *[value for _, value in settings],
            ],
        )
        return secrets, step

    def _network_step(self) -> remote.Command:
        network = render_event.network_name(self._event.name)
        return self._step(
            "network",
            [self._args.host_ready],
            Script("event_network.sh", {"EVENT": self._event.name, "NETWORK": network}),
            Script(
                "event_network_remove.sh",
                {"NETWORK": network, "REMOVE_TIMEOUT": REMOVE_TIMEOUT_SECONDS},
            ),
        )

    def _site_spec(
        self, secrets: pulumi.Output[render_event.EventSecrets]
    ) -> pulumi.Output[render_event.SiteSpec]:
        """Everything the site's container and its migration job are given."""
        args, event = self._args, self._event
        values = (args.image_ref, self._public_host, secrets, args.tls, args.manager_address)
        return pulumi.Output.all(*values).apply(
            lambda values: render_event.SiteSpec(
                event=event.name,
                path=event.path,
                replicas=event.replicas,
                image=values[0],
                db_host=args.stack.swarm_gateway,
                public_host=values[1],
                tls=values[3],
                secrets=values[2],
                settings=event.settings,
                memory_reservation_mb=event.memory_reservation_mb,
                memory_limit_mb=event.memory_limit_mb,
                manager_address=values[4],
            )
        )

    def _migrate_step(
        self, spec: pulumi.Output[render_event.SiteSpec], after: list[pulumi.Resource]
    ) -> remote.Command:
        return self._step(
            "migrate",
            after,
            Script(
                "event_migrate.sh",
                spec.apply(
                    lambda site: {
                        "EVENT": site.event,
                        "IMAGE": site.image,
                        # Names the snapshot taken before these migrations.
                        "RELEASE": release_id(site.image),
                        "NETWORK": render_event.network_name(site.event),
                        "ENV_FILE_TEXT": render_event.env_file(render_event.site_environment(site)),
                        "SECRET_MOUNTS": site.secrets.job_mounts(),
                        "MIGRATE_TIMEOUT": MIGRATE_TIMEOUT_SECONDS,
                        "SNAPSHOT_TIMEOUT": SNAPSHOT_TIMEOUT_SECONDS,
                    }
                ),
            ),
        )

    def _static_step(self) -> remote.Command:
        event_dir = layout.event_dir(self._event.name)
        return self._step(
            "static",
            [self._args.host_ready, self._args.registry_login],
            Script(
                "event_static.sh",
                pulumi.Output.from_input(self._args.image_ref).apply(
                    lambda image: {
                        "IMAGE": image,
                        "RELEASE": release_id(image),
                        "EVENT_DIR": event_dir,
                        "STATIC_DIR": layout.static_dir(self._event.name),
                        # Its image is the live release, whose files stay served.
                        "SERVICE": layout.service_name(self._event.name),
                    }
                ),
            ),
            Script("event_static_remove.sh", {"EVENT_DIR": event_dir}),
        )

    def _media_step(self) -> remote.Command:
        media_dir = layout.media_dir(self._event.name)
        return self._step(
            "media",
            [self._args.host_ready],
            Script("event_media.sh", {"MEDIA_DIR": media_dir, "SITE_UID": render_event.SITE_UID}),
            # Kept with the database, and dropped with it.
            (
                Script("event_media_remove.sh", {"MEDIA_DIR": media_dir})
                if self._event.drop_database_on_delete
                else None
            ),
        )

    def _stack_step(
        self, spec: pulumi.Output[render_event.SiteSpec], after: list[pulumi.Resource]
    ) -> remote.Command:
        event = self._event.name
        ports = event_ports(self._event.port)
        servers_files = {
            "SERVERS_FILE": layout.nginx_servers_file(event),
            "MANAGER_SERVERS_FILE": layout.nginx_servers_file(event, manager_only=True),
        }
        # The manager's task at its address on docker_gwbridge; with more replicas, the others on
        # the workers, at their addresses.
        manager = (self._args.stack.swarm_gateway,)
        workers = self._args.workers if self._event.replicas > 1 else ()

        def params(values: list) -> dict[str, str | int]:
            site, worker_nodes = values[0], tuple(values[1:])
            return {
                "EVENT": event,
                "SERVICE": layout.service_name(event),
                "STACK_FILE": layout.stack_file(event),
                "STACK_TEXT": render_event.stack_file(site),
                # Each release publishes the one the live release does not hold.
                "PORTS": " ".join(map(str, ports)),
                # Where event_stack.sh asks a new release's task whether it serves yet.
                "MANAGER_ADDRESS": manager[0],
                # Nginx's servers of the event once a release is live on either port.
                **servers_files,
                # (SERVERS_*: every node with a task; MANAGER_SERVERS_*: the manager alone.)
                **{
                    f"{prefix}SERVERS_{which}": render_event.nginx_upstream_servers(
                        manager, *order, workers=nodes
                    )
                    for prefix, nodes in (("", worker_nodes), ("MANAGER_", ()))
                    for which, order in (("FIRST", ports), ("SECOND", ports[::-1]))
                },
                "DEPLOY_TIMEOUT": DEPLOY_TIMEOUT_SECONDS,
                # Every current secret, the migration job's admin password included.
                "SECRETS_IN_USE": " ".join(site.secrets.names()),
            }

        return self._step(
            "stack",
            after,
            Script("event_stack.sh", pulumi.Output.all(spec, *workers).apply(params)),
            Script(
                "event_stack_remove.sh",
                {
                    "EVENT": event,
                    "STACK_FILE": layout.stack_file(event),
                    **servers_files,
                    "REMOVE_TIMEOUT": REMOVE_TIMEOUT_SECONDS,
                },
            ),
        )

    def _nginx_step(self, stack: remote.Command) -> remote.Command:
        event = self._event
        owner = {
            "EVENT": event.name,
            "LOCATIONS_DIR": layout.NGINX_LOCATIONS_DIR,
            "UPSTREAMS_DIR": layout.NGINX_UPSTREAMS_DIR,
            "OWNER_LINE": render_event.nginx_location_owner(event.name),
        }
        return self._step(
            "nginx",
            [stack],
            Script(
                "event_nginx.sh",
                {
                    **owner,
                    "FILE_NAME": layout.nginx_file_name(event.path),
                    "UPSTREAM_TEXT": render_event.nginx_upstream(event.name),
                    "LOCATION_TEXT": render_event.nginx_location(
                        event.name,
                        event.path,
                        static_dir=layout.static_dir(event.name),
                        media_dir=f"{layout.media_dir(event.name)}/",
                        upload_limit_mb=event.upload_limit_mb,
                        maintenance_flag=layout.maintenance_flag(event.name),
                    ),
                },
            ),
            Script("event_nginx_remove.sh", owner),
        )
