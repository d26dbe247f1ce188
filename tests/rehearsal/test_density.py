"""The rehearsal of density: eight events on one box of the cheapest droplet's memory, deployed
by the real engine (one stack of the project, ``ProgramStack``, as in ``test_story``).

The box has 1 GiB of memory and no swap, as an ``s-1vcpu-1gb`` droplet: every process of it and
of its containers counts against that (``Box(memory=...)``). Stories in order: the first converge
of eight events, 200 concurrent visits to each of them at once with exact counts, a code change
of all eight under steady load, no process killed for memory (the box's cgroup and the kernel's
log), what the host and the events hold against what the program counts for them, a ninth event
refused before anything runs, a reboot that starts all eight at once, and an event whose site
leaks memory stopped by its own limit while the other seven answer every visit.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

import config
import layout
import render_event
from local.box import Box, docker
from tests.engine import EngineRunError
from tests.rehearsal import figures, memory
from tests.rehearsal.conftest import (
    REGISTRY_USER,
    existing_target,
    tag_new_base_image,
    task_containers,
)
from tests.rehearsal.load import SteadyLoad, hits, wait_until_serving
from tests.rehearsal.program import Converge, ProgramStack

SECRET_KEYS = ["sshPrivateKey", "registryPassword"]
# An s-1vcpu-1gb droplet's memory; it has no swap.
DROPLET_MEMORY = "1g"
EVENTS = [{"name": f"event{n}", "path": f"/event{n}"} for n in range(1, 9)]
VISITS = 200
# A new release of every event: a new base image (the `baseImage` config value), as test_story's
# code change. Heavier than a change under app/: every layer above the base is new.
NEXT_BASE_IMAGE = "rehearsal/python-base:density-next"
# A gunicorn worker whose site leaks: a visit to <event path>/leak/ holds 16 MB more every 20 ms,
# never giving it back, until the kernel stops the worker. The program builds one app for every
# event, so the leaking event alone loads this from its media directory through two settings
# (LEAKING_SETTINGS): the rehearsal's stand-in for one event's bug.
LEAKING_WORKER = """
import time

from gunicorn.workers.gthread import ThreadWorker

held = []


class LeakingWorker(ThreadWorker):
    def load_wsgi(self):
        super().load_wsgi()
        site = self.wsgi

        def leaking_site(environ, start_response):
            if environ["PATH_INFO"].endswith("/leak/"):
                while True:
                    held.append(b"x" * (16 << 20))
                    time.sleep(0.02)
            return site(environ, start_response)

        self.wsgi = leaking_site
"""
LEAKING_SETTINGS = {
    "PYTHONPATH": render_event.SITE_MEDIA_ROOT,
    "GUNICORN_WORKER_CLASS": "rehearsal_leak.LeakingWorker",
}


def page(event: dict[str, Any]) -> str:
    """The path of the event's visit counter."""
    return f"{event['path']}/"


# The kernel's line for each process it kills for memory (mm/oom_kill.c, dump_oom_victim).
OOM_KILL_LINE = re.compile(r"oom-kill:.*,oom_memcg=([^,]*),task_memcg=([^,]*),")


@dataclass
class Crowd:
    box: Box
    stack: ProgramStack
    base_image: str = "django-swarm/python-base:trixie"
    events: list[dict[str, Any]] = field(default_factory=lambda: [dict(e) for e in EVENTS])
    converges: list[Converge] = field(default_factory=list)

    def converge(self) -> Converge:
        result = self.stack.converge(
            existing_target(self.box, self.base_image, self.events), SECRET_KEYS
        )
        self.converges.append(result)
        return result

    def containers(self, event: str) -> list[str]:
        return task_containers(self.box, event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.box.http_port}{path}"

    def oom_log(self) -> list[str]:
        """The kernel's log lines about killing for memory in the box: the box's id is its
        cgroup's name, which the kernel prints for each process it kills."""
        box_id = docker("inspect", "-f", "{{.Id}}", self.box.name).strip()
        logged = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
        return [line for line in logged.splitlines() if box_id in line and "oom" in line.lower()]

    def oom_kills(self) -> int:
        """Processes the kernel killed for memory in the box or its containers.

        cgroup v2's memory.events counts the kills of the box's descendants too. cgroup v1 counts
        a kill only in the victim's own cgroup (a dockerd killed when the box ran out counted in
        the box's docker.service cgroup, not the box's), so every cgroup under the box is summed.
        A removed container's count goes with it: the kernel's log (test_3) covers those.
        """
        cgroup = self.box.memory_cgroup
        text = self.box.exec(
            f"if [ -f {cgroup}/memory.events ]; then cat {cgroup}/memory.events;"
            f" else find {cgroup} -name memory.oom_control -exec cat {{}} +; fi"
        )
        return sum(int(n) for n in re.findall(r"^oom_kill (\d+)$", text, re.M))


