"""The rehearsal: the program deployed by the real engine into a bare Debian 13 box, checked
from outside.

One box, one stack of the project (``ProgramStack``: the Automation API runs ``infra/`` inline as
the language host would, the ``pulumi`` binary plans, orders, diffs and keeps the state, and the
four test plugins of ``tests/plugins`` carry the steps out). Tests in story order: a preview that
runs nothing (0), the first ``up`` (1), static files, admin and cookies (2), no-change, every
step run again, and ``--replace`` under load (3), PostgreSQL's exposure (9), a code change under
load (4), a broken release (5), a reboot (6), a third event added and removed (7), backups (10),
secrets nowhere (8), memory figures, and teardown as docs/how-to.md says.

Events publish host-mode ports on alternating ports, as in production (no routing mesh: this
machine's kernel has no IPVS, and production does not use it either).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shlex
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

import config
import layout
import remote_script
from local.box import Box, docker
from remote_script import render_script
from tests.engine import REPO_ROOT, EngineHome, EngineRun, EngineRunError
from tests.rehearsal import figures, memory
from tests.rehearsal.browser import chromium
from tests.rehearsal.conftest import (
    REGISTRY_USER,
    existing_target,
    tag_new_base_image,
    task_containers,
)
from tests.rehearsal.load import SteadyLoad, hits, wait_until_serving
from tests.rehearsal.program import COMMAND, Converge, ProgramStack
from tests.rehearsal.ps_sampler import PS_LOG, start_ps_sampler
from tests.rehearsal.s3 import S3Server
from tests.sites import admin_login

SECRET_KEYS = ["sshPrivateKey", "registryPassword", "eventSecrets", "backupSecretAccessKey"]
BACKUP_BUCKET = "rehearsal-backups"
# A release whose migrations fail: its image's Python stops `manage.py migrate_locked` (the
# migration job's command) before Django starts, as a migration that raises would.
BROKEN_MIGRATION_BASE_IMAGE = "rehearsal/python-base:broken-migration"
SITECUSTOMIZE = (
    "import os, sys\n"
    "if 'migrate_locked' in sys.argv and os.environ.get('URL_PREFIX') == '/event1':\n"
    "    sys.exit('rehearsal: this release has a broken migration')\n"
)
EVENTS = [{"name": "event1", "path": "/event1"}, {"name": "event2", "path": "/event2"}]
EVENT3 = {"name": "event3", "path": "/event3"}
# The steps of an event that a new image runs again (the image is their input).
STEPS_OF_A_RELEASE = ("migrate", "static", "stack")
# A release whose containers never become healthy: gunicorn cannot load this worker class.
# (The program offers no way to build a different app; an event's `settings` is its config.)
BROKEN_SETTINGS = {"GUNICORN_WORKER_CLASS": "rehearsal.broken.Worker"}
# A code change without touching app/: a new base image (the `baseImage` config value) gives a
# new image, a new digest and a new release of every event.
NEXT_BASE_IMAGE = "rehearsal/python-base:next"
# Run inside a site container (argv[1]: the database): connects like the site does, with the
# role, host and password file swarm gave it; prints the role or exits with PostgreSQL's error.
CONNECT_AS_SITE = """
import os, sys, psycopg
password = open("/run/secrets/db_password").read()
try:
    with psycopg.connect(host=os.environ["DB_HOST"], user=os.environ["DB_USER"], dbname=sys.argv[1],
                         password=password, connect_timeout=10) as connection:
        print(connection.execute("select current_user").fetchone()[0])
except psycopg.OperationalError as error:
    sys.exit(str(error))
"""


@dataclass
class Story:
    box: Box
    stack: ProgramStack
    # The backups' bucket (moto, an S3 server in its own container).
    s3: S3Server
    s3_secret: str = field(default_factory=lambda: f"s3 {secrets.token_hex(16)}")
    base_image: str = "django-swarm/python-base:trixie"
    events: list[dict[str, Any]] = field(default_factory=lambda: [dict(e) for e in EVENTS])
    converges: list[Converge] = field(default_factory=list)
    # event1's one secret setting (eventSecrets), with characters a script could trip over.
    event_token: str = field(default_factory=lambda: f"tok {secrets.token_hex(12)} $HOME 'q'")
    # URL path -> content of the files uploaded in event1's admin (story 2c), checked after
    # every story that replaces its tasks.
    uploads: dict[str, bytes] = field(default_factory=dict)
    # What the engine printed in every run, and every password it generated (for story 8).
    printed: list[str] = field(default_factory=list)
    generated: set[str] = field(default_factory=set)

    def assert_uploads_served(self) -> None:
        for path, content in self.uploads.items():
            served = requests.get(self.url(path), timeout=10)
            assert (served.status_code, served.content) == (200, content), path

    def config(self) -> dict[str, Any]:
        return {
            **existing_target(self.box, self.base_image, self.events),
            # Only while event1 exists: a secret of an unknown event is a config error.
            "eventSecrets": {
                e["name"]: {"REHEARSAL_TOKEN": self.event_token}
                for e in self.events
                if e["name"] == "event1"
            },
            "backups": {
                "bucket": BACKUP_BUCKET,
                "endpoint": self.s3.endpoint_for_containers,
                "accessKeyId": "rehearsal",
            },
            "backupSecretAccessKey": self.s3_secret,
        }

    def converge(self, replace: Iterable[str] = (), **options: Any) -> Converge:
        """``pulumi up`` of the story's config; ``replace``: step names, as ``--replace``."""
        if replace:
            options["replace"] = self.stack.urns(*replace)
        try:
            result = self.stack.converge(self.config(), SECRET_KEYS, **options)
        except EngineRunError as failed:
            self.printed.append(failed.text)
            raise
        finally:
            self.generated.update(self.stack.generated_passwords())
        self.printed.append(result.run.stdout)
        self.converges.append(result)
        return result

    def destroy(self, **options: Any) -> EngineRun:
        try:
            run = self.stack.destroy(**options)
        except EngineRunError as failed:
            self.printed.append(failed.text)
            raise
        self.printed.append(run.stdout)
        return run

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.box.http_port}{path}"

    def containers(self, event: str) -> dict[str, str]:
        """Running task containers of the event's service: id -> image (``name@sha256:...``).

        ``docker ps`` shows a digest-pinned image by its name only; the container's own config
        keeps the reference swarm started it from.
        """
        ids = task_containers(self.box, event)
        if not ids:
            return {}
        out = self.box.check(
            f"docker inspect --format '{{{{.Id}}}} {{{{.Config.Image}}}}' {' '.join(ids)}"
        )
        return dict(line.split() for line in out.splitlines())


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    try:
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def story(box, s3, engine_home: EngineHome) -> Iterator[Story]:
    stack = ProgramStack(engine_home, "story")
    story = Story(box, stack, s3)
    try:
        yield story
    finally:
        stack.remove()
        ups = [c.seconds for c in story.converges]
        if ups:
            figures.record("engine ups in the story", f"{len(ups)}, {sum(ups):.0f} s in all")


