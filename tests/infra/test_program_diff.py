"""Two runs of the program with configs differing in one place: only the resources that should
change have different inputs (what `pulumi up` would update), everything else is untouched."""

from __future__ import annotations

import remote_script


def inputs_by_urn(run) -> dict[str, dict]:
    return {r.urn: r.inputs for r in run.resources}


def changed(before, after, part_one_only: bool = False) -> set[str]:
    """Names of resources added, removed or with different inputs between two runs."""
    a, b = inputs_by_urn(before), inputs_by_urn(after)
    names = {r.urn: r.name for r in [*before.resources, *after.resources]}
    differing = {names[u] for u in a.keys() | b.keys() if a.get(u) != b.get(u)}
    if part_one_only:
        return {n for n in differing if n.startswith(("server", "host"))}
    return differing


def test_an_unchanged_config_changes_nothing(prod_config):
    assert changed(prod_config.run(), prod_config.run()) == set()


def test_droplet_size_changes_the_droplet_and_the_events_memory_limits_only(prod_config):
    before = prod_config.run()
    after = prod_config.with_(dropletSize="s-2vcpu-4gb").run()
    # Each event's default memory limit is a quarter of the droplet's: its stack rolls.
    stacks = {f"{e['name']}-stack" for e in prod_config.values["events"]}
    assert changed(before, after) == {"server-droplet", *stacks}
    # Sizes with the same memory change only the droplet.
    after = prod_config.with_(dropletSize="s-2vcpu-2gb").run()
    assert changed(before, after) == {"server-droplet"}


def test_ssh_cidrs_change_only_the_firewall(prod_config):
    before = prod_config.run()
    after = prod_config.with_(sshAllowedCidrs=["192.0.2.0/24"]).run()
    assert changed(before, after) == {"server-firewall"}


def test_swarm_subnet_reruns_swarm_and_postgres_steps_only(prod_config):
    before = prod_config.run()
    after = prod_config.with_(swarmSubnet="172.31.0.0/16").run()
    # Part 2's resources that use the gateway address change too; part 1 only these two steps.
    assert changed(before, after, part_one_only=True) == {"host-swarm", "host-postgres"}


def test_tls_email_reruns_packages_and_nginx_only(prod_config):
    before = prod_config.without("tlsEmail").run()
    after = prod_config.run()
    assert changed(before, after, part_one_only=True) == {"host-packages", "host-nginx"}


def test_a_new_event_opens_its_port_inside_the_vpc_and_reruns_no_host_step(prod_config):
    events = prod_config.values["events"]
    before = prod_config.run()
    after = prod_config.with_(events=[*events, {"name": "winter", "path": "/winter"}]).run()
    assert changed(before, after, part_one_only=True) == {"server-firewall"}


def test_editing_a_script_reruns_exactly_that_step(prod_config, monkeypatch):
    before = prod_config.run()
    original = remote_script.script_text

    def edited(name: str) -> str:
        text = original(name)
        return text + 'log "edited"\n' if name == "host_postgres.sh" else text

    monkeypatch.setattr(remote_script, "script_text", edited)
    after = prod_config.run()
    assert changed(before, after) == {"host-postgres"}


def test_preview_declares_the_same_resources(prod_config):
    full, planned = prod_config.run(), prod_config.run(preview=True)
    assert sorted(r.urn for r in full.resources) == sorted(r.urn for r in planned.resources)
