"""Host provisioning: the steps, their order, their parameters, and the Nginx site they
install, checked with a real nginx serving real requests."""

from __future__ import annotations

import gzip
import http.server
import itertools
import json
import threading

import pytest
import requests
from conftest import script_params, step_program
from real_nginx import RealNginx

import layout
import render_host
from harness import UNKNOWN
from remote_script import LIBRARY, script_text

COMMAND = "command:remote:Command"
STEPS_WITH_VOLUME = ["wait-ready", "packages", "volume", "swarm", "postgres", "nginx"]


def host_steps(run):
    host = run.named("host")
    return [r for r in run.of_type(COMMAND) if r.parent == host.urn]


def params(step) -> dict[str, str]:
    return script_params(step.inputs)


@pytest.mark.parametrize("preview", [False, True])
def test_steps_run_in_order_each_after_the_previous(prod_config, preview):
    run = prod_config.run(preview=preview)
    steps = host_steps(run)
    assert [s.name for s in steps] == [f"host-{n}" for n in STEPS_WITH_VOLUME]
    for previous, step in itertools.pairwise(steps):
        assert previous.urn in step.dependencies, step.name
    assert not {s.urn for s in steps} & set(steps[0].dependencies)
    attachment = run.named("server-postgres-volume-attachment")
    assert attachment.urn in run.named("host-volume").dependencies


def test_existing_host_has_no_volume_step(existing_config):
    steps = host_steps(existing_config.run())
    assert [s.name for s in steps] == [
        "host-wait-ready",
        "host-packages",
        "host-swarm",
        "host-postgres",
        "host-nginx",
    ]
    assert params(steps[3])["PG_DATA_ROOT"] == ""
    # Empty: the swarm step detects the address on the host.
    assert params(steps[2])["ADVERTISE_ADDRESS"] == ""


def test_swarm_and_postgres_get_the_subnet_gateway_and_volume(prod_config):
    run = prod_config.with_(swarmSubnet="10.77.0.0/16").run()
    swarm = params(run.named("host-swarm"))
    assert (swarm["SWARM_SUBNET"], swarm["SWARM_GATEWAY"]) == ("10.77.0.0/16", "10.77.0.1")
    assert swarm["ADVERTISE_ADDRESS"] == "10.114.0.2"  # the droplet's private address
    assert (swarm["ETC_DIR"], swarm["STACKS_DIR"]) == (layout.ETC_DIR, layout.STACKS_DIR)
    postgres = params(run.named("host-postgres"))
    assert (postgres["SWARM_SUBNET"], postgres["SWARM_GATEWAY"]) == ("10.77.0.0/16", "10.77.0.1")
    volume = params(run.named("host-volume"))
    assert volume["VOLUME_DEVICE"] == "/dev/disk/by-id/scsi-0DO_Volume_django-swarm-test-pgdata"
    assert volume["MOUNT_POINT"] == "/mnt/django_swarm_test_pgdata"
    assert postgres["PG_DATA_ROOT"] == volume["MOUNT_POINT"]


def test_advertise_address_is_unknown_in_preview_but_the_step_is_declared(prod_config):
    swarm = prod_config.run(preview=True).named("host-swarm")
    assert swarm.inputs["create"] == UNKNOWN


def test_certbot_and_tls_site_only_with_tls(prod_config):
    run = prod_config.run()
    assert params(run.named("host-packages"))["INSTALL_CERTBOT"] == "1"
    nginx = params(run.named("host-nginx"))
    assert nginx["TLS_SITE"] == render_host.nginx_site("ieee.example.org", tls=True)
    assert (nginx["DOMAIN"], nginx["TLS_EMAIL"]) == (
        "ieee.example.org",
        "webmaster@ieee.example.org",
    )
    plain = prod_config.without("tlsEmail").run()
    assert params(plain.named("host-packages"))["INSTALL_CERTBOT"] == "0"
    assert params(plain.named("host-nginx"))["TLS_SITE"] == ""
    assert params(plain.named("host-nginx"))["HTTP_SITE"] == render_host.nginx_site(
        "ieee.example.org", tls=False
    )


def test_undo_steps_on_destroy_keep_the_data(prod_config):
    run = prod_config.run()
    deletes = {s.name: step_program(s.inputs, "delete") for s in host_steps(run)}
    assert "docker swarm leave --force" in deletes["host-swarm"]
    assert "pg_hba.conf" in deletes["host-postgres"]
    # The script itself, after the helpers of lib.sh that every step carries.
    postgres_undo = deletes["host-postgres"].split(script_text(LIBRARY), 1)[1]
    assert "rm -rf" not in postgres_undo and "dropdb" not in postgres_undo
    assert 'rm -f "$NGINX_SITE_ENABLED" "$NGINX_SITE"' in deletes["host-nginx"]
    assert not deletes["host-packages"]
    # Before the volume is detached: PostgreSQL stopped, then the filesystem unmounted.
    volume_undo = deletes["host-volume"].split(script_text(LIBRARY), 1)[1]
    assert volume_undo.strip() == script_text("host_volume_remove.sh").strip()
    stop, unmount = volume_undo.index('systemctl stop "$unit"'), volume_undo.index("umount ")
    assert stop < unmount
    assert params(run.named("host-volume"))["MOUNT_POINT"] in deletes["host-volume"]
    assert "mkfs" not in volume_undo and "rm " not in volume_undo