def wait_until_settled(story: Story, event: str, timeout: float) -> None:
    """Until the event's service runs exactly its replicas, each container healthy, and no task
    is starting or stopping: swarm replaces a task whose health check failed (its site could
    not reach PostgreSQL), and until it has, a visit may find no task on the port."""
    replicas = next(e for e in story.events if e["name"] == event).get("replicas", 1)
    deadline = time.monotonic() + timeout
    while True:
        states = story.box.check(
            f"docker ps -a --filter label=com.docker.swarm.service.name={event}_web"
            " --format '{{.State}} {{.Status}}'"
        ).splitlines()
        running = [line for line in states if line.startswith("running")]
        # (A container left "created" by an earlier reboot never starts: it is not a task.)
        busy = [line for line in states if line.split()[0] in ("restarting", "removing")]
        healthy = all("(healthy)" in line for line in running)
        if not busy and len(running) == replicas and healthy:
            return
        assert time.monotonic() < deadline, f"{event} did not settle within {timeout} s: {states}"
        time.sleep(2)


def registry_api(box: Box, path: str) -> dict[str, Any]:
    """An answer of the box's registry (its HTTP API, ``/v2/<path>``), logged in."""
    answer = requests.get(
        f"http://{box.registry_server}/v2/{path}",
        auth=(REGISTRY_USER, box.registry_password),
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def test_0_a_preview_of_a_bare_box_lists_every_resource_and_runs_nothing(story):
    box = story.box
    story.stack.set_config(story.config(), SECRET_KEYS)
    preview = story.stack.preview()
    story.printed.append(preview.stdout)
    planned = preview.ran()
    assert planned and {op for _, op in planned} == {"create"}
    names = {name for name, _ in planned}
    assert {"app-image", "event1-stack", "event2-stack", "host-swarm"} <= names, names
    figures.record("preview of a bare box", f"{preview.seconds:.0f} s, {len(planned)} resources")
    # Nothing ran on the box, and nothing was built or pushed.
    assert box.ssh(f"test -e {layout.STEPS_DIR}").status != 0
    assert box.ssh("command -v docker").status != 0  # the packages step did not run
    assert registry_api(box, "_catalog")["repositories"] == []


def test_1_first_converge_serves_two_events(story):
    start_ps_sampler(story.box)
    result = story.converge()
    figures.record("first converge (bare box -> 2 events)", f"{result.seconds:.0f} s")
    # Right after `up`, with no wait: the Nginx step returns only once the new locations serve.
    assert hits(story, "/event1/") == 1
    assert hits(story, "/event1/") == 2
    assert hits(story, "/event2/") == 1
    digest = result.outputs["imageDigest"]
    assert digest.startswith(f"{story.box.registry_server}/rehearsal/site@sha256:")
    for event in ("event1", "event2"):
        assert set(story.containers(event).values()) == {digest}


def test_1b_a_secret_setting_reaches_its_event_only_as_a_swarm_secret(story):
    read = "from config import env; print(env.text('REHEARSAL_TOKEN', secret=True))"
    event1 = next(iter(story.containers("event1")))
    # The documented way for site code to read it: the *_FILE variant the settings module knows.
    assert story.box.check(f'docker exec {event1} python -c "{read}"').strip() == story.event_token
    environment = story.box.check(f"docker exec {event1} env")
    assert "REHEARSAL_TOKEN_FILE=/run/secrets/setting_REHEARSAL_TOKEN" in environment
    assert story.event_token not in environment
    event2 = next(iter(story.containers("event2")))
    assert "REHEARSAL_TOKEN" not in story.box.check(f"docker exec {event2} env")
    assert story.box.check(f"docker exec {event2} ls /run/secrets").split() == [
        "db_password",
        "secret_key",
    ]


def test_2_static_admin_login_and_cookies(story):
    box = story.box
    login_page = requests.get(story.url("/event1/admin/login/"), timeout=10)
    assert login_page.status_code == 200
    css = re.search(r'href="(/event1/static/admin/css/[^"]+\.css)"', login_page.text)
    assert css, "the admin login page links no stylesheet under /event1/static/"
    served = requests.get(story.url(css.group(1)), timeout=10)
    assert served.status_code == 200 and "text/css" in served.headers["Content-Type"]
    on_disk = box.check(
        f"cat /srv/django-swarm/event1/static/{css.group(1)[len('/event1/static/') :]}"
    )
    assert served.text == on_disk, "Nginx did not serve the file from the host's static directory"
    assert requests.get(story.url("/event1/static../etc/passwd"), timeout=10).status_code in (
        400,
        403,
        404,
    )

    # Each event's administrator exists with the password the program generated (the stack's
    # secret output eventAdmins), and only there.
    admins = story.converges[0].outputs["eventAdmins"]
    assert admins["event1"]["password"] != admins["event2"]["password"]
    session = admin_login(story.url, "/event1", admins["event1"])
    assert "Site administration" in session.get(story.url("/event1/admin/"), timeout=10).text
    with pytest.raises(AssertionError, match="login refused"):
        admin_login(story.url, "/event2", admins["event1"])
    cookies = {c.name: c.path for c in session.cookies}
    assert cookies and all(path.startswith("/event1") for path in cookies.values()), cookies

    other = requests.Session()
    other.get(story.url("/event2/admin/login/"), timeout=10)
    other_cookies = {c.name: c.path for c in other.cookies}
    assert other_cookies and all(p.startswith("/event2") for p in other_cookies.values())
    assert not set(cookies) & set(other_cookies), "event1 and event2 cookies share a name"


def admin_in_browser(browser, story: Story, path: str, login: dict[str, str]) -> None:
    """Logs into the admin under ``path`` as a person would: the form, then the index page."""
    browser.get(story.url(f"{path}/admin/"))
    browser.find_element(By.NAME, "username").send_keys(login["username"])
    browser.find_element(By.NAME, "password").send_keys(login["password"])
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    try:
        WebDriverWait(browser, 20).until(lambda b: "Site administration" in b.page_source)
    except TimeoutException:
        text = browser.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"no admin index at {browser.current_url}: {text[:600]}") from None


def styled_by_the_events_css(browser, path: str) -> bool:
    """Whether the page applies the admin's stylesheet served under ``path``/static/."""
    return browser.execute_script(
        "return [...document.styleSheets].some(s => s.href"
        " && new URL(s.href).pathname.startsWith(arguments[0]) && s.cssRules.length > 0)",
        f"{path}/static/admin/css/",
    )


