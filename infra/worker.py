"""A worker of the swarm: a server that runs event tasks and nothing else (no PostgreSQL, no
Nginx, no data). Its steps: wait until booted, Docker, PostgreSQL on the manager admits its
address, join the swarm with a token read from the manager (a secret, sent on stdin), then wait on
the manager until the node is ready. Removing a worker runs those steps' removals in reverse, after
every update of the run (Pulumi deletes last): the manager drains the node (its tasks start on the
other nodes) and takes it out of the swarm, the worker leaves it, and only then does PostgreSQL stop
admitting the worker's address, so its tasks keep their database until they have stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from host import BOOT_TIMEOUT_SECONDS
from remote_script import Script, remote_step
from server import WorkerNode

# Bounded waits on the manager: a worker that does not come up, or whose tasks do not stop, fails
# its step with a message rather than hanging `pulumi up`.
READY_TIMEOUT_SECONDS = 120
DRAIN_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class WorkerArgs:
    node: WorkerNode
    manager_connection: remote.ConnectionArgs
    # Where the worker joins the swarm (the manager's address on the network they share).
    manager_address: pulumi.Input[str]
    # The manager's provisioning: its swarm exists once this is done.
    manager_ready: pulumi.Resource


class Worker(pulumi.ComponentResource):
    # The node is in the swarm and ready for tasks.
    ready: pulumi.Resource

    def __init__(
        self, name: str, args: WorkerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-swarm:index:Worker", name, None, opts)
        node = args.node
        booted = remote_step(
            f"{name}-wait-ready",
            node.connection,
            Script("host_wait_ready.sh", {"BOOT_TIMEOUT_SECONDS": BOOT_TIMEOUT_SECONDS}),
            parent=self,
        )
        docker = remote_step(
            f"{name}-packages",
            node.connection,
            Script("host_packages.sh", {"INSTALL_CERTBOT": 0, "ROLE": "worker"}),
            parent=self,
            depends_on=[booted],
        )
        token = remote_step(
            f"{name}-join-token",
            args.manager_connection,
            Script("manager_join_token.sh"),
            parent=self,
            depends_on=[args.manager_ready],
            secret_output=True,
        )
        admitted = remote_step(
            f"{name}-postgres",
            args.manager_connection,
            Script("worker_postgres.sh", {"WORKER": name, "WORKER_ADDRESS": node.address}),
            Script("worker_postgres_remove.sh", {"WORKER": name}),
            parent=self,
            depends_on=[args.manager_ready],
        )
        joined = remote_step(
            f"{name}-join",
            node.connection,
            Script(
                "worker_join.sh",
                {"MANAGER_ADDRESS": args.manager_address, "ADVERTISE_ADDRESS": node.address},
            ),
            Script("worker_leave.sh"),
            secrets=[token.stdout.apply(str.strip)],
            parent=self,
            # Admitted first: once the node has joined, a task may start there at any time.
            depends_on=[docker, token, admitted],
        )
        # The node's id is no secret, though the step that printed it read one.
        node_params: dict[str, pulumi.Input[str]] = {
            "NODE_ID": pulumi.Output.unsecret(joined.stdout).apply(str.strip),
            "WORKER": name,
        }
        self.ready = remote_step(
            f"{name}-node",
            args.manager_connection,
            Script("worker_node.sh", {**node_params, "READY_TIMEOUT": READY_TIMEOUT_SECONDS}),
            Script(
                "worker_node_remove.sh", {**node_params, "DRAIN_TIMEOUT": DRAIN_TIMEOUT_SECONDS}
            ),
            parent=self,
            depends_on=[joined],
        )
        self.register_outputs({})
