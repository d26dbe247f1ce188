"""Workers: droplets (or existing hosts) that join the manager's swarm and run event tasks.

The plan the program makes for them, on Pulumi's mock engine; the rehearsal's worker stories run
the same steps on real boxes.
"""

from __future__ import annotations

import pytest
from conftest import script_params, step_program, step_secrets
from test_server import firewall_rules

from harness import MOCK_JOIN_TOKEN, VPC_RANGE

COMMAND = "command:remote:Command"
WORKER_STEPS = ["wait-ready", "packages", "join-token", "postgres", "join", "node"]
# Each step's dependencies among the worker's steps.
STEP_DEPENDENCIES = {
    "packages": ["wait-ready"],
    "join": ["packages", "join-token", "postgres"],
    "node": ["join"],
}


def with_workers(prod_config, count: int, replicas: int = 2):
    events = [{**prod_config.values["events"][0], "replicas": replicas}]
    events += prod_config.values["events"][1:]
    return prod_config.with_(workers={"count": count, "size": "s-2vcpu-2gb"}, events=events)


def steps_of(run, component: str):
    parent = run.named(component).urn
    return [r for r in run.of_type(COMMAND) if r.parent == parent]


def test_worker_droplets_join_the_vpc_and_the_firewall_but_are_not_protected(prod_config):
    run = with_workers(prod_config, 2).run()
    manager = run.named("server-droplet")
    for n in (1, 2):
        droplet = run.named(f"server-worker-{n}")
        assert droplet.inputs["vpcUuid"] == manager.inputs["vpcUuid"]
        assert droplet.inputs["size"] == "s-2vcpu-2gb"
        assert droplet.inputs["image"] == manager.inputs["image"]
        assert droplet.inputs["sshKeys"] == manager.inputs["sshKeys"]
        assert not droplet.protect
    ids = [
        int(run.named(name).id) for name in ("server-droplet", "server-worker-1", "server-worker-2")
    ]
    assert run.named("server-firewall").inputs["dropletIds"] == ids
    inbound, _ = firewall_rules(run)
    postgres = [r for r in inbound if r["portRange"] == "5432"]
    # PostgreSQL only from inside the VPC, and open there without workers too: closing it when
    # the last worker goes would run (an update) before that worker is drained.
    assert postgres == [{"protocol": "tcp", "portRange": "5432", "sourceAddresses": [VPC_RANGE]}]
    alone = [r for r in firewall_rules(prod_config.run())[0] if r["portRange"] == "5432"]
    assert alone == postgres


def test_a_worker_joins_with_the_managers_token_on_stdin_only(prod_config):
    run = with_workers(prod_config, 1).run()
    steps = steps_of(run, "worker-1")
    # (Registered as their inputs resolve: join-token and postgres in either order.)
    assert sorted(s.name for s in steps) == sorted(f"worker-1-{step}" for step in WORKER_STEPS)
    by_step = {s.name.removeprefix("worker-1-"): s for s in steps}
    manager_host = run.named("host-nginx").inputs["connection"]["host"]
    worker_host = "203.0.113.31"
    hosts = {step: s.inputs["connection"]["host"] for step, s in by_step.items()}
    assert hosts == {
        "wait-ready": worker_host,
        "packages": worker_host,
        "join-token": manager_host,
        "postgres": manager_host,
        "join": worker_host,
        "node": manager_host,
    }
    assert script_params(by_step["packages"].inputs)["ROLE"] == "worker"
    token, join = by_step["join-token"], by_step["join"]
    # The token is a secret output, read from stdin by the join step and nowhere else.
    assert {"stdout", "stderr"} <= set(token.additional_secret_outputs)
    assert step_secrets(join.inputs) == [MOCK_JOIN_TOKEN]
    for step in steps:
        for key in ("create", "delete"):
            assert MOCK_JOIN_TOKEN not in str(step.inputs.get(key, "")), step.name
        assert MOCK_JOIN_TOKEN not in step_program(step.inputs)
    assert script_params(join.inputs) == {
        "MANAGER_ADDRESS": "10.114.0.2",
        "ADVERTISE_ADDRESS": "10.114.0.3",
    }
    node = script_params(by_step["node"].inputs)
    assert node["NODE_ID"] == "mock-node-worker-1" and node["WORKER"] == "worker-1"
    # Removal drains on the manager, then leaves on the worker.
    assert "worker_node_remove.sh" in by_step["node"].inputs["delete"]
    assert "worker_leave.sh" in join.inputs["delete"]
    # Booted, Docker, then (the token read and the address admitted on the manager once it is
    # ready) the join, then the node's wait.
    depends = {step: {by_step[on].urn for on in ons} for step, ons in STEP_DEPENDENCIES.items()}
    for step, urns in depends.items():
        assert urns <= set(by_step[step].dependencies), step
    for step in (token, by_step["postgres"]):
        assert run.named("host-nginx").urn in step.dependencies