def cookie_names(browser) -> set[str]:
    return {cookie["name"] for cookie in browser.get_cookies()}


def test_2b_the_admins_of_two_events_in_one_browser(story):
    """docs/how-to.md, "Log in to an event's admin": in a real browser, through Nginx, with the
    stack's generated logins; logging into the second event keeps the first one's session."""
    admins = story.converges[0].outputs["eventAdmins"]
    with chromium() as browser:
        admin_in_browser(browser, story, "/event1", admins["event1"])
        assert styled_by_the_events_css(browser, "/event1")
        admin_in_browser(browser, story, "/event2", admins["event2"])
        assert styled_by_the_events_css(browser, "/event2")

        browser.get(story.url("/event1/admin/"))
        assert "Site administration" in browser.page_source
        assert not browser.find_elements(By.NAME, "password"), "event1's session was lost"
        assert styled_by_the_events_css(browser, "/event1")
        # A page sees only its own event's cookies (their path is the event's).
        assert cookie_names(browser) == {"event1_csrftoken", "event1_sessionid"}
        figures.save_screenshot(browser, "admin-event1.png")
        # And the second event's session is there too.
        browser.get(story.url("/event2/admin/"))
        assert "Site administration" in browser.page_source
        assert cookie_names(browser) == {"event2_csrftoken", "event2_sessionid"}


