"""django-swarm: several Django event sites on one Docker swarm host.

Read top to bottom: the validated stack config, the server, its provisioning, then the sites.
"""

import pulumi
from config import load_config
from host import Host
from server import Server

cfg = load_config()
server = Server("server", cfg)
host = Host("host", cfg, server)

# --- Event sites (part 2: image and one EventSite per event) go here, after host.ready. ---

pulumi.export("publicAddress", server.public_address)
pulumi.export("privateAddress", server.private_address)
pulumi.export("sshCommand", server.ssh_command())
if server.generated_private_key is not None:
    # Log in with: pulumi stack output deployPrivateKey --show-secrets > key && chmod 600 key
    pulumi.export("deployPrivateKey", pulumi.Output.secret(server.generated_private_key))
