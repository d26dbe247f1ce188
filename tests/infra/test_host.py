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
from conftest import free_port, script_params, step_program, step_secrets
from real_nginx import RealNginx

import layout
import render_event
import render_host
from harness import UNKNOWN
from remote_script import LIBRARY, SCRIPTS_DIR, script_text

COMMAND = "command:remote:Command"
STEPS_WITH_VOLUME = [
    "wait-ready",
    "packages",
    "volume",
    "swarm",
    "postgres",
    "media",
    "backup",
    "nginx",
]


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
        "host-media",
        "host-backup",
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
    count_line, volume_undo = volume_undo.lstrip("\n").split("\n", 1)
    assert count_line == "release_step /var/lib/django-swarm/steps/host-volume"
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
            domain=domain if tls else None,
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


def test_tls_keeps_hsts_on_uploaded_files_whose_location_sets_its_own_headers(tmp_path, backend):
    media = tmp_path / "media" / "event1"
    media.mkdir(parents=True)
    (media / "logo.txt").write_text("logo")
    location = render_event.nginx_location(
        "event1", "/event1", f"{tmp_path}/static/", f"{media}/", 20, f"{tmp_path}/flag"
    )
    nginx = RealNginx(
        tmp_path,
        render_host.nginx_site("ieee.example.org", True),
        {"event1": location},
        {"event1": render_event.nginx_upstream("event1")},
        {"event1": render_event.nginx_upstream_servers(("127.0.0.1",), backend, free_port())},
        domain="ieee.example.org",
    )
    try:
        response = requests.get(
            f"https://127.0.0.1:{nginx.https_port}/event1/media/logo.txt",
            headers={"Host": "ieee.example.org"},
            verify=False,  # noqa: S501 (a self-signed certificate made by this test)
            timeout=5,
        )
    finally:
        nginx.stop()
    assert (response.status_code, response.text) == (200, "logo")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


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


def test_every_step_with_an_undo_counts_its_instances_so_a_replacement_keeps_it(prod_config):
    # `pulumi up --replace` creates the new instance, then deletes the old one: each step whose
    # delete undoes something counts instances in a file named after it, and updates in place
    # (`update`) count nothing.
    commands = prod_config.run().of_type(COMMAND)
    with_undo = [c for c in commands if c.inputs.get("delete")]
    assert {"host-swarm", "host-postgres", "spring-hackathon-stack", "app-registry-login"} <= {
        c.name for c in with_undo
    }
    for command in commands:
        count_file = f"{layout.STEPS_DIR}/{command.name}"
        hold = f'hold_step {count_file} "$step_action"'
        if command.inputs.get("delete"):
            assert hold in step_program(command.inputs).splitlines(), command.name
            assert f"release_step {count_file}" in step_program(command.inputs, "delete")
            assert "step_action=update" in command.inputs["update"], command.name
            assert "step_action=create" in command.inputs["create"], command.name
        else:
            assert "\nhold_step " not in step_program(command.inputs), command.name
            assert "update" not in command.inputs, command.name


def backup_step(run):
    step = run.named("host-backup")
    return (
        step,
        params(step),
        dict(line.split("=", 1) for line in params(step)["ENV_TEXT"].splitlines()),
    )


def test_backups_go_to_the_bucket_with_the_secrets_on_stdin_only(prod_config):
    user = prod_config.with_(
        backups={"bucket": "ieee-backups", "accessKeyId": "DO00KEY", "keepDaily": 3}
    ).with_secret("backupSecretAccessKey", "BUCKET-SECRET-must-not-leak")
    run = user.run()
    step, given, env = backup_step(run)
    assert env["RESTIC_REPOSITORY"] == "s3:https://fra1.digitaloceanspaces.com/ieee-backups"
    assert env["AWS_ACCESS_KEY_ID"] == "DO00KEY"
    assert (env["KEEP_DAILY"], env["KEEP_WEEKLY"], env["KEEP_MONTHLY"]) == ("3", "4", "6")
    assert given["LOCAL_REPOSITORY"] == ""
    password = run.named("host-restic-password").outputs["result"]
    assert step_secrets(step.inputs) == [password, "BUCKET-SECRET-must-not-leak"]
    assert "stdin" in step.secret_paths and step.inputs["logging"] == "none"
    assert "BUCKET-SECRET" not in step.inputs["create"] + step_program(step.inputs)
    assert run.exports["resticPassword"] == password and "resticPassword" in run.secret_exports
    assert run.exports["backupRepository"] == env["RESTIC_REPOSITORY"]
    assert "OnCalendar=*-*-* 03:00:00 UTC\n" in given["TIMER_UNIT"]


def test_without_a_bucket_backups_stay_on_the_volume_and_up_warns(prod_config, caplog):
    run = prod_config.run()
    _, given, env = backup_step(run)
    repository = "/mnt/django_swarm_test_pgdata/backups/restic"
    assert env["RESTIC_REPOSITORY"] == given["LOCAL_REPOSITORY"] == repository
    assert env["DATA_DIR"] == "/mnt/django_swarm_test_pgdata"
    assert "AWS_ACCESS_KEY_ID" not in env
    assert any("Backups are not off-host" in r.getMessage() for r in caplog.records)


def test_the_backup_tools_read_the_settings_the_step_writes():
    for tool in ("backup", "restore"):
        text = render_host.backup_tool(tool)
        assert f"ENV_FILE=${{DJANGO_SWARM_BACKUP_ENV:-{layout.BACKUP_ENV}}}" in text
    assert f"Environment=DJANGO_SWARM_BACKUP_ENV={layout.BACKUP_ENV}\n" in (
        render_host.backup_service_unit()
    )


def test_the_migration_step_snapshots_the_event_before_it_migrates():
    script = (SCRIPTS_DIR / "event_migrate.sh").read_text()
    snapshot = script.index('django-swarm-backup pre-migrate "$EVENT" "$RELEASE"')
    assert snapshot < script.index("docker service create")
