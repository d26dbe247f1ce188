"""TLS waits for the domain: the first `pulumi up` of a new droplet succeeds over plain HTTP, and
the first `up` that finds the domain pointing at the server turns HTTPS on."""

from __future__ import annotations

import logging

import pytest
import yaml
from conftest import RESERVED_IP, UserConfig
from conftest import script_params as params

import render_host
import tls_gate

DOMAIN = "ieee.example.org"
EVENTS = ("spring-hackathon", "autumn-hackathon")


def site_environment(run, event: str) -> dict[str, str]:
    stack = params(run.named(f"{event}-stack").inputs)["STACK_TEXT"]
    return yaml.safe_load(stack)["services"]["web"]["environment"]


def test_with_the_domain_pointing_at_the_server_everything_is_https(prod_config: UserConfig):
    run = prod_config.run()
    assert run.exports["https"] is True
    nginx = params(run.named("host-nginx").inputs)
    assert nginx["TLS_SITE"] == render_host.nginx_site(DOMAIN, tls=True)
    for event in EVENTS:
        assert site_environment(run, event)["SECURE_SSL"] == "1"
        assert run.exports["eventUrls"][event].startswith(f"https://{DOMAIN}/")


@pytest.mark.parametrize("answer", [set(), {"198.51.100.99"}, {RESERVED_IP, "198.51.100.99"}])
def test_until_the_domain_points_at_the_server_the_first_up_serves_http(
    prod_config: UserConfig, public_dns, caplog, answer
):
    # A new droplet: its reserved IP exists only after this run, so DNS cannot point at it yet.
    public_dns[DOMAIN] = answer
    with caplog.at_level(logging.WARNING):
        run = prod_config.run()
    assert run.exports["https"] is False
    nginx = params(run.named("host-nginx").inputs)
    # No certificate is asked for: the step serves the HTTP site and succeeds.
    assert nginx["TLS_SITE"] == ""
    assert nginx["HTTP_SITE"] == render_host.nginx_site(DOMAIN, tls=False)
    for event in EVENTS:
        environment = site_environment(run, event)
        assert "SECURE_SSL" not in environment and "PUBLIC_DOMAIN" not in environment
        assert environment["ALLOWED_HOSTS"] == DOMAIN
        assert run.exports["eventUrls"][event].startswith(f"http://{DOMAIN}/")
    (warning,) = {r.getMessage() for r in caplog.records if f"TLS for {DOMAIN}" in r.getMessage()}
    assert f"Point the domain's A record at {RESERVED_IP}" in warning
    assert "run `pulumi up` again" in warning


def test_pointing_the_domain_later_changes_only_the_nginx_step_and_the_sites(
    prod_config: UserConfig, public_dns
):
    public_dns[DOMAIN] = set()
    first = prod_config.run()
    public_dns[DOMAIN] = {RESERVED_IP}
    later = prod_config.run()
    changed = {
        r.name
        for r in later.of_type("command:remote:Command")
        if r.inputs.get("create") != first.named(r.name).inputs.get("create")
    }
    assert changed == {
        "host-nginx",
        *(f"{e}-{step}" for e in EVENTS for step in ("migrate", "stack")),
    }


def test_an_existing_host_reached_by_name_is_matched_by_its_addresses(public_dns):
    public_dns["server.example.net"] = {"198.51.100.7"}
    public_dns[DOMAIN] = {"198.51.100.7"}
    assert tls_gate.leads_to(DOMAIN, "server.example.net")
    assert tls_gate.leads_to(DOMAIN, "198.51.100.7")
    assert not tls_gate.leads_to(DOMAIN, "198.51.100.8")
    public_dns.pop(DOMAIN)
    assert not tls_gate.leads_to(DOMAIN, "198.51.100.7")


def test_without_tls_nothing_is_looked_up(existing_config: UserConfig, monkeypatch):
    def no_lookups(name: str) -> set[str]:
        raise AssertionError(f"looked up {name}")

    monkeypatch.setattr(tls_gate, "lookup_ipv4", no_lookups)
    assert existing_config.with_(domain=DOMAIN).run().exports["https"] is False
