"""The servers the swarm runs on: a new DigitalOcean droplet (the manager), its workers and their
surroundings, or existing Debian hosts reachable over SSH. Either way the rest of the program sees
the same things: how to reach the manager over SSH, its public address, the address the swarm
advertises, and for each worker its SSH connection and its address on the shared network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_digitalocean as do
import pulumi_tls as tls
from pulumi_command import remote

from config import StackConfig, WorkerHost, event_ports
from remote_script import Script, remote_step

ANYWHERE = ["0.0.0.0/0", "::/0"]
# The swarm's own ports (manager API, gossip, VXLAN); open only inside the VPC for more nodes.
SWARM_PORTS = (("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789"))
# A new droplet takes a minute or two before sshd answers; the provider's default (10 dial
# errors, about 7 s) would fail the first `pulumi up`. 60 attempts of up to 10 s each wait for
# a booting droplet; an existing host is up already, so a wrong address fails sooner.
DIAL = {"digitalocean": (60, 10), "existing": (10, 10)}
# Every host step installs packages and writes system files: the program logs in as root.
SSH_USER = "root"


@dataclass(frozen=True)
class WorkerNode:
    """A server that joins the swarm as a worker: how to reach it over SSH, and its address on
    the network it shares with the manager (the VPC)."""

    name: str
    connection: remote.ConnectionArgs
    address: pulumi.Output[str]


@dataclass(frozen=True)
class PostgresVolume:
    """The block-storage volume that keeps PostgreSQL's data when the droplet is replaced."""

    device: str  # stable device path of the attached volume
    mount_point: str  # where DigitalOcean's own automount would put it, so both agree
    attachment: pulumi.Resource  # the host may mount it only after this exists


