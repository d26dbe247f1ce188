"""The rehearsal of workers: three Debian 13 boxes on a Docker network of our own, a manager and
two workers, as a droplet and its workers share a VPC, deployed by the real engine (one stack of
the project, ``ProgramStack``, as in ``test_story``). The program reaches each box over SSH on
127.0.0.1; the boxes reach each other only on that network. Stories in order: add a worker
(tasks land on it), exact counts across two nodes, a rollout under load, a worker stopped under
load (its task moves), a worker removed under load (drained), a restore of an event with a task
on a worker, and teardown.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

import layout
from local.box import Box, BoxNetwork, docker
from tests.engine import REPO_ROOT, EngineRunError
from tests.rehearsal import figures
from tests.rehearsal.conftest import REGISTRY_USER, existing_target, tag_new_base_image
from tests.rehearsal.load import SteadyLoad, hits
from tests.rehearsal.program import Converge, ProgramStack
from tests.rehearsal.ps_sampler import PS_LOG, start_ps_sampler
from tests.rehearsal.test_story import NEXT_BASE_IMAGE

SECRET_KEYS = ["sshPrivateKey", "registryPassword"]
MANAGER = "rehearsal-manager"
BROKEN_ON_WORKERS = "django-swarm/python-base:broken-on-workers"


@dataclass
class Cluster:
    manager: Box
    workers: list[Box]
    stack: ProgramStack
    base_image: str = "django-swarm/python-base:trixie"
    events: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"name": "event1", "path": "/event1"},
            {"name": "event2", "path": "/event2"},
        ]
    )
    # The worker boxes the config lists.
    joined: list[Box] = field(default_factory=list)
    converges: list[Converge] = field(default_factory=list)

    def config(self) -> dict[str, Any]:
        return {
            **existing_target(self.manager, self.base_image, self.events),
            "advertiseAddress": self.manager.address,
            "workers": [
                {"host": "127.0.0.1", "sshPort": box.ssh_port, "advertiseAddress": box.address}
                for box in self.joined
            ],
        }

    def converge(self) -> Converge:
        result = self.stack.converge(self.config(), SECRET_KEYS)
        self.converges.append(result)
        return result

    def set_replicas(self, event: str, replicas: int) -> None:
        next(e for e in self.events if e["name"] == event)["replicas"] = replicas

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.manager.http_port}{path}"

    def running(self, event: str) -> dict[str, str]:
        """Node -> image of each running task of the event, as the manager sees them."""
        services = f"{event}_web" + (
            f" {event}_web-workers"
            if self.manager.ssh(f"docker service inspect {event}_web-workers").status == 0
            else ""
        )
        out = self.manager.check(
            f"docker service ps --filter desired-state=running --format"
            f" '{{{{.Node}}}} {{{{.Image}}}} {{{{.CurrentState}}}}' {services}"
        )
        tasks = [line.split() for line in out.splitlines()]
        return {node: image for node, image, state, *_ in tasks if state == "Running"}

    def wait_for_tasks(self, event: str, nodes: set[str], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (running := self.running(event)).keys() != nodes:
            assert time.monotonic() < deadline, f"{event} runs on {running}, not on {nodes}"
            time.sleep(2)
        return running


@pytest.fixture(scope="module")
def cluster(box_images, registry_password, tmp_path_factory, engine_home) -> Iterator[Cluster]:
    network = BoxNetwork()
    workdir = tmp_path_factory.mktemp("rehearsal-workers")
    workdir.chmod(0o700)
    manager = Box(
        workdir, REGISTRY_USER, registry_password, network, network.address(2), hostname=MANAGER
    )
    boxes = [manager]
    stack = ProgramStack(engine_home, "workers")
    try:
        manager.start()
        for n in (1, 2):
            worker_dir = workdir / f"worker-{n}"
            worker_dir.mkdir()
            worker = Box(
                worker_dir, REGISTRY_USER, registry_password, network, network.address(2 + n),
                key_of=manager, hostname=f"rehearsal-worker-{n}",
            )  # fmt: skip
            boxes.append(worker)
            worker.start()
        yield Cluster(manager, boxes[1:], stack)
    finally:
        stack.remove()
        for each in boxes:
            each.remove()
        network.remove()


def worker_task_hits(box: Box, service: str) -> int:
    """A visit of the event's page made on ``box`` to its own task of ``service``, bypassing
    Nginx: proof that this task, and not another, reads the event's data."""
    (task,) = box.check(
        f"docker ps -q --filter label=com.docker.swarm.service.name={service}"
    ).split()
    page = box.check(
        f'docker exec {task} python -c "import urllib.request as u;'
        " print(u.urlopen('http://127.0.0.1:8000/').read().decode())\""
    )
    return json.loads(page)["hits"]


