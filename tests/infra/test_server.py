"""The server: DigitalOcean resources for the example production config, or none for an
existing host; firewall, volume protection, SSH connection and secrets."""

from __future__ import annotations

import collections
import json

import pytest
from conftest import (
    EXISTING_PRIVATE_KEY,
    REGISTRY_PASSWORD,
    openssh_public_key_line,
    step_program,
)

import config
from harness import MOCK_HOST_KEY, UNKNOWN, VPC_RANGE

DO = "digitalocean:index/"
ANYWHERE = {"0.0.0.0/0", "::/0"}


def resource_counts(run, prefixes=("digitalocean:", "tls:")):
    return collections.Counter(r.type for r in run.resources if r.type.startswith(prefixes))


@pytest.mark.parametrize("preview", [False, True])
def test_prod_config_creates_exactly_these_resources(prod_config, preview):
    run = prod_config.run(preview=preview)
    assert resource_counts(run) == {
        "tls:index/privateKey:PrivateKey": 1,
        f"{DO}sshKey:SshKey": 1,
        f"{DO}vpc:Vpc": 1,
        f"{DO}droplet:Droplet": 1,
        f"{DO}volume:Volume": 1,
        f"{DO}volumeAttachment:VolumeAttachment": 1,
        f"{DO}reservedIp:ReservedIp": 1,
        f"{DO}reservedIpAssignment:ReservedIpAssignment": 1,
        f"{DO}firewall:Firewall": 1,
        f"{DO}project:Project": 1,
    }
    server = run.named("server")
    assert server.type == "django-swarm:index:Server"
    assert all(r.parent == server.urn for r in run.resources if r.type.startswith(DO))


def test_droplet_is_debian_13_in_the_vpc_with_the_deploy_key(prod_config):
    run = prod_config.run()
    droplet = run.named("server-droplet").inputs
    assert droplet["image"] == "debian-13-x64"
    assert (droplet["region"], droplet["size"]) == ("fra1", "s-1vcpu-2gb")
    assert droplet["vpcUuid"] == run.named("server-vpc").id
    assert droplet["sshKeys"] == [run.named("server-ssh-key").id]
    key = run.named("server-deploy-key")
    assert key.inputs["algorithm"] == "ED25519"
    assert (
        run.named("server-ssh-key").inputs["publicKey"]
        == "ssh-ed25519 AAAAC3Nza-mock-server-deploy-key"
    )


def firewall_rules(run):
    firewall = run.named("server-firewall").inputs
    return firewall["inboundRules"], firewall["outboundRules"]


@pytest.mark.parametrize("preview", [False, True])
def test_firewall_opens_only_ssh_and_web_to_the_outside(prod_config, preview):
    run = prod_config.run(preview=preview)
    inbound, outbound = firewall_rules(run)
    # Before the VPC exists (preview) its range is unknown, but the rules still refer to it.
    vpc_range = UNKNOWN if preview else VPC_RANGE
    public = {
        (r["protocol"], r["portRange"]): set(r["sourceAddresses"])
        for r in inbound
        if r["sourceAddresses"] != [vpc_range]
    }
    assert public == {("tcp", "22"): ANYWHERE, ("tcp", "80"): ANYWHERE, ("tcp", "443"): ANYWHERE}
    inside = {
        (r["protocol"], r["portRange"]) for r in inbound if r["sourceAddresses"] == [vpc_range]
    }
    app_ports = {
        ("tcp", f"{config.default_port(e['name'])}-{config.default_port(e['name']) + 1}")
        for e in prod_config.values["events"]
    }
    swarm_ports = {("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789")}
    # PostgreSQL for the workers' tasks (pg_hba admits only their addresses).
    assert inside == swarm_ports | app_ports | {("tcp", "5432")}
    assert {r["protocol"] for r in outbound} == {"tcp", "udp", "icmp"}
    assert all(set(r["destinationAddresses"]) == ANYWHERE for r in outbound)
    if not preview:
        droplet_id = int(run.named("server-droplet").id)
        assert run.named("server-firewall").inputs["dropletIds"] == [droplet_id]