@pytest.fixture(scope="module")
def crowd(box_images, registry_password, tmp_path_factory, engine_home) -> Iterator[Crowd]:
    workdir = tmp_path_factory.mktemp("rehearsal-density")
    workdir.chmod(0o700)
    box = Box(workdir, REGISTRY_USER, registry_password, memory=DROPLET_MEMORY)
    stack = ProgramStack(engine_home, "density")
    try:
        box.start()
        yield Crowd(box, stack)
    finally:
        stack.remove()
        box.remove()


def test_1_eight_events_converge_on_a_1_gib_box(crowd):
    result = crowd.converge()
    figures.record("1 GiB box: first converge (8 events)", f"{result.seconds:.0f} s")
    # The box's containers live within its memory (not beside it, as the outer engine's are).
    cgroup = crowd.box.memory_cgroup
    (task,) = crowd.containers("event1")
    pid = crowd.box.check(f"docker inspect -f '{{{{.State.Pid}}}}' {task}").strip()
    lines = crowd.box.check(f"cat /proc/{pid}/cgroup").splitlines()
    # cgroup v1's memory hierarchy, or v2's one line.
    path = ([line for line in lines if line.split(":")[1] == "memory"] or lines)[0].split(":")[2]
    assert any(f"{root}{path}".startswith(f"{cgroup}/")
               for root in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup")), (cgroup, path)  # fmt: skip
    for event in crowd.events:
        hits(crowd, page(event))


def test_2_every_event_answers_200_concurrent_visits_at_once_with_exact_counts(crowd):
    before = {e["name"]: hits(crowd, page(e)) for e in crowd.events}
    start = threading.Barrier(len(crowd.events) * VISITS)

    def visit(path: str) -> tuple[int, int | None]:
        start.wait()
        try:
            answer = requests.get(crowd.url(f"{path}/"), timeout=120)
        except requests.ConnectionError:
            return 0, None
        return answer.status_code, answer.json()["hits"] if answer.status_code == 200 else None

    with ThreadPoolExecutor(len(crowd.events) * VISITS) as pool:
        futures = {
            e["name"]: [pool.submit(visit, e["path"]) for _ in range(VISITS)] for e in crowd.events
        }
        answers = {name: [f.result() for f in each] for name, each in futures.items()}
    nginx_errors = crowd.box.check("tail -n 5 /var/log/nginx/error.log")
    for event in crowd.events:
        name = event["name"]
        statuses = [status for status, _ in answers[name]]
        assert statuses == [200] * VISITS, (name, sorted(set(statuses)), nginx_errors)
        counts = sorted(hits for _, hits in answers[name])
        assert counts == list(range(before[name] + 1, before[name] + VISITS + 1)), name
    figures.record(
        "1 GiB box: 8 events x 200 concurrent visits", f"{len(crowd.events) * VISITS} answered"
    )


def test_2b_a_code_change_of_all_eight_under_steady_load_drops_no_visit(crowd):
    """Every event gets a new release while all eight are visited: they start one at a time (the
    server's start slot, held until an event's old release has stopped), within the box's
    memory, and no visit fails."""
    tag_new_base_image(crowd.base_image, NEXT_BASE_IMAGE)
    old_digest = crowd.converges[-1].outputs["imageDigest"]
    before = {e["name"]: hits(crowd, page(e)) for e in crowd.events}
    paths = [page(e) for e in crowd.events]
    crowd.base_image = NEXT_BASE_IMAGE
    with SteadyLoad(crowd, paths, posts=tuple(paths)) as load:
        result = crowd.converge()
    figures.record(
        "1 GiB box: code change of 8 events under load",
        f"{result.seconds:.0f} s; {load.failed} of {load.total} requests failed",
    )
    assert load.failed == 0, load.report()
    new_digest = result.outputs["imageDigest"]
    assert new_digest != old_digest
    images = crowd.box.check("docker service ls --format '{{.Name}} {{.Image}}'").splitlines()
    assert sorted(images) == sorted(f"{e['name']}_web {new_digest}" for e in crowd.events)
    for event in crowd.events:
        served = load.ok_by_path[page(event)]
        assert served > 0 and hits(crowd, page(event)) == before[event["name"]] + served + 1, event


def test_3_no_process_was_killed_for_memory(crowd):
    kills = crowd.oom_kills()
    killed = crowd.oom_log()
    figures.record("1 GiB box: processes killed for memory", str(kills))
    assert (kills, killed) == (0, [])


def test_4_what_the_events_and_the_host_hold_fits_what_the_program_counts(crowd):
    """PSS after the visits (memory.measure), against the config's rule (config.memory_needed_mb):
    the host's share and the events' PSS stay within the host's part and the reservations, which
    is what leaves one event room to reach its limit."""
    measured = memory.measure(
        crowd.box, {e["name"]: crowd.containers(e["name"]) for e in crowd.events}
    )
    per_event = measured.per_event.values()
    assert len(per_event) == len(crowd.events) and all(mb > 10 for mb in per_event)
    figures.record(
        "1 GiB box: PSS per event",
        f"{min(per_event):.0f} to {max(per_event):.0f} MB, {sum(per_event):.0f} MB in all",
    )
    figures.record("1 GiB box: PSS of the host", measured.host_line())
    held, counted, line = measured.held_against_counted()
    figures.record("1 GiB box: held / counted by the program", line)
    assert held <= counted


def test_5_a_ninth_event_is_refused_before_anything_runs_naming_the_keys(crowd):
    before = crowd.stack.program_resources()
    crowd.events.append({"name": "event9", "path": "/event9"})
    try:
        with pytest.raises(EngineRunError) as refused:
            crowd.converge()
    finally:
        crowd.events.pop()
    message = refused.value.text
    assert "events: 9 events need" in message and "which has 1024 MB" in message, message
    for key in ("memoryReservationMb", "memoryLimitMb", "serverMemoryMb"):
        assert key in message
    assert crowd.stack.program_resources() == before
    assert requests.get(crowd.url("/event9/"), timeout=10).status_code == 404


def test_5b_after_a_reboot_the_eight_start_together_and_count_on(crowd):
    """A reboot starts every event's task at once: the program's start slot does not apply, as
    the program does not run. The eight fit together, no process is killed, and each event
    counts on from where it was."""
    before = {e["name"]: hits(crowd, page(e)) for e in crowd.events}
    logged_ooms = crowd.oom_log()
    started = time.monotonic()
    crowd.box.reboot()
    for event in crowd.events:
        wait_until_serving(crowd, event["path"], timeout=300)
    figures.record(
        "1 GiB box: a reboot",
        f"all 8 events serving again {time.monotonic() - started:.0f} s after it began",
    )
    for event in crowd.events:
        assert hits(crowd, page(event)) == before[event["name"]] + 1, event
    # The box's cgroups were made anew by the reboot: their counters count from it.
    assert crowd.oom_kills() == 0
    assert crowd.oom_log() == logged_ooms


def test_6_an_event_that_runs_out_of_memory_is_stopped_alone_and_serves_again(crowd):
    """event8's site leaks; its memory limit stops it in its own cgroup, its gunicorn starts a new
    worker, and the other seven answer every visit meanwhile, with exact counts."""
    leaky, others = crowd.events[-1], crowd.events[:-1]
    crowd.box.exec(
        f"install -m 644 /dev/stdin {layout.media_dir(leaky['name'])}/rehearsal_leak.py",
        input_=LEAKING_WORKER,
    )
    leaky["settings"] = LEAKING_SETTINGS
    crowd.converge()
    (task,) = crowd.containers(leaky["name"])
    before = {e["name"]: hits(crowd, page(e)) for e in crowd.events}
    kills_before = crowd.oom_kills()
    with SteadyLoad(crowd, [page(e) for e in others]) as load:
        started = time.monotonic()
        try:
            leak = requests.get(crowd.url(f"{leaky['path']}/leak/"), timeout=60).status_code
        except requests.ConnectionError as error:
            leak = type(error).__name__
        # The worker is gone once the leaking visit is answered, so a visit from here on is
        # counted only if answered (Nginx's 502 never reached a worker).
        answered_again, refused = [], 0
        while len(answered_again) < 5:
            assert time.monotonic() - started < 120, "event8 did not answer again within 120 s"
            answer = requests.get(crowd.url(f"{leaky['path']}/"), timeout=10)
            if answer.status_code == 200:
                answered_again.append(answer.json()["hits"])
            else:
                assert answer.status_code == 502, (answer.status_code, answer.text[:300])
                refused += 1
                time.sleep(0.5)
        back_after = time.monotonic() - started
        logs = crowd.box.check(f"docker logs --tail 30 {task} 2>&1")
        time.sleep(5)
    killed = [OOM_KILL_LINE.search(line) for line in crowd.oom_log()]
    killed = [match.groups() for match in killed if match]
    assert leak == 502, leak
    # Killed: event8's worker only, when event8's own limit was reached (not the box's).
    assert killed and all(oom.endswith(f"/{task}") and victim == oom for oom, victim in killed), (
        killed
    )
    # test_3's counter counts them (its own check).
    assert crowd.oom_kills() - kills_before == len(killed)
    # Its gunicorn started a new worker: the task is the same, and counts went on.
    assert crowd.containers(leaky["name"]) == [task], logs
    assert answered_again == list(range(before[leaky["name"]] + 1, before[leaky["name"]] + 6))
    assert load.failed == 0, load.report()
    for event in others:
        served = load.ok_by_path[page(event)]
        assert served > 0 and hits(crowd, page(event)) == before[event["name"]] + served + 1, event
    figures.record(
        "1 GiB box: an event that leaks",
        f"killed in its {leaky.get('memoryLimitMb', config.default_memory_limit_mb(1024))} MB"
        f" ({len(killed)} process), serving again after {back_after:.0f} s ({refused} visits"
        f" refused meanwhile); the other 7: {load.failed} of {load.total} visits failed",
    )
