"""The event renderers as text, and the Nginx locations run in a real Nginx with the real site."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
import yaml
from conftest import free_port
from real_nginx import RealNginx

import render_event
import render_host
from render_event import SiteSpec

DIGEST_REF = "ghcr.io/ieee-branch/hits@sha256:" + "ab" * 32

SPEC = SiteSpec(
    event="event1",
    path="/event1",
    replicas=2,
    image=DIGEST_REF,
    db_host="172.20.0.1",
    public_host="ieee.example.org",
    tls=True,
    secrets=render_event.EventSecrets(
        secret_key="event1_secret_key_0123456789ab",
        db_password="event1_db_password_ba9876543210",
        admin_password="event1_admin_password_feedbeef0000",
    ),
    memory_reservation_mb=70,
    memory_limit_mb=300,
    settings={"GUNICORN_WORKERS": "3"},
    manager_address="10.110.0.2",
)


def web_service(spec: SiteSpec) -> dict:
    return yaml.safe_load(render_event.stack_file(spec))["services"]["web"]


def test_stack_pins_the_image_by_digest_and_publishes_the_port_event_stack_sh_chooses():
    document = yaml.safe_load(render_event.stack_file(replace(SPEC, replicas=1)))
    web = document["services"]["web"]
    assert list(document["services"]) == ["web"]
    # The network the migration job used before the stack existed; no other network.
    assert document["networks"] == {"default": {"external": True, "name": "event1_backend"}}
    assert web["image"] == DIGEST_REF
    # Host mode (no routing mesh: no IPVS), no virtual IP; the port is docker stack deploy's
    # to fill in from the variable that event_stack.sh sets.
    assert web["ports"] == [
        {"target": 8000, "published": "${DJANGO_SWARM_PORT}", "protocol": "tcp", "mode": "host"}
    ]
    assert web["deploy"]["endpoint_mode"] == "dnsrr"
    assert web["deploy"]["replicas"] == 1
    script = (Path(render_event.__file__).parent / "scripts" / "event_stack.sh").read_text()
    assert "DJANGO_SWARM_PORT=$port timeout" in script


def test_stack_keeps_a_dollar_in_a_setting_from_docker_stack_deploys_substitution():
    spec = replace(SPEC, settings={"GREETING": "costs $5 or ${PRICE}"})
    text = render_event.stack_file(spec)
    assert "costs $$5 or $${PRICE}" in text
    # The port's variable only, once for each of the two services.
    assert text.count("${") == text.count("$${") + 2
    assert text.count("${DJANGO_SWARM_PORT}") == 2


def test_one_task_runs_on_the_manager_with_the_uploads_and_the_others_on_workers():
    services = yaml.safe_load(render_event.stack_file(replace(SPEC, replicas=3)))["services"]
    web, on_workers = services["web"], services["web-workers"]
    assert web["deploy"]["replicas"] == 1
    assert web["deploy"]["placement"] == {"constraints": ["node.role == manager"]}
    assert on_workers["deploy"]["replicas"] == 2
    assert on_workers["deploy"]["placement"] == {"constraints": ["node.role == worker"]}
    # The uploaded files are on the manager: only its task mounts them.
    assert web["volumes"][0]["source"] == "/var/lib/django-swarm/media/event1"
    assert "volumes" not in on_workers
    # A worker reaches PostgreSQL at the manager's address, the manager at its own gateway.
    assert web["environment"]["DB_HOST"] == "172.20.0.1"
    assert on_workers["environment"]["DB_HOST"] == "10.110.0.2"
    # Otherwise the same site: image, port, secrets, health check, rollout.
    for key in ("image", "ports", "secrets", "healthcheck", "stop_grace_period"):
        assert on_workers[key] == web[key], key
    assert on_workers["deploy"]["update_config"] == web["deploy"]["update_config"]
    assert {k: v for k, v in on_workers["environment"].items() if k != "DB_HOST"} == {
        k: v for k, v in web["environment"].items() if k != "DB_HOST"
    }


def test_stack_rolls_out_start_first_and_rolls_back_on_failure():
    deploy = web_service(SPEC)["deploy"]
    update = deploy["update_config"]
    assert update["order"] == "start-first"
    assert update["failure_action"] == "rollback"
    assert update["monitor"] == "30s"
    assert deploy["rollback_config"]["order"] == "start-first"
    restart = deploy["restart_policy"]
    assert restart["delay"] == "5s" and restart["max_attempts"] == 5
    # The event's memory, as config gives it, on the manager's task and the workers' alike.
    for service in ("web", "web-workers"):
        services = yaml.safe_load(render_event.stack_file(SPEC))["services"]
        resources = services[service]["deploy"]["resources"]
        assert resources == {"limits": {"memory": "300M"}, "reservations": {"memory": "70M"}}


def test_stack_health_check_probes_the_site_and_logs_rotate():
    web = web_service(SPEC)
    assert web["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]
    assert web["healthcheck"]["start_period"] == "20s"
    assert web["logging"] == {
        "driver": "json-file",
        "options": {"max-size": "10m", "max-file": "3"},
    }


def test_stack_secrets_are_versioned_external_files():
    document = yaml.safe_load(render_event.stack_file(SPEC))
    assert document["secrets"] == {
        "secret_key": {"external": True, "name": "event1_secret_key_0123456789ab"},
        "db_password": {"external": True, "name": "event1_db_password_ba9876543210"},
    }
    web = document["services"]["web"]
    assert web["secrets"] == [
        {"source": "secret_key", "target": "secret_key"},
        {"source": "db_password", "target": "db_password"},
    ]
    environment = web["environment"]
    assert environment["SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert environment["DB_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert "SECRET_KEY" not in environment and "DB_PASSWORD" not in environment


def test_site_environment_with_tls():
    assert render_event.site_environment(SPEC) == {
        "GUNICORN_WORKERS": "3",
        "URL_PREFIX": "/event1",
        "ALLOWED_HOSTS": "ieee.example.org",
        "DB_HOST": "172.20.0.1",
        "DB_PORT": "5432",
        "DB_NAME": "ev_event1",
        "DB_USER": "ev_event1",
        "MEDIA_ROOT": "/srv/media",
        "SECRET_KEY_FILE": "/run/secrets/secret_key",
        "DB_PASSWORD_FILE": "/run/secrets/db_password",
        "PUBLIC_DOMAIN": "ieee.example.org",
        "SECURE_SSL": "1",
    }


def test_site_environment_without_tls_has_no_secure_settings():
    environment = render_event.site_environment(replace(SPEC, tls=False, public_host="203.0.113.9"))
    assert environment["ALLOWED_HOSTS"] == "203.0.113.9"
    assert "PUBLIC_DOMAIN" not in environment and "SECURE_SSL" not in environment


def test_env_file_is_one_sorted_line_per_variable_and_refuses_line_breaks():
    assert render_event.env_file({"B": "two words", "A": "x=y"}) == "A=x=y\nB=two words\n"
    with pytest.raises(ValueError, match="MOTD"):
        render_event.env_file({"MOTD": "line\nbreak"})


STATIC = "/srv/django-swarm/event1/static/"
MEDIA = "/var/lib/django-swarm/media/event1/"
FLAG = "/var/lib/django-swarm/maintenance/event1"
# Small, so that a body just above it is quick to send.
UPLOAD_LIMIT_MB = 2


def test_nginx_location_text():
    text = render_event.nginx_location("event1", "/event1", STATIC, MEDIA, 20, FLAG)
    assert "location /event1/static/ {\n    alias /srv/django-swarm/event1/static/;" in text
    # proxy_pass with a URI ("/"): Nginx replaces the location prefix, the site sees "/...".
    assert "    proxy_pass http://django_swarm_event1/;" in text
    assert "location = /event1 {" in text and "return 301 /event1/;" in text
    # Any proxy_set_header, or an add_header outside the media location, would silently drop
    # the server block's ones.
    assert "proxy_set_header" not in text
    site = text[text.index("location /event1/ {") :]
    assert "add_header" not in site and "add_header" not in text[: text.index("/media/")]
    assert "client_max_body_size 20m;" in site


@pytest.mark.parametrize("directory", ["static", "media"])
def test_nginx_location_refuses_an_alias_without_trailing_slash(directory):
    dirs = {"static_dir": STATIC, "media_dir": MEDIA, f"{directory}_dir": "/srv/x"}
    with pytest.raises(ValueError, match="must end with '/'"):
        render_event.nginx_location(
            "event1", "/event1", upload_limit_mb=20, maintenance_flag=FLAG, **dirs
        )


# --- The locations in a real Nginx, included by the real site (render_host.nginx_site) ---


class EchoHandler(BaseHTTPRequestHandler):
    """Answers with the path and headers it received, like a site that shows what Nginx sent."""

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length).decode() if length else None
        body = json.dumps(
            {
                "site": self.server.server_port,
                "path": self.path,
                "headers": dict(self.headers),
                "body": received,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_sites() -> Iterator[dict[str, int]]:
    servers = {name: ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler) for name in ("e1", "e2")}
    for server in servers.values():
        Thread(target=server.serve_forever, daemon=True).start()
    yield {name: server.server_port for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture
def refusing_port() -> int:
    """A loopback port nothing listens on: a connection to it is refused."""
    return free_port()


@pytest.fixture
def nginx(
    tmp_path: Path, echo_sites: dict[str, int], refusing_port: int
) -> Iterator[tuple[int, Path]]:
    """Nginx on a loopback port serving event1 (/event1) and event2 (/2025/event2).

    Each event's upstream has its site's port and a port that refuses connections: event1's
    live port refuses, as during a rollout once the old tasks stopped (its site is on the backup
    port, where the new release started); event2's backup port refuses, as between rollouts.
    """
    locations, upstreams, servers = {}, {}, {}
    static_root = tmp_path / "srv"
    for event, path, site in (("event1", "/event1", "e1"), ("event2", "/2025/event2", "e2")):
        static_dir = static_root / event / "static"
        static_dir.mkdir(parents=True)
        (static_dir / "site.css").write_text(f"body {{}} /* {event} */\n")
        (static_root / event / "secret.txt").write_text(f"{event} private file\n")
        media_dir = static_root / "media" / event
        (media_dir / "attachments").mkdir(parents=True)
        (media_dir / "attachments" / "page.html").write_text(f"<script>alert('{event}')</script>")
        ports = (refusing_port, echo_sites[site])
        upstreams[event] = render_event.nginx_upstream(event)
        servers[event] = render_event.nginx_upstream_servers(
            ("127.0.0.1",), *(ports if event == "event1" else ports[::-1])
        )
        locations[event] = render_event.nginx_location(
            event,
            path,
            f"{static_dir}/",
            f"{media_dir}/",
            UPLOAD_LIMIT_MB,
            f"{tmp_path}/maintenance/{event}",
        )
    server = RealNginx(
        tmp_path, render_host.nginx_site(None, tls=False), locations, upstreams, servers
    )
    yield server.http_port, tmp_path
    server.stop()


def get(port: int, path: str, host: str = "ieee.example.org") -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path, headers={"Host": host, "X-Forwarded-For": "6.6.6.6"})
    response = connection.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return result


def test_nginx_strips_the_prefix_and_forwards_the_headers(nginx, echo_sites):
    port, _ = nginx
    status, _, body = get(port, "/event1/admin/login/?next=/event1/admin/")
    seen = json.loads(body)
    assert status == 200
    assert seen["site"] == echo_sites["e1"]
    assert seen["path"] == "/admin/login/?next=/event1/admin/"
    assert seen["headers"]["Host"] == "ieee.example.org"
    assert seen["headers"]["X-Forwarded-Proto"] == "http"
    assert seen["headers"]["X-Forwarded-Host"] == "ieee.example.org"
    # The edge overwrites what the client claims.
    assert seen["headers"]["X-Forwarded-For"] == "127.0.0.1"


def test_nginx_upstreams_include_their_events_servers_files():
    text = render_event.nginx_upstream("event1")
    assert text.startswith(render_event.nginx_location_owner("event1") + "\nupstream ")
    assert (
        "upstream django_swarm_event1 {\n    include /etc/django-swarm/nginx-servers/event1.conf;"
        in text
    )
    assert (
        "upstream django_swarm_event1_manager {\n"
        "    include /etc/django-swarm/nginx-servers/event1.manager.conf;" in text
    )


def test_nginx_skips_a_silent_worker_longer_than_the_manager():
    text = render_event.nginx_upstream_servers(("172.20.0.1",), 21000, 21001, ("10.0.0.3",))
    assert text.splitlines() == [
        "server 172.20.0.1:21000 max_fails=1 fail_timeout=1s;",
        "server 10.0.0.3:21000 max_fails=1 fail_timeout=10s;",
        "server 172.20.0.1:21001 backup max_fails=0;",
        "server 10.0.0.3:21001 backup max_fails=0;",
    ]


def test_nginx_servers_use_the_live_port_of_every_node_and_keep_the_other_as_backup():
    text = render_event.nginx_upstream_servers(("10.0.0.2", "10.0.0.3"), 21001, 21000)
    assert text.splitlines() == [
        "server 10.0.0.2:21001 max_fails=1 fail_timeout=1s;",
        "server 10.0.0.3:21001 max_fails=1 fail_timeout=1s;",
        "server 10.0.0.2:21000 backup max_fails=0;",
        "server 10.0.0.3:21000 backup max_fails=0;",
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_nginx_sends_what_one_port_refuses_to_the_other(nginx, echo_sites, method):
    """Every request is answered by the port that listens, whichever of the two it is, a POST
    with its body too: a refused connection never reached the site, so Nginx retries it."""
    port, _ = nginx
    for path, site in (("/event1/form", "e1"), ("/2025/event2/form", "e2")):
        for i in range(6):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request(method, path, body=f"visit {i}" if method == "POST" else None)
            response = connection.getresponse()
            seen = json.loads(response.read())
            connection.close()
            assert response.status == 200
            assert seen["site"] == echo_sites[site]
            assert seen["body"] == (f"visit {i}" if method == "POST" else None)


def test_nginx_sends_the_admin_to_the_managers_task_alone(tmp_path, echo_sites, refusing_port):
    """Files are uploaded through the admin, and only the manager keeps them: the admin goes to
    the manager's upstream (here site e2), every other page to any task (here site e1)."""
    location = render_event.nginx_location(
        "event1", "/event1", f"{tmp_path}/static/", f"{tmp_path}/media/", 5, f"{tmp_path}/off"
    )
    servers = {
        name: render_event.nginx_upstream_servers(("127.0.0.1",), echo_sites[site], refusing_port)
        for name, site in (("event1", "e1"), ("event1.manager", "e2"))
    }
    server = RealNginx(
        tmp_path,
        render_host.nginx_site(None, tls=False),
        {"event1": location},
        {"event1": render_event.nginx_upstream("event1")},
        servers,
    )
    try:
        seen = {path: json.loads(get(server.http_port, path)[2]) for path in PAGES_AND_ADMIN}
    finally:
        server.stop()
    assert {path: (s["site"], s["path"]) for path, s in seen.items()} == {
        "/event1/": (echo_sites["e1"], "/"),
        "/event1/hits/": (echo_sites["e1"], "/hits/"),
        "/event1/admin/": (echo_sites["e2"], "/admin/"),
        "/event1/admin/hits/attachment/add/": (echo_sites["e2"], "/admin/hits/attachment/add/"),
    }