def test_ssh_port_follows_the_allowed_cidrs(prod_config):
    run = prod_config.with_(sshAllowedCidrs=["192.0.2.0/24"]).run()
    inbound, _ = firewall_rules(run)
    ssh = [r for r in inbound if r["portRange"] == "22"]
    assert [r["sourceAddresses"] for r in ssh] == [["192.0.2.0/24"]]


def test_postgres_volume_is_protected_attached_and_in_the_project(prod_config):
    run = prod_config.run()
    volume = run.named("server-postgres-volume")
    assert volume.protect
    assert volume.inputs["size"] == 10
    assert volume.inputs["initialFilesystemType"] == "ext4"
    droplet = run.named("server-droplet")
    # And restic's password, without which no backup can be read.
    protected = {volume.name, droplet.name, "host-restic-password"}
    assert {r.name for r in run.resources if r.protect} == protected
    attachment = run.named("server-postgres-volume-attachment").inputs
    assert attachment["dropletId"] == int(run.named("server-droplet").id)
    assert attachment["volumeId"] == volume.id
    project = run.named("server-project").inputs
    assert set(project["resources"]) == {
        "do:droplet:server-droplet",
        "do:volume:server-postgres-volume",
        "do:reservedip:server-reserved-ip",
    }


@pytest.mark.parametrize("volume_gb", [10, 0])
def test_the_droplet_is_protected_so_no_change_can_replace_it(prod_config, volume_gb):
    # Replacing it would move the reserved IP onto a bare droplet before any step ran there,
    # attach the volume while the old droplet still has it, and (without a volume) delete the
    # data: the engine refuses to replace or delete a protected resource instead.
    run = prod_config.with_(postgresVolumeGb=volume_gb).run()
    droplet = run.named("server-droplet")
    assert droplet.protect
    # What the teardown (docs/how-to.md) unprotects:
    # pulumi state unprotect "$(pulumi stack output …)"
    assert run.exports["dropletUrn"] == droplet.urn


def test_no_volume_when_size_is_zero(prod_config):
    run = prod_config.with_(postgresVolumeGb=0).run()
    assert not run.of_type(f"{DO}volume:Volume")
    assert not run.of_type(f"{DO}volumeAttachment:VolumeAttachment")


def test_reserved_ip_is_the_public_address(prod_config):
    run = prod_config.run()
    assert run.exports["publicAddress"] == "203.0.113.20"
    assert run.exports["sshCommand"] == "ssh root@203.0.113.20"
    assert run.named("host-wait-ready").inputs["connection"]["host"] == "203.0.113.20"
    without = prod_config.with_(reservedIp=False).run()
    assert without.exports["publicAddress"] == "203.0.113.10"
    assert not without.of_type(f"{DO}reservedIp:ReservedIp")


def test_managed_dns_record_points_at_the_server(prod_config):
    run = prod_config.with_(manageDns=True).run()
    record = run.named("server-dns-a")
    assert (record.inputs["domain"], record.inputs["name"], record.inputs["type"]) == (
        "example.org",
        "ieee",
        "A",
    )
    assert record.inputs["value"] == "203.0.113.20"
    # certbot asks Let's Encrypt to resolve the name: the record must exist first.
    assert record.urn in run.named("host-nginx").dependencies


def test_own_ssh_key_pair_replaces_the_generated_one(prod_config):
    public = openssh_public_key_line("me@laptop")
    run = (
        prod_config.with_(sshPublicKey=public)
        .with_secret("sshPrivateKey", EXISTING_PRIVATE_KEY)
        .run()
    )
    assert not run.of_type("tls:index/privateKey:PrivateKey")
    assert run.named("server-ssh-key").inputs["publicKey"] == public.strip()
    step = run.named("host-wait-ready")
    assert step.inputs["connection"]["privateKey"] == EXISTING_PRIVATE_KEY
    assert "connection" in step.secret_paths
    assert "deployPrivateKey" not in run.exports