def resource_name(stack: str, suffix: str) -> str:
    """A DigitalOcean name (lower case, digits, '-') unique per stack of this project."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"{pulumi.get_project()}-{stack}-{suffix}".lower())
    return base.strip("-")[:63]


class Server(pulumi.ComponentResource):
    connection: remote.ConnectionArgs
    public_address: pulumi.Output[str]
    private_address: pulumi.Output[str]
    postgres_volume: PostgresVolume | None
    generated_private_key: pulumi.Output[str] | None
    # The host key every connection requires ("<type> <base64>").
    host_key: pulumi.Output[str]
    # What `pulumi state unprotect` takes before the droplet may go (digitalocean only).
    droplet_urn: pulumi.Output[str] | None
    # DNS records certbot needs before it can obtain a certificate.
    dns_records: list[pulumi.Resource]
    # The swarm's workers (config `workers`), in order.
    workers: list[WorkerNode]

    def __init__(
        self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-swarm:index:Server", name, None, opts)
        self.ssh_port = 22 if cfg.target == "digitalocean" else cfg.ssh_port
        self.postgres_volume = None
        self.generated_private_key = None
        self.dns_records = []
        self.droplet_urn = None
        self._dial = DIAL[cfg.target]
        if cfg.target == "digitalocean":
            self._droplet(name, cfg)
        else:
            self.public_address = pulumi.Output.from_input(cfg.host or "")
            self.private_address = pulumi.Output.from_input(cfg.advertise_address or "")
            self._private_key = cfg.ssh_private_key
            self.workers = [self._existing_worker(name, worker) for worker in cfg.workers.hosts]
        # Every step connects through this: a server that presents another key is refused.
        self.connection = self._pinned_connection(
            name, self.public_address, self.ssh_port, cfg.ssh_host_key
        )
        self.host_key = pulumi.Output.from_input(self.connection.host_key)
        self.register_outputs(
            {
                "public_address": self.public_address,
                "private_address": self.private_address,
                "host_key": self.host_key,
            }
        )

    def _existing_worker(self, name: str, worker: WorkerHost) -> WorkerNode:
        """A worker named by its address, so that removing one from the list leaves the others'
        names (and so their steps) as they were."""
        worker_name = f"worker-{re.sub(r'[^0-9a-z]+', '-', worker.advertise_address.lower())}"
        connection = self._pinned_connection(
            f"{name}-{worker_name}", worker.host, worker.ssh_port, worker.ssh_host_key
        )
        return WorkerNode(
            worker_name, connection, pulumi.Output.from_input(worker.advertise_address)
        )

    def _connection(
        self, host: pulumi.Input[str], port: int, host_key: pulumi.Input[str] | None
    ) -> remote.ConnectionArgs:
        error_limit, dial_timeout = self._dial
        return remote.ConnectionArgs(
            host=host,
            port=port,
            user=SSH_USER,
            private_key=self._private_key,
            dial_error_limit=error_limit,
            per_dial_timeout=dial_timeout,
            host_key=host_key,
        )

    def _pinned_connection(
        self, name: str, host: pulumi.Input[str], port: int, host_key: str | None
    ) -> remote.ConnectionArgs:
        """The connection to ``host`` that requires ``host_key``, or else the ed25519 host key
        read once over a connection that checks none (step ``<name>-host-key``).

        Trust on first use, as ssh's known_hosts: that step runs when the server is new (or its
        address changes), and every later connection must meet the key it read.
        """
        if host_key is not None:
            return self._connection(host, port, host_key)
        first_contact = remote_step(
            f"{name}-host-key",
            self._connection(host, port, None),
            Script("host_key.sh"),
            parent=self,
        )
        return self._connection(host, port, first_contact.stdout)

    def ssh_command(self) -> pulumi.Output[str]:
        """The command line a person uses to log in to the server."""
        port = "" if self.ssh_port == 22 else f"-p {self.ssh_port} "
        return self.public_address.apply(lambda address: f"ssh {port}{SSH_USER}@{address}")

    def _droplet(self, name: str, cfg: StackConfig) -> None:
        """Create the droplet, its workers and their surroundings."""
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        if cfg.ssh_public_key is None:
            deploy_key = tls.PrivateKey(f"{name}-deploy-key", algorithm="ED25519", opts=child)
            public_key = deploy_key.public_key_openssh
            private_key = deploy_key.private_key_openssh
            self.generated_private_key = private_key
        else:
            public_key = pulumi.Output.from_input(cfg.ssh_public_key)
            private_key = cfg.ssh_private_key
        self._private_key = private_key  # the workers' connections use it too
        ssh_key = do.SshKey(
            f"{name}-ssh-key",
            name=resource_name(stack, "deploy"),
            public_key=public_key.apply(str.strip),
            opts=child,
        )
        vpc = do.Vpc(
            f"{name}-vpc",
            name=resource_name(stack, "vpc"),
            region=cfg.region,
            description="django-swarm: private network of the swarm nodes",
            opts=child,
        )
        droplet = do.Droplet(
            f"{name}-droplet",
            name=resource_name(stack, "node-1"),
            image=cfg.droplet_image,
            region=cfg.region,
            size=cfg.droplet_size,
            ssh_keys=[ssh_key.id],
            vpc_uuid=vpc.id,
            monitoring=True,
            graceful_shutdown=True,
            tags=["django-swarm", resource_name(stack, "node")],
            # A changed image, key or region would replace the droplet: create the new one,
            # move the reserved IP onto it before any step ran there, and delete the old one
            # with whatever data it holds. Refused instead; docs/how-to.md, "Move to a new
            # droplet", is the way.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.droplet_urn = droplet.urn
        droplet_id = droplet.id.apply(int)
        project_resources = [droplet.droplet_urn]
        # Workers hold no data (PostgreSQL, uploads and backups stay on this droplet): not
        # protected, and replaced like any stateless machine.
        worker_droplets = [
            do.Droplet(
                f"{name}-worker-{i}",
                name=resource_name(stack, f"worker-{i}"),
                image=cfg.droplet_image,
                region=cfg.region,
                size=cfg.workers.size or cfg.droplet_size,
                ssh_keys=[ssh_key.id],
                vpc_uuid=vpc.id,
                monitoring=True,
                graceful_shutdown=True,
                tags=["django-swarm", resource_name(stack, "node")],
                opts=child,
            )
            for i in range(1, cfg.workers.count + 1)
        ]
        self.workers = [
            WorkerNode(
                f"worker-{i}",
                self._pinned_connection(f"{name}-worker-{i}", worker.ipv4_address, 22, None),
                worker.ipv4_address_private,
            )
            for i, worker in enumerate(worker_droplets, start=1)
        ]
        project_resources += [worker.droplet_urn for worker in worker_droplets]

        if cfg.postgres_volume_gb > 0:
            volume_name = resource_name(stack, "pgdata")
            volume = do.Volume(
                f"{name}-postgres-volume",
                name=volume_name,
                region=cfg.region,
                size=cfg.postgres_volume_gb,
                initial_filesystem_type="ext4",
                description="django-swarm: PostgreSQL data of every event",
                # Every event's data lives here: `pulumi destroy` must not take it along.
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
            attachment = do.VolumeAttachment(
                f"{name}-postgres-volume-attachment",
                droplet_id=droplet_id,
                volume_id=volume.id,
                opts=child,
            )
            self.postgres_volume = PostgresVolume(
                device=f"/dev/disk/by-id/scsi-0DO_Volume_{volume_name}",
                mount_point=f"/mnt/{volume_name.replace('-', '_')}",
                attachment=attachment,
            )
            project_resources.append(volume.volume_urn)

        if cfg.reserved_ip:
            reserved = do.ReservedIp(f"{name}-reserved-ip", region=cfg.region, opts=child)
            assignment = do.ReservedIpAssignment(
                f"{name}-reserved-ip-assignment",
                ip_address=reserved.ip_address,
                droplet_id=droplet_id,
                opts=child,
            )
            # The assignment's output, not the IP's: SSH waits until the IP leads to the droplet.
            self.public_address = assignment.ip_address
            project_resources.append(reserved.reserved_ip_urn)
        else:
            self.public_address = droplet.ipv4_address
        self.private_address = droplet.ipv4_address_private

        do.Firewall(
            f"{name}-firewall",
            name=resource_name(stack, "firewall"),
            droplet_ids=[droplet_id, *(worker.id.apply(int) for worker in worker_droplets)],
            inbound_rules=_inbound_rules(cfg, vpc.ip_range),
            outbound_rules=_outbound_rules(),
            opts=child,
        )
        if cfg.manage_dns and cfg.domain:
            zone, record = dns_zone_and_record(cfg.domain)
            self.dns_records.append(
                do.DnsRecord(
                    f"{name}-dns-a",
                    domain=zone,
                    name=record,
                    type="A",
                    value=self.public_address,
                    ttl=300,
                    opts=child,
                )
            )
        do.Project(
            f"{name}-project",
            name=resource_name(stack, "project"),
            description="django-swarm event sites",
            purpose="Web Application",
            environment="Production",
            resources=project_resources,
            opts=child,
        )


def dns_zone_and_record(domain: str) -> tuple[str, str]:
    """The DigitalOcean zone holding ``domain`` and the record name inside it.

    ``ieee.example.org`` is record ``ieee`` in zone ``example.org``; a two-label domain is the
    zone's apex (``@``).
    """
    labels = domain.split(".")
    if len(labels) <= 2:
        return domain, "@"
    return ".".join(labels[1:]), labels[0]


def _inbound_rules(
    cfg: StackConfig, vpc_range: pulumi.Output[str]
) -> list[do.FirewallInboundRuleArgs]:
    """SSH from the allowed CIDRs, HTTP(S) from anywhere; the rest only from inside the VPC.

    Ports Docker publishes bypass the host's own packet filter, so this cloud firewall is what
    keeps the event services' ports off the internet.
    """
    rules = [
        do.FirewallInboundRuleArgs(
            protocol="tcp", port_range="22", source_addresses=list(cfg.ssh_allowed_cidrs)
        ),
        do.FirewallInboundRuleArgs(protocol="tcp", port_range="80", source_addresses=ANYWHERE),
        do.FirewallInboundRuleArgs(protocol="tcp", port_range="443", source_addresses=ANYWHERE),
    ]
    inside = [vpc_range]
    rules += [
        do.FirewallInboundRuleArgs(protocol=protocol, port_range=port, source_addresses=inside)
        for protocol, port in SWARM_PORTS
    ]
    rules += [
        do.FirewallInboundRuleArgs(
            protocol="tcp",
            port_range=f"{min(event_ports(event.port))}-{max(event_ports(event.port))}",
            source_addresses=inside,
        )
        for event in cfg.events
    ]
    # The workers' tasks reach PostgreSQL on the manager (pg_hba admits only their addresses).
    # Open inside the VPC with or without workers, like the swarm's ports: Pulumi updates the
    # firewall before it deletes a worker, so closing it with the last worker would cut that
    # worker's tasks off while they still serve, before the drain.
    rules.append(
        do.FirewallInboundRuleArgs(protocol="tcp", port_range="5432", source_addresses=inside)
    )
    return rules


def _outbound_rules() -> list[do.FirewallOutboundRuleArgs]:
    """Everything outbound: a cloud firewall with no outbound rule drops apt, DNS, NTP, the
    registry and Let's Encrypt, and a site may call any outside API or mail server."""
    return [
        do.FirewallOutboundRuleArgs(
            protocol="tcp", port_range="1-65535", destination_addresses=ANYWHERE
        ),
        do.FirewallOutboundRuleArgs(
            protocol="udp", port_range="1-65535", destination_addresses=ANYWHERE
        ),
        do.FirewallOutboundRuleArgs(protocol="icmp", destination_addresses=ANYWHERE),
    ]