def test_postgres_admits_each_worker_until_it_has_been_drained(prod_config):
    run = with_workers(prod_config, 2).run()
    # The manager's own step admits the swarm subnet and listens where the workers reach it,
    # with or without workers on a droplet (a change would restart PostgreSQL before a removed
    # last worker is drained)...
    host = script_params(run.named("host-postgres").inputs)
    assert host["PRIVATE_ADDRESS"] == "10.114.0.2"
    assert not [value for value in host.values() if "10.114.0.3" in str(value)]
    alone = script_params(prod_config.run().named("host-postgres").inputs)
    assert alone["PRIVATE_ADDRESS"] == "10.114.0.2"
    # ...and each worker's address is its own step's, so that removing a worker changes no step
    # of the manager: the removal runs among the deletes, after the drain.
    for n, address in ((1, "10.114.0.3"), (2, "10.114.0.4")):
        step = run.named(f"worker-{n}-postgres")
        assert script_params(step.inputs) == {"WORKER": f"worker-{n}", "WORKER_ADDRESS": address}
        assert "worker_postgres_remove.sh" in step.inputs["delete"]
        # Pulumi deletes a resource only after those that depend on it: the drain
        # (worker-N-node), then leaving the swarm (worker-N-join), then this one.
        join, node = run.named(f"worker-{n}-join"), run.named(f"worker-{n}-node")
        assert step.urn in join.dependencies and join.urn in node.dependencies


def test_an_event_with_replicas_deploys_after_the_workers_and_nginx_reaches_them(prod_config):
    run = with_workers(prod_config, 2, replicas=3).run()
    first, second = (e["name"] for e in prod_config.values["events"][:2])
    stack = run.named(f"{first}-stack")
    for n in (1, 2):
        assert run.named(f"worker-{n}-node").urn in stack.dependencies
    params = script_params(stack.inputs)
    assert "web-workers:" in params["STACK_TEXT"]
    assert "DB_HOST: 10.114.0.2" in params["STACK_TEXT"]
    live = [
        line.split()[1] for line in params["SERVERS_FIRST"].splitlines() if "backup" not in line
    ]
    assert [address.rsplit(":", 1)[0] for address in live] == [
        "172.20.0.1",
        "10.114.0.3",
        "10.114.0.4",
    ]
    manager_only = params["MANAGER_SERVERS_FIRST"]
    assert "10.114.0." not in manager_only and "172.20.0.1" in manager_only
    # An event with one replica runs on the manager alone: Nginx tries no worker for it.
    single = script_params(run.named(f"{second}-stack").inputs)
    assert "web-workers:" not in single["STACK_TEXT"]
    assert single["SERVERS_FIRST"] == single["MANAGER_SERVERS_FIRST"]


def test_existing_workers_are_reached_over_ssh_with_their_own_settings(existing_config):
    run = existing_config.with_(
        advertiseAddress="10.0.0.2",
        workers=[
            {"host": "198.51.100.11", "sshPort": 2200, "advertiseAddress": "10.0.0.11"},
            {"host": "198.51.100.12"},
        ],
    ).run()
    # Named by address: removing one worker from the list leaves the others' steps alone.
    first = run.named("worker-10-0-0-11-wait-ready").inputs["connection"]
    assert (first["host"], first["port"]) == ("198.51.100.11", 2200)
    # No key given: each worker's is read on first contact, then required.
    key_step = run.named("server-worker-10-0-0-11-host-key")
    assert key_step.inputs["connection"]["host"] == "198.51.100.11"
    second = run.named("worker-198-51-100-12-join")
    assert (second.inputs["connection"]["host"], second.inputs["connection"]["port"]) == (
        "198.51.100.12",
        22,
    )
    assert script_params(second.inputs)["ADVERTISE_ADDRESS"] == "198.51.100.12"
    assert script_params(second.inputs)["MANAGER_ADDRESS"] == "10.0.0.2"
    assert run.exports["workerAddresses"] == ["10.0.0.11", "198.51.100.12"]
    # Your own server's advertiseAddress may be public: PostgreSQL listens there only while
    # there are workers.
    assert script_params(run.named("host-postgres").inputs)["PRIVATE_ADDRESS"] == "10.0.0.2"
    alone = existing_config.with_(advertiseAddress="10.0.0.2").run()
    assert script_params(alone.named("host-postgres").inputs)["PRIVATE_ADDRESS"] == ""


@pytest.mark.parametrize("preview", [False, True])
def test_no_worker_no_worker_resource(prod_config, preview):
    run = prod_config.run(preview=preview)
    assert not [r for r in run.resources if "worker" in r.name]