def upload(story: Story, path: str, login: dict[str, str], name: str, content: bytes):
    """Uploads a file as an organiser does, in the admin's attachment form under ``path``."""
    session = admin_login(story.url, path, login)
    form = session.get(story.url(f"{path}/admin/hits/attachment/add/"), timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return session.post(
        story.url(f"{path}/admin/hits/attachment/add/"),
        data={"csrfmiddlewaretoken": token, "title": name},
        files={"file": (name, content, "application/octet-stream")},
        allow_redirects=False,
        timeout=60,
    )


def test_2c_a_file_uploaded_in_the_admin_is_served_by_nginx_from_the_host(story):
    box = story.box
    admins = story.converges[0].outputs["eventAdmins"]
    content = b"%PDF-1.4 opening slides " + secrets.token_bytes(64)
    saved = upload(story, "/event1", admins["event1"], "opening.pdf", content)
    assert saved.status_code == 302, saved.text[:400]
    path = "/event1/media/attachments/opening.pdf"
    served = requests.get(story.url(path), timeout=10)
    assert (served.status_code, served.content) == (200, content)
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    # On the host, in the event's media directory, owned by the site's user.
    on_host = f"{layout.media_dir('event1')}/attachments/opening.pdf"
    assert box.check(f"stat -c %u {on_host}").strip() == "10001"
    assert box.check(f"sha256sum <{on_host}").split()[0] == hashlib.sha256(content).hexdigest()
    assert (
        requests.get(story.url("/event2/media/attachments/opening.pdf"), timeout=10).status_code
        == 404
    )
    # Above the event's upload limit (uploadLimitMb, 20 by default): Nginx refuses it.
    too_big = upload(story, "/event1", admins["event1"], "huge.bin", b"x" * (21 * 1024 * 1024))
    assert too_big.status_code == 413
    assert box.ssh(f"test -e {layout.media_dir('event1')}/attachments/huge.bin").status == 1
    story.uploads[path] = content


def test_3_converging_again_changes_nothing(story, monkeypatch):
    box = story.box
    before = {e: story.containers(e) for e in ("event1", "event2")}
    count = hits(story, "/event1/")
    # The engine itself fails an `up` that would change anything.
    result = story.converge(expect_no_changes=True)
    figures.record(
        "no-change up (the engine's overhead per converge: program run, plan, state)",
        f"{result.seconds:.1f} s",
    )
    assert result.executed() == [] and result.builds == [] and result.deleted == []
    assert {e: story.containers(e) for e in ("event1", "event2")} == before
    assert hits(story, "/event1/") == count + 1

    # Idempotence the hard way: every step's program runs again, as when a new version of the
    # program changes every script (here, one comment in each): the engine updates every command.
    watched = "/etc/nginx /etc/postgresql /etc/django-swarm /etc/docker /etc/systemd/system"
    snapshot = f"find {watched} -type f -print0 | sort -z | xargs -0 md5sum"
    files_before = box.check(snapshot)
    secrets_before = box.check("docker secret ls --format '{{.Name}}' | sort")
    monkeypatch.setattr(
        remote_script, "_STRICT_MODE", "set -euo pipefail  # rehearsal: every step, new version"
    )
    forced = story.converge()
    figures.record("converge that runs every step again", f"{forced.seconds:.0f} s")
    commands = [r for r in story.stack.resources() if r["type"] == COMMAND]
    assert {action for _, action in forced.executed()} == {"update"}
    assert len(forced.executed()) == len(commands)
    assert {e: story.containers(e) for e in ("event1", "event2")} == before
    assert hits(story, "/event1/") == count + 2
    assert hits(story, "/event2/") >= 2
    assert box.check(snapshot) == files_before, "a second run of the scripts changed config files"
    assert box.check("docker secret ls --format '{{.Name}}' | sort") == secrets_before
    hba = box.check("grep -hv '^\\s*\\(#\\|$\\)' /etc/postgresql/*/main/pg_hba.conf")
    assert len(hba.splitlines()) == len(set(hba.splitlines())), "duplicate pg_hba.conf lines"
    # Back to this version's scripts: every step once more, and the same files still.
    monkeypatch.undo()
    assert len(story.converge().executed()) == len(commands)
    assert box.check(snapshot) == files_before


def test_3a_replacing_a_step_keeps_what_it_deployed(story):
    """`pulumi up --replace` of event1's stack step and of the host's swarm step, under load.
    Pulumi creates each new instance, then deletes the old one: that delete (`docker stack rm`,
    `docker swarm leave --force`) must undo nothing, since the new instance is in place."""
    box = story.box
    before = {e: story.containers(e) for e in ("event1", "event2")}
    counts = {e: hits(story, f"/{e}/") for e in ("event1", "event2")}
    with SteadyLoad(story, ["/event1/", "/event2/"]) as load:
        result = story.converge(replace=("event1-stack", "host-swarm"))
    assert load.failed == 0, load.report()
    ran = result.executed()
    assert sorted(ran) == sorted(
        [
            (step, action)
            for step in ("event1-stack", "host-swarm")
            for action in ("create", "delete")
        ]
    )
    assert max(ran.index((s, "create")) for s in ("event1-stack", "host-swarm")) < min(
        ran.index((s, "delete")) for s in ("event1-stack", "host-swarm")
    )
    assert box.check("docker info --format '{{.Swarm.LocalNodeState}}'").strip() == "active"
    # The same tasks serve, and the counts go on.
    assert {e: story.containers(e) for e in ("event1", "event2")} == before
    for event, count in counts.items():
        assert hits(story, f"/{event}/") == count + 1 + load.ok_by_path[f"/{event}/"]
    for step in ("event1-stack", "host-swarm"):
        assert box.check(f"cat {layout.STEPS_DIR}/{step}") == "1\n"
    # The state holds the new instances: nothing is left to do.
    assert story.converge().executed() == []


def test_3b_a_server_presenting_another_host_key_is_refused_before_anything_runs(story):
    box = story.box
    real_key = box.check("cut -d ' ' -f 1,2 /etc/ssh/ssh_host_ed25519_key.pub").strip()
    # Learned on first contact (no sshHostKey in the config) and required by every step since.
    assert story.converges[-1].outputs["sshHostKey"] == real_key
    # What the refused change would have touched first: event2's stack file and its service.
    deployed = "md5sum /etc/django-swarm/stacks/event2.yml; docker service inspect event2_web"
    before = box.check(deployed)
    # A man in the middle, as the program sees one: the same address, other host keys.
    box.check(
        "mkdir -p /root/real-host-keys && mv /etc/ssh/ssh_host_* /root/real-host-keys/"
        " && ssh-keygen -A && systemctl restart ssh.service"
    )
    story.events[1]["settings"] = {"REHEARSAL_MARK": "host-key"}  # a change: steps must run
    try:
        with pytest.raises(EngineRunError) as refused:
            story.converge()
    finally:
        del story.events[1]["settings"]
        box.check(
            "rm -f /etc/ssh/ssh_host_* && mv /root/real-host-keys/* /etc/ssh/"
            " && systemctl restart ssh.service"
        )
    assert "host key mismatch" in str(refused.value), refused.value
    assert box.check(deployed) == before, "a step ran on a server with another host key"
    # The refused change was not recorded: with the real server back, nothing is left to do.
    assert story.converge().executed() == []


def test_3c_a_preview_of_a_change_under_app_plans_the_image_and_what_runs_it(story):
    """What a pull request's preview comment shows for a change to the site's code: an update of
    the image and of each event's migrate, static and stack steps, and nothing else; the preview
    builds, pushes and runs nothing."""
    box = story.box
    tags = sorted(registry_api(box, "rehearsal/site/tags/list")["tags"])
    steps = box.check(f"cat {layout.STEPS_DIR}/*")
    changed = REPO_ROOT / "app" / "manage.py"
    original = changed.read_bytes()
    changed.write_bytes(original + b"# rehearsal: a change under app/\n")
    try:
        preview = story.stack.preview()
    finally:
        changed.write_bytes(original)
    story.printed.append(preview.stdout)
    assert sorted(preview.ran()) == sorted(
        [("app-image", "update")]
        + [(f"{e}-{s}", "update") for e in ("event1", "event2") for s in STEPS_OF_A_RELEASE]
    )
    assert sorted(registry_api(box, "rehearsal/site/tags/list")["tags"]) == tags
    assert box.check(f"cat {layout.STEPS_DIR}/*") == steps
    # With app/ as it was, the engine finds nothing to do.
    story.converge(expect_no_changes=True)


def test_9_postgres_listens_on_localhost_and_the_bridge_only(story):
    box = story.box
    gateway = "172.20.0.1"  # first host of the default swarmSubnet 172.20.0.0/16
    listening = box.check("ss -Hltn 'sport = :5432' | awk '{print $4}'").split()
    addresses = {address.rsplit(":", 1)[0] for address in listening}
    assert gateway in addresses, listening
    assert addresses <= {"127.0.0.1", "[::1]", gateway}, listening

    # From the box itself (its own address, outside the swarm subnet) even the right password
    # is refused. The password goes on stdin, never on a command line.
    password = story.stack.secret_output("event1-db-password", "result")
    from_host = box.ssh(
        "IFS= read -r PGPASSWORD; export PGPASSWORD; "
        f"psql -h {gateway} -U ev_event1 -d ev_event1 -Atc 'select current_user'",
        stdin=password + "\n",
    )
    assert from_host.status != 0 and "no pg_hba.conf entry" in from_host.stderr, from_host

    # From event1's own container, with its own secret: its database, and not event2's.
    container = next(iter(story.containers("event1")))

    def connect_from_event1(database: str):
        return box.ssh(f"docker exec -i {container} python - {database}", stdin=CONNECT_AS_SITE)

    own = connect_from_event1("ev_event1")
    assert own.status == 0 and own.stdout.strip() == "ev_event1", own.stderr
    other = connect_from_event1("ev_event2")
    assert other.status != 0, "event1's role reached event2's database"
    assert "ev_event2" in other.stderr or "permission denied" in other.stderr, other.stderr


def test_4_a_code_change_rolls_both_events_under_load(story):
    tag_new_base_image(story.base_image, NEXT_BASE_IMAGE)
    old_digest = story.converges[-1].outputs["imageDigest"]
    counts = {path: hits(story, path) for path in ("/event1/", "/event2/")}
    ports_before = {event: published_port(story.box, event) for event in ("event1", "event2")}
    refused = "grep -c 'connect() failed' /var/log/nginx/error.log || true"
    refused_before = int(story.box.check(refused))
    story.base_image = NEXT_BASE_IMAGE
    with SteadyLoad(story, ["/event1/", "/event2/"], posts=("/event1/", "/event2/")) as load:
        result = story.converge()
    figures.record("code-change converge (new image, 2 events)", f"{result.seconds:.0f} s")
    figures.record(
        "failed requests during that rollout (one server, GET and POST)",
        f"{load.failed} of {load.total}",
    )
    assert load.posts_answered > 0
    # The new release started beside the old one, on the event's other port.
    for event, before in ports_before.items():
        configured = next(e for e in story.events if e["name"] == event).get("port")
        pair = set(config.event_ports(configured or config.default_port(event)))
        assert {before, published_port(story.box, event)} == pair
    assert load.failed == 0, load.report()
    # Nginx left each old task before swarm stopped it (event_stack.sh points it at the new one
    # once that answers): no request of the load met a stopped task's port. (Had Nginx stayed on
    # the old port until the rollout was over, each would be refused for the new task's 30 s of
    # monitoring.)
    assert int(story.box.check(refused)) == refused_before
    # Between rollouts Nginx tries only the live port: visits leave no refused connection in its
    # error log (the free port is a backup, tried only when the live one fails).
    before = int(story.box.check(refused))
    for _ in range(20):
        assert requests.get(story.url("/event1/"), timeout=5).status_code == 200
        assert requests.get(story.url("/event2/"), timeout=5).status_code == 200
    assert int(story.box.check(refused)) == before
    new_digest = result.outputs["imageDigest"]
    assert new_digest != old_digest and len(result.builds) == 1
    order = result.executed()
    for event in ("event1", "event2"):
        # The engine updates the migration step (the command plugin runs its `create` again,
        # as no `update` is set), before the stack step's update.
        assert order.count((f"{event}-migrate", "update")) == 1
        assert order.index((f"{event}-migrate", "update")) < order.index(
            (f"{event}-stack", "update")
        )
        assert set(story.containers(event).values()) == {new_digest}
    for path, before in counts.items():
        assert hits(story, path) >= before + load.ok_by_path[path] + 1
    story.assert_uploads_served()  # the new tasks mount the same files


def published_port(box: Box, event: str) -> int:
    """The port the event's live release publishes on the server."""
    return int(
        box.check(
            "docker service inspect --format"
            " '{{range .Spec.EndpointSpec.Ports}}{{.PublishedPort}}{{end}}' "
            + layout.service_name(event)
        )
    )


def test_5_a_broken_release_fails_naming_the_event_and_the_old_one_keeps_serving(story):
    good = story.containers("event1")
    count = hits(story, "/event1/")
    story.events[0]["settings"] = BROKEN_SETTINGS
    load = SteadyLoad(story, ["/event1/"], posts=("/event1/",))
    load.start()
    try:
        with pytest.raises(EngineRunError) as failure:
            story.converge()
    finally:
        del story.events[0]["settings"]
        load.stop()
    figures.record(
        "failed requests during a failed release and its rollback", f"{load.failed} of {load.total}"
    )
    assert load.failed == 0, load.report()
    assert load.posts_answered > 0
    # What the user reads first, in the provider's words: the step, then the reason (item 12),
    # not the whole script quoted on one line.
    assert failure.value.failed_steps() == ["event1-stack"], failure.value.text
    (message,) = failure.value.errors("event1-stack")
    first_lines = message.splitlines()[:4]
    assert len(first_lines[0]) < 300, first_lines[0]
    assert "django-swarm step event1-stack: event_stack.sh" in first_lines[0]
    assert any(
        re.match(r"event event1: .*the previous version \(if any\) keeps serving", line)
        for line in first_lines[1:]
    ), message
    assert set(story.containers("event1").values()) == set(good.values())
    assert hits(story, "/event1/") == count + load.ok_by_path["/event1/"] + 1
    story.converge()  # the fixed config converges again
    assert hits(story, "/event1/") == count + load.ok_by_path["/event1/"] + 2


def test_5a_a_step_that_failed_on_the_server_runs_again_at_the_next_up(story):
    """A step that failed keeps its old state in the engine (the command plugin's rule C5): once
    the cause on the server is gone, the same `pulumi up` runs it again, and it leaves nothing
    behind."""
    box = story.box
    live = story.containers("event2")
    # Something on the server in the step's way: a directory where event2's stack step writes
    # the stack file it is about to deploy.
    in_the_way = f"{layout.stack_file('event2')}.new"
    box.check(f"mkdir {in_the_way}")
    # A change the engine updates event2's stack step for; kept for the stories after this one.
    story.events[1]["settings"] = {"REHEARSAL_MARK": "retried"}
    try:
        with pytest.raises(EngineRunError) as failure:
            story.converge()
    finally:
        box.check(f"rmdir {in_the_way}")
    assert failure.value.failed_steps() == ["event2-stack"], failure.value.text
    (message,) = failure.value.errors("event2-stack")
    assert "django-swarm step event2-stack: event_stack.sh" in message.splitlines()[0]
    assert "Is a directory" in message, message
    assert story.containers("event2") == live
    count = hits(story, "/event2/")
    # The same up again: the engine kept the step's old inputs, so it runs the step again.
    retried = story.converge()
    assert retried.executed() == [("event2-stack", "update")]
    env = box.check(
        "docker service inspect --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}' "
        + layout.service_name("event2")
    )
    assert "REHEARSAL_MARK=retried" in json.loads(env)
    assert hits(story, "/event2/") == count + 1
    # Nothing is left behind: on the server, and in the engine's plan.
    assert box.ssh(f"test -e {in_the_way}").status == 1
    assert box.check("docker stack ls --format '{{.Name}}'").split() == ["event1", "event2"]
    story.converge(expect_no_changes=True)


def run_static_step(story: Story, image: str, release: str) -> None:
    """event1's static step for ``image``, exactly as the program renders it."""
    script = render_script(
        "event_static.sh",
        {
            "IMAGE": image,
            "RELEASE": release,
            "EVENT_DIR": layout.event_dir("event1"),
            "STATIC_DIR": layout.static_dir("event1"),
            "SERVICE": layout.service_name("event1"),
        },
    )
    result = story.box.ssh(script)
    assert result.status == 0, result.stderr


def test_5b_a_failed_release_and_its_retry_keep_the_live_releases_static_files(story):
    """Two releases whose static step ran but which never went live (a failed release, then a
    retry): the live release's files stay served, the failed one's go."""
    box = story.box
    live_image = box.check(
        "docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' event1_web"
    ).strip()
    live = live_image.rsplit("@sha256:", 1)[1][:12]
    css = "/event1/static/admin/css/base.css"
    for tag in ("b", "c"):
        build = f"FROM {live_image}\nUSER root\nRUN echo {tag} > /app/staticfiles/only-{tag}.txt\n"
        box.check(f"printf '{build}' | docker build -q -t rehearsal/static-{tag} -")

    run_static_step(story, "rehearsal/static-b", "b" * 12)
    assert requests.get(story.url("/event1/static/only-b.txt"), timeout=10).text == "b\n"
    run_static_step(story, "rehearsal/static-c", "c" * 12)
    assert requests.get(story.url("/event1/static/only-c.txt"), timeout=10).text == "c\n"
    assert requests.get(story.url("/event1/static/only-b.txt"), timeout=10).status_code == 404
    assert requests.get(story.url(css), timeout=10).status_code == 200
    releases = box.check(f"ls {layout.event_dir('event1')}/releases").split()
    assert sorted(releases) == sorted([live, "c" * 12])
    # The files served are never written in place: each set is a new directory.
    assert box.check(f"readlink {layout.static_dir('event1').rstrip('/')}").strip() == (
        f"served/{'c' * 12}-{live}"
    )

    # Back to what the program deployed (its state says so): the live release alone.
    run_static_step(story, live_image, live)
    assert requests.get(story.url("/event1/static/only-c.txt"), timeout=10).status_code == 404
    assert box.check(f"ls {layout.event_dir('event1')}/releases").split() == [live]
    assert requests.get(story.url(css), timeout=10).status_code == 200


def test_6_a_reboot_brings_both_events_back_with_their_counts(story):
    counts = {path: hits(story, path) for path in ("/event1/", "/event2/")}
    story.box.reboot()
    start_ps_sampler(story.box)
    for path in ("/event1", "/event2"):
        wait_until_serving(story, path, timeout=240)
    for path, before in counts.items():
        assert hits(story, path) == before + 1
    again = story.converge()
    assert again.executed() == [], "after a reboot, an up ran steps again"
    story.assert_uploads_served()


def test_6b_postgres_listens_on_the_bridge_again_when_it_came_late(story):
    """After a reboot where Docker was slow, PostgreSQL may give up waiting for docker_gwbridge's
    gateway and listen on localhost only; the host's timer restarts it once the gateway is up."""
    box = story.box
    (address,) = box.check("ip -4 -o address show dev docker_gwbridge | awk '{print $4}'").split()
    gateway = address.split("/")[0]
    unit = box.check("systemctl list-units --plain --no-legend 'postgresql@*' | awk '{print $1}'")
    unit = unit.split()[0].removesuffix(".service")
    count = hits(story, "/event1/")
    # The gateway is missing while PostgreSQL starts: it waits for it (bounded), then gives up.
    box.check(f"ip address del {address} dev docker_gwbridge && systemctl restart {unit}")
    assert f"{gateway}:5432" not in box.check("ss -Hltn")
    box.check(f"ip address add {address} dev docker_gwbridge")
    wait_until_serving(story, "/event1", timeout=120)
    # While PostgreSQL was out of reach the tasks' health checks failed: swarm may be replacing
    # them, which on one server leaves a short gap (the new task takes the same port).
    wait_until_settled(story, "event1", timeout=120)
    assert f"{gateway}:5432" in box.check("ss -Hltn")
    assert hits(story, "/event1/") == count + 1
    journal = box.check("journalctl -q -o cat -u django-swarm-postgres-listen.service")
    assert f"PostgreSQL does not listen on {gateway}: restarting {unit}" in journal


def test_7_a_third_event_deploys_alone_and_leaves_alone_keeping_its_database(story):
    box = story.box
    story.events.append(dict(EVENT3))
    added = story.converge()
    assert added.executed() and all(key.startswith("event3-") for key, _ in added.executed())
    assert added.builds == []
    assert hits(story, "/event3/") == 1
    count1 = hits(story, "/event1/")
    login = added.outputs["eventAdmins"]["event3"]
    assert upload(story, "/event3", login, "logo.png", b"event3 logo").status_code == 302

    story.events.pop()
    removed = story.converge()
    # The event's component and every resource in it, and nothing else.
    assert "event3" in removed.deleted
    assert all(n == "event3" or n.startswith("event3-") for n in removed.deleted), removed.deleted
    assert {action for _, action in removed.executed()} == {"delete"}
    assert "event3" not in box.check("docker stack ls --format '{{.Name}}'").split()
    assert "event3.conf" not in location_files(box)
    assert box.ssh("test -e /srv/django-swarm/event3").status == 1
    assert requests.get(story.url("/event3/"), timeout=10).status_code == 404
    databases = box.check("runuser -u postgres -- psql -Atc 'select datname from pg_database'")
    assert "ev_event3" in databases.split()
    # Its uploaded files stay with its database.
    assert box.check(f"cat {layout.media_dir('event3')}/attachments/logo.png") == "event3 logo"
    assert hits(story, "/event1/") == count1 + 1


def location_files(box: Box) -> dict[str, str]:
    """Nginx location files of the events: file name -> its first line (the owning event).
    Each has an upstream file of the same name and owner."""
    owners = {}
    for directory in (layout.NGINX_LOCATIONS_DIR, layout.NGINX_UPSTREAMS_DIR):
        listing = box.check(
            f"for f in {directory}/*.conf; do"
            ' printf "%s\\t%s\\n" "${f##*/}" "$(head -n 1 "$f")"; done'
        )
        owners[directory] = dict(line.split("\t", 1) for line in listing.splitlines())
    assert owners[layout.NGINX_LOCATIONS_DIR] == owners[layout.NGINX_UPSTREAMS_DIR], owners
    return owners[layout.NGINX_LOCATIONS_DIR]


def test_7b_swapped_paths_and_a_renamed_event_converge_and_keep_their_data(story):
    box = story.box
    counts = {path: hits(story, path) for path in ("/event1/", "/event2/")}

    # Two events swap their paths in one `up`: each takes over the other's location file.
    story.events[0]["path"], story.events[1]["path"] = "/event2", "/event1"
    story.converge()
    assert hits(story, "/event1/") == counts["/event2/"] + 1
    assert hits(story, "/event2/") == counts["/event1/"] + 1
    story.events[0]["path"], story.events[1]["path"] = "/event1", "/event2"
    story.converge()
    assert hits(story, "/event1/") == counts["/event1/"] + 2
    assert hits(story, "/event2/") == counts["/event2/"] + 2

    # A renamed event is a new event at the same path, with a new database (docs/how-to.md: the old
    # event's data stays in its own database).
    story.events[1]["name"] = "event2b"
    story.converge()
    assert hits(story, "/event2/") == 1
    databases = box.check("runuser -u postgres -- psql -Atc 'select datname from pg_database'")
    assert {"ev_event2", "ev_event2b"} <= set(databases.split())
    assert "event2" not in box.check("docker stack ls --format '{{.Name}}'").split()
    owners = location_files(box)
    assert set(owners) == {"event1.conf", "event2.conf"}
    assert "'event2b'" in owners["event2.conf"]

    # Named back: event2 is deployed again on its kept database, and counts on.
    story.events[1]["name"] = "event2"
    story.converge()
    assert hits(story, "/event2/") == counts["/event2/"] + 3
    assert "'event2'" in location_files(box)["event2.conf"]
    assert hits(story, "/event1/") == counts["/event1/"] + 3


def test_memory_figures(story):
    """PSS per event (every process of its containers) and the host's share (every other
    process), after the story's thousands of visits, within what the program counts for them
    (the density story proves what a 1 GB droplet holds)."""
    measured = memory.measure(
        story.box, {event: story.containers(event) for event in ("event1", "event2")}
    )
    per_event = list(measured.per_event.values())
    assert len(per_event) == 2 and all(mb > 10 for mb in per_event)
    figures.record(
        "PSS per event (its containers' processes)", ", ".join(f"{mb:.0f} MB" for mb in per_event)
    )
    figures.record("PSS of the host (every other process)", measured.host_line())
    held, counted, line = measured.held_against_counted()
    figures.record("held / counted by the program", line)
    assert held <= counted


class StatusWatch(threading.Thread):
    """Requests ``path`` back to back until stopped; keeps each answer's status and body."""

    def __init__(self, story: Story, path: str):
        super().__init__(daemon=True)
        self.story, self.path = story, path
        self.stopping = threading.Event()
        self.answers: list[tuple[int, str]] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                response = requests.get(self.story.url(self.path), timeout=5)
                self.answers.append((response.status_code, response.text))
            except requests.RequestException as error:
                self.answers.append((0, str(error)))
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def restic_snapshots(story: Story, tags: str) -> list[dict]:
    """The repository's snapshots with all of ``tags`` (comma-separated), as restic lists them."""
    listing = story.box.check(
        f"set -a; . {layout.BACKUP_ENV}; restic snapshots --json --tag '{tags}'"
    )
    return json.loads(listing)


def test_10_a_backup_then_a_restore_puts_one_event_back_and_leaves_the_other(story):
    box = story.box
    admins = story.converges[-1].outputs["eventAdmins"]
    assert "django-swarm-backup.timer" in box.check("systemctl list-timers --all --no-pager")
    count1, count2 = hits(story, "/event1/"), hits(story, "/event2/")
    # The scheduled unit itself, as its timer starts it.
    box.check("systemctl start django-swarm-backup.service")
    assert story.s3.bucket_size(BACKUP_BUCKET) > 0, "nothing reached the bucket"
    scheduled = restic_snapshots(story, "event=event1,scheduled")
    assert scheduled, "no scheduled snapshot of event1"

    # Life goes on after the backup: visits, a new upload.
    for _ in range(3):
        hits(story, "/event1/")
    late = "/event1/media/attachments/late.txt"
    saved = upload(story, "/event1", admins["event1"], "late.txt", b"after the backup")
    assert saved.status_code == 302
    assert requests.get(story.url(late), timeout=10).status_code == 200

    watch = StatusWatch(story, "/event1/")
    watch.start()
    try:
        restored = box.ssh("django-swarm-restore event1 latest")
    finally:
        watch.stop()
    assert restored.status == 0, restored.stderr
    # During the restore: the live data, then only the maintenance page, then the snapshot's
    # data counting on from where it was: never an error, never anything in between.
    answers = watch.answers
    down = [i for i, (status, _) in enumerate(answers) if status == 503]
    assert down, "the restore never showed the maintenance page"
    assert all(status == 503 for status, _ in answers[down[0] : down[-1] + 1])
    assert all("being restored" in answers[i][1] for i in down)
    before = [json.loads(body)["hits"] for status, body in answers[: down[0]]]
    after = [json.loads(body)["hits"] for status, body in answers[down[-1] + 1 :]]
    assert all(c > count1 + 3 for c in before), before
    assert after == list(range(count1 + 1, count1 + 1 + len(after))), after

    # The count and the files are the snapshot's; the other event did not move.
    assert hits(story, "/event1/") == count1 + 1 + len(after)
    assert requests.get(story.url(late), timeout=10).status_code == 404
    story.assert_uploads_served()
    assert hits(story, "/event2/") == count2 + 1
    # What was there first is kept.
    kept = box.check("ls -d /var/lib/django-swarm/before-restore/event1-*").split()
    assert len(kept) == 1
    assert box.check(f"cat {kept[0]}/media/attachments/late.txt") == "after the backup"
    assert box.ssh(f"test -s {kept[0]}/database.dump").status == 0


def test_10b_a_broken_migration_leaves_a_snapshot_of_the_release_before_it(story):
    box = story.box
    docker("build", "-q", "-t", BROKEN_MIGRATION_BASE_IMAGE, "-", input_=(
        f"FROM {story.base_image}\nRUN echo {base64.b64encode(SITECUSTOMIZE.encode()).decode()}"
        " | base64 -d >/usr/lib/python3.13/sitecustomize.py\n"
    ))  # fmt: skip
    before = {s["id"] for s in restic_snapshots(story, "event=event1,pre-migrate")}
    count = hits(story, "/event1/")
    good_base = story.base_image
    story.base_image = BROKEN_MIGRATION_BASE_IMAGE
    try:
        with pytest.raises(EngineRunError, match="broken migration"):
            story.converge()
    finally:
        story.base_image = good_base
    (snapshot,) = [s for s in restic_snapshots(story, "event=event1,pre-migrate")
                   if s["id"] not in before]  # fmt: skip
    release = next(t for t in snapshot["tags"] if t.startswith("release="))
    # The old release still serves; the data moves on, then goes back to the snapshot.
    assert hits(story, "/event1/") == count + 1
    hits(story, "/event1/")
    restored = box.ssh(f"django-swarm-restore event1 {release}")
    assert restored.status == 0, restored.stderr
    assert hits(story, "/event1/") == count + 1
    story.converge()  # the good release converges again
    assert hits(story, "/event1/") == count + 2


def test_10c_an_event_removed_with_its_database_comes_back_from_its_backup(story):
    box = story.box
    event4 = {"name": "event4", "path": "/event4", "dropDatabaseOnDelete": True}
    story.events.append(dict(event4))
    added = story.converge()
    login = added.outputs["eventAdmins"]["event4"]
    for _ in range(4):
        hits(story, "/event4/")
    assert upload(story, "/event4", login, "poster.txt", b"event4 poster").status_code == 302
    box.check("django-swarm-backup run event4")

    story.events.pop()
    story.converge()
    databases = box.check("runuser -u postgres -- psql -Atc 'select datname from pg_database'")
    assert "ev_event4" not in databases.split()
    assert box.ssh(f"test -e {layout.media_dir('event4')}").status == 1

    story.events.append(dict(event4))
    story.converge()
    assert hits(story, "/event4/") == 1  # a new, empty database
    restored = box.ssh("django-swarm-restore event4 latest")
    assert restored.status == 0, restored.stderr
    assert hits(story, "/event4/") == 5
    poster = requests.get(story.url("/event4/media/attachments/poster.txt"), timeout=10)
    assert (poster.status_code, poster.text) == (200, "event4 poster")
    story.events.pop()
    story.converge()


def test_10d_backup_figures_for_a_busy_event(story):
    """Figures only (docs/backups.md): event1 with 100,000 counter rows (one per
    visit) and 50 MB of uploaded files; then 10 backups with a visit between each."""
    box = story.box
    database, media = layout.database_name("event1"), layout.media_dir("event1")
    rows = (
        "INSERT INTO hits_counter (name, hits)"
        " SELECT 'visit-' || n, 1 FROM generate_series(1, 100000) AS n ON CONFLICT DO NOTHING"
    )
    box.check(
        f"runuser -u postgres -- psql -q -d {database} -c {shlex.quote(rows)}"
        f" && install -d -o 10001 -g 10001 {media}/bulk"
        f" && for i in $(seq 50); do head -c 1048576 /dev/urandom >{media}/bulk/photo-$i.jpg; done"
        f" && chown -R 10001:10001 {media}/bulk"
    )
    started = time.monotonic()
    box.check("django-swarm-backup run event1")
    backup_seconds = time.monotonic() - started
    started = time.monotonic()
    box.check("django-swarm-restore event1 latest")
    restore_seconds = time.monotonic() - started
    assert requests.get(story.url("/event1/media/bulk/photo-7.jpg"), timeout=10).status_code == 200
    for _ in range(9):
        hits(story, "/event1/")
        box.check("django-swarm-backup run event1")
    size = story.s3.bucket_size(BACKUP_BUCKET)
    figures.record("backup of one event (100,000 rows, 50 MB of files)", f"{backup_seconds:.0f} s")
    figures.record("restore of that event", f"{restore_seconds:.0f} s")
    figures.record(
        "backup bucket after 10 backups of it (+ the other events' snapshots)",
        f"{size / 1e6:.0f} MB",
    )


def secret_values(story: Story) -> list[str]:
    """Every secret of the run, and every long line of the multi-line ones."""
    values = [
        story.box.registry_password,
        story.box.private_key,
        story.event_token,
        story.s3_secret,
        *story.generated,
    ]
    pieces = set(values)
    for value in values:
        pieces |= {line for line in value.splitlines() if len(line) >= 8 and "-----" not in line}
    # A step reads its secrets from stdin as base64 lines (remote_script.render_stdin).
    return sorted(pieces | {base64_line(piece) for piece in pieces})


def base64_line(secret: str) -> str:
    return base64.b64encode(secret.encode()).decode()


def leaked(text: str, secrets: list[str]) -> list[str]:
    return [secret[:4] + "..." for secret in secrets if secret in text]


def texts(value: Any) -> Iterator[str]:
    """Every string in an exported state, and in the JSON text of a revealed secret."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "plaintext" and isinstance(item, str):
                yield from texts(json.loads(item))
            else:
                yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)
    elif isinstance(value, str):
        yield value


def test_8_secrets_never_in_command_lines_the_state_the_engines_output_or_logs(story):
    box = story.box
    secrets = secret_values(story)
    assert any("\n" in s and '"' in s and "$" in s and " " in s for s in secrets)
    assert len(story.generated) >= 8, "each event's database, secret key and admin, and restic"
    ps_lines = box.check(f"cat {PS_LOG}")
    assert len(ps_lines.splitlines()) > 50, "the ps sampler saw almost nothing"
    assert leaked(ps_lines, secrets) == [], "a secret appeared in a command line on the box"
    # The state: every command's text and output, every input and output of every resource.
    # Revealed, the test sees each secret where the state keeps it: as it is, or as a step's
    # base64 stdin line (`pulumi config set` drops a value's trailing newline:
    # pulumi/pulumi pkg/cmd/pulumi/config/config.go, unless --raw).
    revealed = "\n".join(texts(story.stack.export(show_secrets=True)))
    for secret in (story.box.registry_password, story.s3_secret):
        kept = secret.removesuffix("\n")
        assert kept in revealed or base64_line(kept) in revealed, secret[:4]
    # The generated passwords reach the box as a step's base64 stdin line too. (Those of the
    # events removed since are gone from the state: the ones it holds now.)
    in_state = story.stack.generated_passwords()
    assert in_state and set(in_state) <= story.generated
    assert any(base64_line(password) in revealed for password in in_state)
    plain = "\n".join(texts(story.stack.export()))
    assert leaked(plain, secrets) == [], "a secret is in plain text in the state"
    # What `pulumi up` printed, the steps' logged output and the plugins' errors included.
    assert len(story.printed) > len(story.converges)  # the preview's too, and the failed ups'
    assert leaked("\n".join(story.printed), secrets) == [], "pulumi printed a secret"
    logs = box.check(
        "journalctl --no-pager -o cat; cat /var/log/nginx/*.log /var/log/postgresql/*.log; "
        # Every container's own log (`docker service logs` never ends after a daemon restart).
        "for c in $(docker ps -aq); do docker logs $c 2>&1; done"
    )
    assert leaked(logs, secrets) == [], "a secret is in the box's logs"


def test_teardown_as_the_readme_says_runs_every_delete_and_leaves_nothing_serving(story):
    box = story.box
    table = "django_swarm_rehearsal_kept"
    for event in ("event1", "event2"):
        box.check(f"runuser -u postgres -- psql -qd ev_{event} -c 'create table {table} (n int)'")
    # docs/how-to.md, "Tear down an event, or everything": a plain destroy deletes all it can, then
    # stops at restic's protected password, in the engine's words; --exclude-protected then
    # removes the rest.
    with pytest.raises(EngineRunError) as plain:
        story.destroy()
    assert plain.value.failed_steps() == ["host-restic-password"]
    assert "cannot be deleted" in plain.value.text
    assert "because it is protected" in plain.value.text
    run = story.destroy(exclude_protected=True)
    figures.record("destroy --exclude-protected (after a plain destroy)", f"{run.seconds:.0f} s")
    deletes = [
        s.name for s in plain.value.steps + run.steps if s.op == "delete" and s.type == COMMAND
    ]
    assert deletes.index("event1-nginx") < deletes.index("event1-stack")
    # Only the password is left (with the stack, its component and the provider it needs).
    assert story.stack.program_resources() == ["host-restic-password"]
    # The host steps' deletes ran too: no swarm, no container, Debian's default Nginx site.
    assert box.check("docker info --format '{{.Swarm.LocalNodeState}}'").strip() == "inactive"
    left = box.check("docker ps -a --format '{{.Names}} {{.Image}} {{.Status}} {{.Labels}}'")
    assert left == "", f"containers left after destroy:\n{left}"
    for directory in (layout.NGINX_LOCATIONS_DIR, layout.NGINX_UPSTREAMS_DIR):
        assert box.ssh(f"ls {directory}/*.conf").status != 0
    assert box.ssh("test -L /etc/nginx/sites-enabled/default").status == 0
    # Every step's delete took its instance away: no count is left to keep anything.
    assert box.check(f"ls -A {layout.STEPS_DIR}") == ""
    response = requests.get(story.url("/event1/"), timeout=10)
    assert response.status_code != 200 or "hits" not in response.text
    # What the events' users made stays: the databases and the uploaded files.
    for event in ("event1", "event2"):
        listed = box.check(f"runuser -u postgres -- psql -qtAd ev_{event} -c '\\dt {table}'")
        assert table in listed, event
    for path, content in story.uploads.items():
        on_host = layout.media_dir("event1") + path.removeprefix("/event1/media")
        assert box.check(f"sha256sum <{on_host}").split()[0] == hashlib.sha256(content).hexdigest()
