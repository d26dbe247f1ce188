"""django-swarm: several Django event sites on a Docker swarm: one server, and workers if set.

Read top to bottom: the validated stack config, the servers, their provisioning, then the sites.
"""

import pulumi

from config import load_config
from event import EventSite, EventSiteArgs
from host import Host
from image import SiteImage, SiteImageArgs
from server import Server
from tls_gate import tls_active
from worker import Worker, WorkerArgs

cfg = load_config()
server = Server("server", cfg)
# HTTPS only once the domain leads to the server (certbot needs that); plain HTTP until then.
tls = tls_active(cfg.domain, cfg.tls_enabled, server.public_address)
host = Host("host", cfg, server, tls)
workers = [
    Worker(node.name, WorkerArgs(node, server.connection, server.private_address, host.ready))
    for node in server.workers
]

# --- Event sites (part 2): the image, then one EventSite per event, after host.ready. ---
image = SiteImage("app", SiteImageArgs(cfg, server.connection, host.ready))
sites = {
    event.name: EventSite(
        event.name,
        EventSiteArgs(
            event=event,
            stack=cfg,
            connection=server.connection,
            image_ref=image.repo_digest,
            public_address=server.public_address,
            tls=tls,
            host_ready=host.ready,
            registry_login=image.registry_login,
            manager_address=server.private_address,
            workers=[node.address for node in server.workers],
            workers_ready=[worker.ready for worker in workers],
        ),
    )
    for event in cfg.events
}
# --- end of event sites ---

pulumi.export("publicAddress", server.public_address)
pulumi.export("privateAddress", server.private_address)
pulumi.export("workerAddresses", [node.address for node in server.workers])
pulumi.export("sshCommand", server.ssh_command())
# What the server must present over SSH; compare it with the droplet console's (docs/how-to.md).
pulumi.export("sshHostKey", server.host_key)
pulumi.export("imageDigest", image.repo_digest)
pulumi.export("eventUrls", {name: site.url for name, site in sites.items()})
pulumi.export("https", tls)
# Read with: pulumi stack output eventAdmins --show-secrets
pulumi.export(
    "eventAdmins", pulumi.Output.secret({n: site.admin_login for n, site in sites.items()})
)
# Where the backups go, and restic's password, without which they cannot be read
# (docs/backups.md): pulumi stack output resticPassword --show-secrets
pulumi.export("backupRepository", host.backup_repository)
pulumi.export("resticPassword", pulumi.Output.secret(host.restic_password))
if server.droplet_urn is not None:
    # The droplet is protected; tearing it down starts with:
    # pulumi state unprotect "$(pulumi stack output dropletUrn)"
    pulumi.export("dropletUrn", server.droplet_urn)
if server.generated_private_key is not None:
    # Log in with: pulumi stack output deployPrivateKey --show-secrets > key && chmod 600 key
    pulumi.export("deployPrivateKey", pulumi.Output.secret(server.generated_private_key))