@pytest.mark.parametrize("preview", [False, True])
def test_existing_target_creates_no_cloud_resource(existing_config, preview):
    run = existing_config.run(preview=preview)
    assert not [r for r in run.resources if r.type.startswith(("digitalocean:", "tls:"))]
    # On a first preview every step's connection waits for the host key (unknown); the first
    # contact's is known.
    connection = run.named("server-host-key").inputs["connection"]
    assert (connection["host"], connection["port"], connection["user"]) == (
        "198.51.100.7",
        2222,
        "root",
    )
    assert run.exports["sshCommand"] == "ssh -p 2222 root@198.51.100.7"
    assert "dropletUrn" not in run.exports
    assert run.exports["privateAddress"] == ""


@pytest.mark.parametrize("which", ["prod", "existing"])
def test_host_key_is_read_on_first_contact_then_required_by_every_step(
    prod_config, existing_config, which
):
    run = (prod_config if which == "prod" else existing_config).run()
    first_contact = run.named("server-host-key")
    assert "hostKey" not in first_contact.inputs["connection"]
    assert "ssh_host_ed25519_key.pub" in step_program(first_contact.inputs)
    others = [r for r in run.of_type("command:remote:Command") if r is not first_contact]
    assert len(others) > 10
    for step in others:
        assert step.inputs["connection"]["hostKey"] == MOCK_HOST_KEY, step.name
    assert run.exports["sshHostKey"] == MOCK_HOST_KEY


def test_first_contact_comes_before_every_other_step(prod_config):
    run = prod_config.run(preview=True)
    for step in run.of_type("command:remote:Command"):
        if step.name != "server-host-key":
            # Unknown until the first contact has happened: no step can connect before it.
            assert step.inputs["connection"] == UNKNOWN, step.name


def test_a_configured_host_key_is_required_and_none_is_learned(existing_config):
    key = openssh_public_key_line("root@event-server")
    run = existing_config.with_(sshHostKey=key).run()
    assert not [r for r in run.resources if r.name == "server-host-key"]
    pinned = " ".join(key.split()[:2])  # the comment is not part of the key
    for step in run.of_type("command:remote:Command"):
        assert step.inputs["connection"]["hostKey"] == pinned, step.name
    assert run.exports["sshHostKey"] == pinned


@pytest.mark.parametrize("target", ["digitalocean", "existing"])
def test_ssh_waits_for_a_booting_server(prod_config, existing_config, target):
    user = prod_config if target == "digitalocean" else existing_config
    for step in user.run().of_type("command:remote:Command"):
        connection = step.inputs["connection"]
        assert connection["dialErrorLimit"] >= (60 if target == "digitalocean" else 10)
        assert connection["perDialTimeout"] == 10


def plaintext_strings(value, secret_paths, path=""):
    """Every string inside ``value`` except those under a secret path."""
    if path in secret_paths:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from plaintext_strings(inner, secret_paths, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from plaintext_strings(inner, secret_paths, f"{path}[{i}]")
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("preview", [False, True])
@pytest.mark.parametrize("which", ["prod", "existing"])
def test_no_secret_outside_secret_inputs_and_outputs(prod_config, existing_config, which, preview):
    user = prod_config if which == "prod" else existing_config
    run = user.run(preview=preview)
    # The generated deploy key's private half, as FakeCloud makes it up.
    secrets = [*user.secret_values, "PRIVATE KEY-----\nmock-server-deploy-key"]
    for resource in run.resources:
        for text in plaintext_strings(resource.inputs, resource.secret_paths):
            assert not any(secret in text for secret in secrets), (resource.name, text[:200])
        if resource.type == "command:remote:Command":
            # The private key makes the whole connection object secret.
            assert "connection" in resource.secret_paths
    for name, value in run.exports.items():
        if name not in run.secret_exports:
            assert not any(secret in json.dumps(value) for secret in secrets), name
    assert REGISTRY_PASSWORD in secrets