def test_w1_adding_a_worker_puts_an_events_second_task_on_it(cluster):
    first = cluster.converge()
    figures.record("first converge, manager only (workers story)", f"{first.seconds:.0f} s")
    assert cluster.running("event1").keys() == {MANAGER}

    worker = cluster.workers[0]
    start_ps_sampler(worker)
    cluster.joined = [worker]
    cluster.set_replicas("event1", 2)
    added = cluster.converge()
    figures.record("converge that adds a worker (event1 -> 2 replicas)", f"{added.seconds:.0f} s")
    nodes = cluster.manager.check(
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'"
    )
    assert sorted(nodes.splitlines()) == [f"{MANAGER} Ready Leader", "rehearsal-worker-1 Ready "]
    digest = added.outputs["imageDigest"]
    assert cluster.running("event1") == {MANAGER: digest, "rehearsal-worker-1": digest}
    # An event with one replica stays on the manager.
    assert cluster.running("event2").keys() == {MANAGER}
    # The worker's one task reached PostgreSQL on the manager: it answers as a site, counting.
    assert worker_task_hits(worker, "event1_web-workers") >= 1
    # PostgreSQL admits the worker's address alone, besides the manager's own bridge.
    hba = cluster.manager.check("cat /etc/postgresql/*/main/pg_hba.conf")
    assert f"host sameuser all {worker.address}/32 scram-sha-256" in hba
    assert f"{cluster.workers[1].address}" not in hba
    # The join token went to dockerd on stdin: no command line of the worker ever showed it.
    token = cluster.manager.check("docker swarm join-token -q worker").strip()
    seen = worker.check(f"cat {PS_LOG}")
    # (The join step itself is too short for a 0.2 s sampler to catch every time; dockerd,
    # started by the packages step just before it, shows the sampler watched provisioning.)
    assert "dockerd" in seen and token not in seen


def gunicorn_visits(box: Box, service: str) -> int:
    """How many visits of the event's page the box's task of ``service`` logged."""
    return int(
        box.check(
            f"ids=$(docker ps -q --filter label=com.docker.swarm.service.name={service});"
            " for id in $ids; do docker logs $id 2>&1; done | grep -c '\"GET / HTTP' || true"
        )
    )