# --- The Nginx site, rendered and served by a real nginx ---------------------------------


def test_site_includes_the_event_locations_in_the_serving_server_only():
    include = f"include {layout.NGINX_LOCATIONS_DIR}/*.conf;"
    http_site = render_host.nginx_site(None, tls=False)
    assert http_site.count(include) == 1 and "server_name _;" in http_site
    assert "443" not in http_site
    tls_site = render_host.nginx_site("ieee.example.org", tls=True)
    redirect, https = tls_site.split("\nserver {", 2)[1:]
    assert include not in redirect and "return 301 https://$host$request_uri;" in redirect
    assert include in https and "Strict-Transport-Security" in https
    assert "/etc/letsencrypt/live/ieee.example.org/fullchain.pem" in https


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """A stand-in site: answers with the request's path and headers, large enough to gzip.

    Like Django with SECURE_SSL, it sends its own HSTS header, which must not reach the client
    twice."""

    def do_GET(self):
        body = json.dumps({"path": self.path, "headers": dict(self.headers), "pad": "x" * 4096})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Strict-Transport-Security", "max-age=3600")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def backend():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def serve(tmp_path, backend):
    started = []

    def start(domain: str | None, tls: bool) -> RealNginx:
        location = f"location /event1/ {{\n    proxy_pass http://127.0.0.1:{backend};\n}}\n"
        nginx = RealNginx(
            tmp_path,
            render_host.nginx_site(domain, tls),
            {"event1": location},
            domain if tls else None,
        )
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        nginx.stop()


def test_http_site_proxies_with_forwarded_headers_gzip_and_body_limit(serve):
    nginx = serve(None, tls=False)
    url = f"http://127.0.0.1:{nginx.http_port}"
    response = requests.get(
        f"{url}/event1/hits",
        headers={"X-Forwarded-For": "6.6.6.6", "Accept-Encoding": "gzip"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    seen = response.json()["headers"]
    assert seen["X-Forwarded-Proto"] == "http"
    # The host as the browser names it, port included: Django compares a form's Origin with it.
    assert seen["Host"] == seen["X-Forwarded-Host"] == f"127.0.0.1:{nginx.http_port}"
    # A client cannot choose the address the site sees.
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert (
        "nginx/" not in response.headers.get("Server", "") or response.headers["Server"] == "nginx"
    )
    assert requests.get(f"{url}/other/", timeout=5).status_code == 404
    too_big = requests.post(f"{url}/event1/upload", data=b"x" * (21 * 1024 * 1024), timeout=30)
    assert too_big.status_code == 413


def test_tls_site_redirects_http_and_sends_hsts(serve):
    nginx = serve("ieee.example.org", tls=True)
    plain = requests.get(
        f"http://127.0.0.1:{nginx.http_port}/event1/x?a=1",
        headers={"Host": "ieee.example.org"},
        allow_redirects=False,
        timeout=5,
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://ieee.example.org/event1/x?a=1"
    # certbot's HTTP-01 challenges stay on plain HTTP.
    challenge = requests.get(
        f"http://127.0.0.1:{nginx.http_port}/.well-known/acme-challenge/token",
        allow_redirects=False,
        timeout=5,
    )
    assert challenge.status_code == 404
    secure = requests.get(
        f"https://127.0.0.1:{nginx.https_port}/event1/x",
        headers={"Host": "ieee.example.org", "Accept-Encoding": "gzip"},
        verify=False,  # noqa: S501 (a self-signed certificate made by this test)
        timeout=5,
    )
    assert secure.status_code == 200
    # Exactly Nginx's header (requests would join a second one with a comma).
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert secure.json()["headers"]["X-Forwarded-Proto"] == "https"
    assert secure.headers["Content-Encoding"] == "gzip"


def test_gzip_body_is_the_site_response(serve):
    nginx = serve(None, tls=False)
    raw = requests.get(
        f"http://127.0.0.1:{nginx.http_port}/event1/",
        headers={"Accept-Encoding": "gzip"},
        stream=True,
        timeout=5,
    ).raw.read()
    assert json.loads(gzip.decompress(raw))["path"] == "/event1/"


def test_no_remote_step_sends_its_previous_output_as_environment(prod_config):
    # sshd accepts no PULUMI_COMMAND_* variables (AcceptEnv): each would print a warning.
    run = prod_config.run()
    commands = run.of_type(COMMAND)
    assert len(commands) > len(host_steps(run))
    sending = [c.name for c in commands if c.inputs.get("addPreviousOutputInEnv") is not False]
    assert sending == []