PAGES_AND_ADMIN = (
    "/event1/",
    "/event1/hits/",
    "/event1/admin/",
    "/event1/admin/hits/attachment/add/",
)


def test_nginx_routes_each_prefix_to_its_own_site(nginx, echo_sites):
    port, _ = nginx
    status, _, body = get(port, "/2025/event2/")
    assert status == 200
    assert json.loads(body) | {"headers": None} == {
        "site": echo_sites["e2"],
        "path": "/",
        "headers": None,
        "body": None,
    }


def test_nginx_serves_static_files_from_the_events_directory(nginx):
    port, _ = nginx
    status, headers, body = get(port, "/event1/static/site.css")
    assert (status, body) == (200, b"body {} /* event1 */\n")
    assert headers["Content-Type"] == "text/css"
    assert "max-age=2592000" in headers["Cache-Control"]
    assert get(port, "/2025/event2/static/site.css")[2] == b"body {} /* event2 */\n"


@pytest.mark.parametrize(
    ("path", "site_path"),
    [
        ("/event1/static../secret.txt", "/static../secret.txt"),
        ("/event1/static/../secret.txt", "/secret.txt"),
        ("/event1/static/%2e%2e/secret.txt", "/secret.txt"),
    ],
)
def test_nginx_alias_does_not_escape_the_static_directory(nginx, echo_sites, path, site_path):
    """What is not under <path>/static/ goes to the site, never to a file next to the alias."""
    port, _ = nginx
    status, _, body = get(port, path)
    assert b"private file" not in body
    assert status == 200
    assert json.loads(body)["site"] == echo_sites["e1"]
    assert json.loads(body)["path"] == site_path