def test_w2_an_event_counts_exactly_across_its_tasks_on_two_nodes(cluster):
    worker = cluster.workers[0]
    before = hits(cluster, "/event1/")
    logged = (
        gunicorn_visits(cluster.manager, "event1_web"),
        gunicorn_visits(worker, "event1_web-workers"),
    )
    seen: list[int] = []
    lock = threading.Lock()

    def visit(times: int) -> None:
        for _ in range(times):
            count = requests.get(cluster.url("/event1/"), timeout=10).json()["hits"]
            with lock:
                seen.append(count)

    threads = [threading.Thread(target=visit, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 100 concurrent visits through both nodes: each got its own number, none lost or repeated.
    assert sorted(seen) == list(range(before + 1, before + 101))
    on_manager = gunicorn_visits(cluster.manager, "event1_web") - logged[0]
    on_worker = gunicorn_visits(worker, "event1_web-workers") - logged[1]
    figures.record(
        "visits answered on manager / worker (100 concurrent)", f"{on_manager} / {on_worker}"
    )
    assert on_manager + on_worker == 100
    assert on_manager > 0 and on_worker > 0


def test_w3_a_rollout_across_two_nodes_fails_no_request(cluster):
    tag_new_base_image(cluster.base_image, NEXT_BASE_IMAGE)
    old = cluster.converges[-1].outputs["imageDigest"]
    cluster.base_image = NEXT_BASE_IMAGE
    with SteadyLoad(cluster, ["/event1/", "/event2/"], posts=("/event1/", "/event2/")) as load:
        result = cluster.converge()
    figures.record(
        "failed requests during a rollout over manager + worker (GET and POST)",
        f"{load.failed} of {load.total}",
    )
    new = result.outputs["imageDigest"]
    assert new != old
    assert cluster.running("event1") == {MANAGER: new, "rehearsal-worker-1": new}
    assert load.posts_answered > 0
    assert load.failed == 0, load.report()


def test_w3b_a_release_broken_on_the_workers_alone_fails_and_the_live_one_serves_on(cluster):
    """The manager's task of the new release is healthy, the workers' one never starts: the step
    fails naming event1_web-workers, and both services go back to the live release."""
    live = cluster.converges[-1].outputs["imageDigest"]
    count = hits(cluster, "/event1/")
    # A release that exits at start where DB_HOST is the manager's private address: only the
    # tasks on workers have that (the manager's own task and the migration job use the gateway).
    hook = (
        "import os\n"
        f"if os.environ.get('DB_HOST') == {cluster.manager.address!r}:\n"
        "    os.write(2, b'rehearsal: this release breaks on workers\\n')\n"
        "    os._exit(3)\n"
    )
    stdlib = "$(python3 -c 'import sysconfig; print(sysconfig.get_path(\"stdlib\"))')"
    docker("build", "-q", "-t", BROKEN_ON_WORKERS, "-", input_=f"FROM {cluster.base_image}\n"
           f"RUN echo {base64.b64encode(hook.encode()).decode()} | base64 -d"
           f" >\"{stdlib}/sitecustomize.py\"\n")  # fmt: skip
    good = cluster.base_image
    cluster.base_image = BROKEN_ON_WORKERS
    try:
        with pytest.raises(EngineRunError) as failed:
            cluster.converge()
    finally:
        cluster.base_image = good
    assert failed.value.failed_steps() == ["event1-stack"], failed.value.text
    (message,) = failed.value.errors("event1-stack")
    reason = next(line for line in message.splitlines() if line.startswith("event event1:"))
    assert "the update of event1_web-workers failed and was rolled back" in reason, reason
    assert "the update of event1_web " not in reason
    assert "rolling event1_web back to the live release as well" in message
    # One release serves, the live one, on both nodes, and the count goes on.
    assert cluster.running("event1") == {MANAGER: live, "rehearsal-worker-1": live}
    assert hits(cluster, "/event1/") == count + 1
    # With the release mended, the next converge rolls both services onto it.
    mended = cluster.converge()
    new = mended.outputs["imageDigest"]
    assert cluster.running("event1") == {MANAGER: new, "rehearsal-worker-1": new}


def test_w4_a_stopped_worker_loses_its_task_to_another_and_no_request_fails(cluster):
    first, second = cluster.workers
    cluster.joined = [first, second]
    added = cluster.converge()
    figures.record("converge that adds a second worker", f"{added.seconds:.0f} s")
    # Swarm does not move running tasks onto a new node: event1's stays on worker 1.
    assert cluster.running("event1").keys() == {MANAGER, "rehearsal-worker-1"}

    started = time.monotonic()
    with SteadyLoad(cluster, ["/event1/", "/event2/"], posts=("/event1/",)) as load:
        docker("stop", "-t", "30", first.name)
        cluster.wait_for_tasks("event1", {MANAGER, "rehearsal-worker-2"}, timeout=180)
        moved = time.monotonic() - started
        time.sleep(5)
    figures.record("a stopped worker's task running on the other worker after", f"{moved:.0f} s")
    figures.record(
        "failed requests while a worker stopped and its task moved",
        f"{load.failed} of {load.total}",
    )
    assert load.failed == 0, load.report()
    # The worker comes back as a node of the swarm, with nothing to run until something moves.
    docker("start", first.name)
    first.wait_ready(timeout=180)
    deadline = time.monotonic() + 120
    while "rehearsal-worker-1 Ready" not in cluster.manager.check(
        "docker node ls --format '{{.Hostname}} {{.Status}}'"
    ):
        assert time.monotonic() < deadline, "worker 1 did not rejoin the swarm"
        time.sleep(2)


def test_w5_removing_a_worker_drains_it_and_no_request_fails(cluster):
    first, second = cluster.workers
    count = hits(cluster, "/event1/")
    cluster.joined = [first]
    with SteadyLoad(cluster, ["/event1/", "/event2/"], posts=("/event1/",)) as load:
        removed = cluster.converge()
    figures.record("converge that removes a worker", f"{removed.seconds:.0f} s")
    figures.record(
        "failed requests while a worker was drained and removed",
        f"{load.failed} of {load.total}",
    )
    steps = removed.executed()
    name = f"worker-{second.address.replace('.', '-')}"
    # Drained, out of the swarm, and only then no longer admitted by PostgreSQL: no step of the
    # manager ran before, and the worker's tasks kept their database until they stopped.
    assert [step for step in steps if step[0].endswith(("-node", "-join", "-postgres"))] == [
        (f"{name}-node", "delete"),
        (f"{name}-join", "delete"),
        (f"{name}-postgres", "delete"),
    ]
    assert load.failed == 0, load.report()
    nodes = cluster.manager.check("docker node ls --format '{{.Hostname}}'").split()
    assert sorted(nodes) == [MANAGER, "rehearsal-worker-1"]
    assert second.check("docker info --format '{{.Swarm.LocalNodeState}}'").strip() == "inactive"
    # Its task started again on the worker that is left; nothing was lost.
    assert cluster.wait_for_tasks("event1", {MANAGER, "rehearsal-worker-1"}, timeout=120)
    assert hits(cluster, "/event1/") == count + 1 + load.ok_by_path["/event1/"]
    assert f"{second.address}/32" not in cluster.manager.check(
        "cat /etc/postgresql/*/main/pg_hba.conf"
    )


def test_w5b_a_restore_stops_the_tasks_on_the_workers_too_and_both_serve_the_snapshot(cluster):
    (worker,) = cluster.joined
    manager = cluster.manager
    count = hits(cluster, "/event1/")
    manager.check("systemctl start django-swarm-backup.service")
    # Visits after the backup, on both tasks: the restore takes them back.
    for _ in range(3):
        hits(cluster, "/event1/")
    assert worker_task_hits(worker, "event1_web-workers") == count + 4
    restored = manager.ssh("django-swarm-restore event1 latest")
    assert restored.status == 0, restored.stderr
    # Both services were stopped for the restore (the workers' task holds connections to the
    # database it replaces) and started again where they ran.
    log = restored.stderr
    assert "event1_web=1 event1_web-workers=1" in log, log
    cluster.wait_for_tasks("event1", {MANAGER, "rehearsal-worker-1"}, timeout=120)
    # Both tasks count on from the snapshot's count.
    assert hits(cluster, "/event1/") == count + 1
    assert worker_task_hits(worker, "event1_web-workers") == count + 2
    assert manager.ssh(f"test -e {layout.maintenance_flag('event1')}").status != 0


def test_w6_teardown_with_deploy_sh_takes_every_node_out_of_the_swarm(cluster):
    # `./deploy.sh --destroy --yes`, as a user types it: what docs/how-to.md says for
    # `target: existing` (restic's password is protected, so it stays).
    stack = cluster.stack
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy.sh"), "--destroy", "--yes"],
        cwd=REPO_ROOT,
        env={**os.environ, **stack.home.env_vars(), "STACK": stack.name},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Kept: every event's database and uploaded files, on your server" in done.stderr
    assert "resticPassword --show-secrets" in done.stderr
    assert f"Tearing down stack {stack.name}" in done.stderr
    assert re.search(r"- \d+ deleted", done.stdout), done.stdout[-2000:]  # the engine's summary
    assert stack.program_resources() == ["host-restic-password"]
    for event in ("event1", "event2"):
        assert layout.database_name(event) in cluster.manager.check(
            "runuser -u postgres -- psql -qtAc 'select datname from pg_database'"
        )
    for box in (cluster.manager, cluster.workers[0]):
        assert box.check("docker info --format '{{.Swarm.LocalNodeState}}'").strip() == "inactive"
        assert box.check("docker ps -q") == "", box.name
    assert cluster.manager.check("docker ps -aq") == ""
