"""EventSite: one event's site on the host, as a chain of remote steps.

What runs on the host when event X is deployed, in order (each a script in ``scripts/``):

1. ``event_database.sh``  its database and role, with a generated password (sent as its SCRAM
                          verifier)
2. ``event_secrets.sh``   swarm secrets for the Django secret key and that password (versioned)
   ``event_network.sh``   its overlay network, through which its tasks reach PostgreSQL
3. ``event_migrate.sh``   the new image's migrations, once, as a swarm job with a timeout; the same
                          job makes the event's administrator (``manage.py ensure_admin``)
4. ``event_static.sh``    the new image's static files, with the live release's, switched in at once
5. ``event_stack.sh``     the swarm stack (``render_event.stack_file``), checked after the rollout
6. ``event_nginx.sh``     its Nginx locations (``render_event.nginx_location``), then a reload

Each step's ``delete`` undoes it when the event leaves the config (or on ``pulumi destroy``); the
database is only dropped when the event sets ``dropDatabaseOnDelete``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_command import remote

import layout
import render_event
from config import EventConfig, StackConfig
from remote_script import render_script, secret_stdin

# Upper bounds for the waits on the host; a step that hits one fails with what it saw.
MIGRATE_TIMEOUT_SECONDS = 600
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


class EventSite(pulumi.ComponentResource):
    """One event: database, secrets, migration, static files, swarm stack, Nginx location."""

    url: pulumi.Output[str]
    admin_login: pulumi.Output[dict]

    def __init__(self, name: str, args: EventSiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("django-swarm:index:EventSite", name, None, opts)
        event, stack = args.event, args.stack
        database = layout.database_name(event.name)
        event_dir = layout.event_dir(event.name)
        public_host = pulumi.Output.from_input(stack.domain or args.public_address)

        def step(suffix: str, depends_on: list[pulumi.Resource], **kwargs) -> remote.Command:
            """A remote step of this event; a step that reads secrets from stdin logs nothing."""
            secret = "stdin" in kwargs
            return remote.Command(
                f"{name}-{suffix}",
                connection=args.connection,
                add_previous_output_in_env=False,
                logging=remote.Logging.NONE if secret else None,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=depends_on,
                    additional_secret_outputs=["stdout", "stderr"] if secret else None,
                ),
                **kwargs,
            )

        child = pulumi.ResourceOptions(parent=self)
        db_password = random.RandomPassword(f"{name}-db-password", length=40, opts=child)
        # Django's check --deploy wants at least 50 characters with some variety.
        secret_key = random.RandomPassword(f"{name}-secret-key", length=64, opts=child)
        # The event's administrator, made by the migration job (`manage.py ensure_admin`).
        admin_password = random.RandomPassword(
            f"{name}-admin-password", length=32, special=False, opts=child
        )

        database_step = step(
            "database",
            [args.host_ready],
            create=render_script("event_database.sh", {"DATABASE": database}),
            delete=(
                render_script("event_database_drop.sh", {"DATABASE": database})
                if event.drop_database_on_delete
                else None
            ),
            stdin=secret_stdin(db_password.result.apply(render_event.scram_verifier)),
        )

        # eventSecrets of this event, in the order of EventSecrets.names().
        settings = sorted(stack.event_secrets.get(event.name, {}).items())
        setting_versions = [
            pulumi.Output.unsecret(
                pulumi.Output.all(secret_key.result, value).apply(
                    lambda kv, setting=setting: render_event.setting_version(kv[0], setting, kv[1])
                )
            )
            for setting, value in settings
        ]
        secrets = pulumi.Output.all(
            secret_version(secret_key.result),
            secret_version(db_password.result),
            secret_version(admin_password.result),
            *setting_versions,
        ).apply(
            lambda versions: render_event.EventSecrets(
                secret_key=render_event.secret_name(event.name, "secret_key", versions[0]),
                db_password=render_event.secret_name(event.name, "db_password", versions[1]),
                admin_password=render_event.secret_name(event.name, "admin_password", versions[2]),
                settings={
                    setting: render_event.secret_name(event.name, "setting", version)
                    for (setting, _), version in zip(settings, versions[3:], strict=True)
                },
            )
        )
        secrets_step = step(
            "secrets",
            [args.host_ready],
            create=secrets.apply(
                lambda names: render_script(
                    "event_secrets.sh", {"EVENT": event.name, "SECRETS": " ".join(names.names())}
                )
            ),
            delete=render_script("event_secrets_remove.sh", {"EVENT": event.name}),
            stdin=secret_stdin(
                secret_key.result,
                db_password.result,
                admin_password.result,
                *[value for _, value in settings],
            ),
        )

        network = render_event.network_name(event.name)
        network_step = step(
            "network",
            [args.host_ready],
            create=render_script("event_network.sh", {"EVENT": event.name, "NETWORK": network}),
            delete=render_script(
                "event_network_remove.sh",
                {"NETWORK": network, "REMOVE_TIMEOUT": REMOVE_TIMEOUT_SECONDS},
            ),
        )

        spec = pulumi.Output.all(args.image_ref, public_host, secrets, args.tls).apply(
            lambda values: render_event.SiteSpec(
                event=event.name,
                path=event.path,
                port=event.port,
                replicas=event.replicas,
                image=values[0],
                db_host=stack.swarm_gateway,
                public_host=values[1],
                tls=values[3],
                publish_mode=stack.publish_mode,
                secrets=values[2],
                settings=event.settings,
            )
        )

        migrate_step = step(
            "migrate",
            [database_step, secrets_step, network_step, args.registry_login],
            create=spec.apply(
                lambda site: render_script(
                    "event_migrate.sh",
                    {
                        "EVENT": event.name,
                        "IMAGE": site.image,
                        "NETWORK": network,
                        "ENV_FILE_TEXT": render_event.env_file(render_event.site_environment(site)),
                        "SECRET_MOUNTS": site.secrets.job_mounts(),
                        "MIGRATE_TIMEOUT": MIGRATE_TIMEOUT_SECONDS,
                    },
                )
            ),
        )

        static_step = step(
            "static",
            [args.host_ready, args.registry_login],
            create=pulumi.Output.from_input(args.image_ref).apply(
                lambda image: render_script(
                    "event_static.sh",
                    {
                        "IMAGE": image,
                        "RELEASE": release_id(image),
                        "EVENT_DIR": event_dir,
                        "STATIC_DIR": layout.static_dir(event.name),
                        # Its image is the live release, whose files stay served.
                        "SERVICE": layout.service_name(event.name),
                    },
                )
            ),
            delete=render_script("event_static_remove.sh", {"EVENT_DIR": event_dir}),
        )

        stack_step = step(
            "stack",
            [migrate_step, static_step, secrets_step, network_step],
            create=spec.apply(
                lambda site: render_script(
                    "event_stack.sh",
                    {
                        "EVENT": event.name,
                        "SERVICE": layout.service_name(event.name),
                        "STACK_FILE": layout.stack_file(event.name),
                        "STACK_TEXT": render_event.stack_file(site),
                        "DEPLOY_TIMEOUT": DEPLOY_TIMEOUT_SECONDS,
                        # Every current secret, the migration job's admin password included.
                        "SECRETS_IN_USE": " ".join(site.secrets.names()),
                    },
                )
            ),
            delete=render_script(
                "event_stack_remove.sh",
                {
                    "EVENT": event.name,
                    "STACK_FILE": layout.stack_file(event.name),
                    "REMOVE_TIMEOUT": REMOVE_TIMEOUT_SECONDS,
                },
            ),
        )

        owner = {
            "EVENT": event.name,
            "LOCATIONS_DIR": layout.NGINX_LOCATIONS_DIR,
            "OWNER_LINE": render_event.nginx_location_owner(event.name),
        }
        step(
            "nginx",
            [stack_step],
            create=render_script(
                "event_nginx.sh",
                {
                    **owner,
                    "LOCATION_FILE": layout.nginx_location_file(event.path),
                    "LOCATION_TEXT": render_event.nginx_location(
                        event.name, event.path, event.port, layout.static_dir(event.name)
                    ),
                },
            ),
            delete=render_script("event_nginx_remove.sh", owner),
        )

        self.url = pulumi.Output.all(public_host, args.tls).apply(
            lambda values: f"{'https' if values[1] else 'http'}://{values[0]}{event.path}/"
        )
        # Secret: the administrator's login (README, "Log in to an event's admin").
        self.admin_login = pulumi.Output.secret(
            {
                "url": self.url.apply(lambda url: f"{url}admin/"),
                "username": render_event.ADMIN_USERNAME,
                "password": admin_password.result,
            }
        )
        self.register_outputs({"url": self.url, "admin_login": self.admin_login})