def test_nginx_serves_uploaded_files_as_inert_data(nginx):
    port, _ = nginx
    status, headers, body = get(port, "/event1/media/attachments/page.html")
    assert (status, body) == (200, b"<script>alert('event1')</script>")
    assert headers["X-Content-Type-Options"] == "nosniff"
    # An uploaded page runs in a sandbox: no script, no access to the site's origin or cookies.
    assert "sandbox" in headers["Content-Security-Policy"].split("; ")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    # Plain HTTP: no HSTS (the variable is empty, and Nginx sends no empty header).
    assert "Strict-Transport-Security" not in headers
    assert get(port, "/2025/event2/media/attachments/page.html")[2] == (
        b"<script>alert('event2')</script>"
    )
    assert b"private file" not in get(port, "/event1/media/../secret.txt")[2]
    assert b"private file" not in get(port, "/event1/media../secret.txt")[2]


@pytest.mark.parametrize(("megabytes", "refused"), [(UPLOAD_LIMIT_MB - 1, False), (3, True)])
def test_nginx_refuses_a_request_body_above_the_events_upload_limit(nginx, megabytes, refused):
    port, _ = nginx
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = b"x" * (megabytes * 1024 * 1024)
    connection.request("POST", "/event1/admin/", body=body, headers={"Host": "ieee.example.org"})
    status = connection.getresponse().status
    connection.close()
    # The echo site answers POST with 501; Nginx refuses a body above the limit with 413.
    assert (status == 413) == refused, status


def test_an_event_in_maintenance_answers_503_with_a_page_and_the_other_event_does_not(nginx):
    port, tmp_path = nginx
    (tmp_path / "maintenance").mkdir()
    (tmp_path / "maintenance" / "event1").touch()
    status, headers, body = get(port, "/event1/admin/")
    assert status == 503 and headers["Content-Type"].startswith("text/html")
    assert b"being restored from a backup" in body
    assert get(port, "/event1/media/attachments/page.html")[0] == 503
    assert get(port, "/2025/event2/")[0] == 200
    (tmp_path / "maintenance" / "event1").unlink()
    status, headers, _ = get(port, "/event1/admin/")
    # Back: the site's own response, with the site's own type.
    assert (status, headers["Content-Type"]) == (200, "application/json")


def test_nginx_redirects_the_bare_prefix_relatively(nginx):
    port, _ = nginx
    status, headers, _ = get(port, "/event1")
    assert status == 301
    assert headers["Location"] == "/event1/"


def test_the_media_directory_owner_is_the_images_user():
    dockerfile = (Path(__file__).parents[2] / "app" / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert user and user.groups() == (str(render_event.SITE_UID),) * 2
