"""The host scripts: shellcheck-clean, parameters agreeing with what the program passes, valid
shell once rendered, and lib.sh's helpers behaving as the scripts rely on."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import free_port, step_program
from test_host import host_steps, params

from remote_script import SCRIPTS_DIR, render_loader, render_script, render_stdin

SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))
HOST_SCRIPTS = [p for p in SCRIPTS if p.name.startswith("host_")]
DECLARED = re.compile(r'"\$\{([A-Z_][A-Z0-9_]*)\??:?\?\}"')


def test_shellcheck_passes_on_every_script():
    shellcheck = shutil.which("shellcheck") or str(
        Path(__file__).parents[2] / ".venv/bin/shellcheck"
    )
    result = subprocess.run(
        [shellcheck, "--severity=style", *map(str, SCRIPTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    assert len(HOST_SCRIPTS) >= 6


@pytest.mark.parametrize("script", HOST_SCRIPTS, ids=lambda p: p.name)
def test_host_script_shape(script):
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    # Progress goes through lib.sh's log (stderr), so stdout stays the step's result.
    assert re.search(r"^\s*log ", text, re.MULTILINE)


def declared_parameters(script_name: str) -> set[str]:
    return set(DECLARED.findall((SCRIPTS_DIR / script_name).read_text()))


@pytest.mark.parametrize("which", ["prod", "existing"])
def test_every_parameter_passed_is_declared_and_vice_versa(prod_config, existing_config, which):
    run = (prod_config if which == "prod" else existing_config).run()
    checked = 0
    for step in host_steps(run):
        body = step_program(step.inputs)
        script = next(
            p.name for p in HOST_SCRIPTS if p.read_text().split("\n", 1)[1].strip() in body
        )
        assert set(params(step)) == declared_parameters(script), step.name
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("which", ["prod", "existing"])
def test_rendered_steps_are_valid_bash(prod_config, existing_config, which):
    run = (prod_config if which == "prod" else existing_config).run()
    for step in host_steps(run):
        texts = [step.inputs["create"], step.inputs.get("delete"), step_program(step.inputs)]
        for text in [*texts, step_program(step.inputs, "delete")]:
            if text:
                result = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
                assert result.returncode == 0, (step.name, result.stderr)


def run_lib(snippet: str, cwd: Path) -> subprocess.CompletedProcess:
    library = (SCRIPTS_DIR / "lib.sh").read_text()
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{library}\n{snippet}"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_replace_file_reports_changes_and_keeps_identical_files(tmp_path):
    snippet = """
    if replace_file f 640 <<<"one"; then echo changed; else echo same; fi
    if replace_file f 640 <<<"one"; then echo changed; else echo same; fi
    if replace_file f 640 <<<"two"; then echo changed; else echo same; fi
    """
    result = run_lib(snippet, tmp_path)
    assert result.stdout.split() == ["changed", "same", "changed"], result.stderr
    assert (tmp_path / "f").read_text() == "two\n"
    assert oct((tmp_path / "f").stat().st_mode & 0o777) == "0o640"


def make_cluster(path: Path) -> None:
    (path / "base" / "1").mkdir(parents=True)
    (path / "PG_VERSION").write_text("17\n")
    (path / "base" / "1" / "table").write_bytes(b"rows" * 1000)


def test_a_copy_of_the_data_directory_exists_only_once_complete(tmp_path):
    # host_postgres.sh moves a new cluster onto the volume with copy_dir_whole; a copy that a
    # reboot interrupted left a partial tree that the next run used to take for the cluster.
    make_cluster(tmp_path / "current")
    interrupted = tmp_path / "volume" / "main.copying"
    interrupted.mkdir(parents=True)
    (interrupted / "PG_VERSION").write_text("17\n")  # copied first, the rest never came
    result = run_lib("copy_dir_whole current volume/main", tmp_path)
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "volume" / "main"
    assert (copy / "base" / "1" / "table").read_bytes() == b"rows" * 1000
    assert not interrupted.exists()


def test_a_complete_copy_is_never_written_over(tmp_path):
    make_cluster(tmp_path / "current")
    (tmp_path / "volume" / "main").mkdir(parents=True)
    (tmp_path / "volume" / "main" / "PG_VERSION").write_text("16\n")
    result = run_lib("copy_dir_whole current volume/main", tmp_path)
    assert result.returncode == 1
    assert "exists already" in result.stderr
    assert (tmp_path / "volume" / "main" / "PG_VERSION").read_text() == "16\n"
    assert not (tmp_path / "volume" / "main" / "base").exists()


def test_log_writes_to_stderr_only(tmp_path):
    result = run_lib('log "step done"', tmp_path)
    assert (result.stdout, result.stderr) == ("", "==> step done\n")


def fake_commands(bin_dir: Path, commands: dict[str, str]) -> None:
    """Stand-ins for the commands named in ``commands`` (name -> the whole executable text), in
    ``bin_dir``, which a test puts first on PATH."""
    bin_dir.mkdir(exist_ok=True)
    for name, text in commands.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)


def test_reload_nginx_returns_once_the_new_configuration_serves(tmp_path):
    """The request right after reload_nginx gets the new configuration, every time.

    A real nginx in its own PID namespace (so that ``ps`` sees only its workers); ``systemctl``
    stands in for the unit's ExecReload.
    """
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nworker_processes 2;\n"
        f"events {{}}\nhttp {{ access_log off; server {{ listen 127.0.0.1:{port}; "
        "location / { return 200 'release 0'; } } }\n"
    )
    bin_dir = tmp_path / "bin"
    fake_commands(bin_dir, {"systemctl": f'#!/bin/sh\nexec nginx -c "{conf}" -s reload\n'})
    library = (SCRIPTS_DIR / "lib.sh").read_text()
    script = f"""set -euo pipefail
{library}
export PATH={bin_dir}:$PATH
nginx -c {conf}
for release in 1 2 3 4 5 6; do
  sed -i "s/'release [0-9]*'/'release $release'/" {conf}
  reload_nginx
  curl --silent --show-error http://127.0.0.1:{port}/
  echo
done
nginx -c {conf} -s quit
"""
    result = subprocess.run(
        ["timeout", "120", "unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", script],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"release {n}" for n in range(1, 7)]


PG_HBA = """local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
"""


def hba_edit(subnet: str) -> str:
    """The pg_hba.conf edit of host_postgres.sh, cut out of the script to run it on a copy."""
    script = (SCRIPTS_DIR / "host_postgres.sh").read_text()
    start = script.index("hba=$conf_dir/pg_hba.conf")
    end = script.index("# After a reboot")
    edit = script[start:end]
    return f"conf_dir=.\nSWARM_SUBNET={subnet}\nreload=0\n{edit}\necho reload=$reload\n"


def test_pg_hba_block_is_written_once_and_replaced_on_change(tmp_path):
    (tmp_path / "pg_hba.conf").write_text(PG_HBA)
    owner = f"{tmp_path.stat().st_uid}:{tmp_path.stat().st_gid}"
    edit = hba_edit("172.20.0.0/16").replace("postgres:postgres", owner)
    assert run_lib(edit, tmp_path).stdout == "reload=1\n"
    assert run_lib(edit, tmp_path).stdout == "reload=0\n"
    first = (tmp_path / "pg_hba.conf").read_text()
    assert first.startswith(PG_HBA)
    assert first.count("host sameuser all 172.20.0.0/16 scram-sha-256") == 1
    changed = hba_edit("10.9.0.0/16").replace("postgres:postgres", owner)
    assert run_lib(changed, tmp_path).stdout == "reload=1\n"
    text = (tmp_path / "pg_hba.conf").read_text()
    assert "172.20.0.0/16" not in text and text.count("sameuser") == 1


def worker_line_edit(worker: str, address: str = "") -> str:
    """What worker_postgres.sh (with an address) or worker_postgres_remove.sh (without) does to
    pg_hba.conf, on the copy in the current directory."""
    line = f"host sameuser all {address}/32 scram-sha-256" if address else ""
    return (
        f"if set_pg_hba_line pg_hba.conf \"django-swarm worker '{worker}'\" '{line}';"
        " then echo changed; else echo same; fi"
    )


def hba_clients(path: Path) -> list[str]:
    return re.findall(r"^host sameuser all (\S+) scram-sha-256", path.read_text(), re.MULTILINE)


def test_pg_hba_admits_each_worker_address_on_its_own_line(tmp_path):
    hba = tmp_path / "pg_hba.conf"
    hba.write_text(PG_HBA)
    hba.chmod(0o640)
    owner = f"{tmp_path.stat().st_uid}:{tmp_path.stat().st_gid}"
    assert run_lib(hba_edit("172.20.0.0/16").replace("postgres:postgres", owner), tmp_path)
    for n, address in ((1, "10.0.0.11"), (10, "10.0.0.20"), (2, "10.0.0.12")):
        assert run_lib(worker_line_edit(f"worker-{n}", address), tmp_path).stdout == "changed\n"
    assert run_lib(worker_line_edit("worker-1", "10.0.0.11"), tmp_path).stdout == "same\n"
    assert hba_clients(hba) == ["172.20.0.0/16", "10.0.0.11/32", "10.0.0.20/32", "10.0.0.12/32"]
    # The manager's own step rewrites its block and leaves the workers' lines alone.
    run_lib(hba_edit("172.21.0.0/16").replace("postgres:postgres", owner), tmp_path)
    assert sorted(hba_clients(hba)) == [
        "10.0.0.11/32",
        "10.0.0.12/32",
        "10.0.0.20/32",
        "172.21.0.0/16",
    ]
    # A worker whose address changed has one line, the new one; a removed worker has none, and
    # worker-1's removal leaves worker-10 alone.
    assert run_lib(worker_line_edit("worker-2", "10.0.0.13"), tmp_path).stdout == "changed\n"
    assert run_lib(worker_line_edit("worker-1"), tmp_path).stdout == "changed\n"
    assert run_lib(worker_line_edit("worker-1"), tmp_path).stdout == "same\n"
    assert sorted(hba_clients(hba)) == ["10.0.0.13/32", "10.0.0.20/32", "172.21.0.0/16"]
    assert hba.read_text().startswith(PG_HBA)
    assert oct(hba.stat().st_mode & 0o777) == "0o640"
    # A file that cannot be read ends the step (even where the caller tests the status) and
    # writes nothing.
    hba.rename(tmp_path / "elsewhere")
    failed = run_lib(worker_line_edit("worker-3", "10.0.0.14"), tmp_path)
    assert failed.returncode != 0 and "Cannot read pg_hba.conf" in failed.stderr
    assert not hba.exists()


def run_script(script: str, **params: str) -> subprocess.CompletedProcess:
    """``script`` as a step runs it: its loader, with its program on stdin."""
    program = render_script(script, params)
    return subprocess.run(
        ["bash", "-c", render_loader("test", script, program, "create")],
        input=render_stdin(program, None),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_media_root_without_a_volume_is_a_directory_of_the_disk(tmp_path):
    root = tmp_path / "lib" / "media"
    for _ in range(2):
        result = run_script("host_media.sh", MEDIA_ROOT=str(root), DATA_ROOT="")
        assert result.returncode == 0, result.stderr
    assert root.is_dir() and not root.is_symlink()


def test_media_root_moves_onto_the_volume_with_the_files_already_uploaded(tmp_path):
    root, volume = tmp_path / "lib" / "media", tmp_path / "volume"
    (root / "event1" / "attachments").mkdir(parents=True)
    (root / "event1" / "attachments" / "slides.pdf").write_bytes(b"%PDF")
    volume.mkdir()
    for _ in range(2):
        result = run_script("host_media.sh", MEDIA_ROOT=str(root), DATA_ROOT=str(volume))
        assert result.returncode == 0, result.stderr
    assert root.is_symlink() and root.resolve() == volume / "media"
    assert (volume / "media" / "event1" / "attachments" / "slides.pdf").read_bytes() == b"%PDF"


def test_media_root_on_a_volume_no_longer_configured_is_refused_and_kept(tmp_path):
    root, volume = tmp_path / "lib" / "media", tmp_path / "volume"
    (volume / "media" / "event1").mkdir(parents=True)
    root.parent.mkdir(parents=True)
    root.symlink_to(volume / "media")
    result = run_script("host_media.sh", MEDIA_ROOT=str(root), DATA_ROOT="")
    assert result.returncode == 1
    assert "a volume this stack no longer has" in result.stderr
    assert root.is_symlink() and (volume / "media" / "event1").is_dir()


def test_event_media_directory_belongs_to_the_site_user(tmp_path):
    media = tmp_path / "media" / "event1"
    for _ in range(2):
        result = run_script("event_media.sh", MEDIA_DIR=str(media), SITE_UID="10001")
        assert result.returncode == 0, result.stderr
    info = media.stat()
    assert (info.st_uid, info.st_gid, oct(info.st_mode & 0o777)) == (10001, 10001, "0o755")


# A stand-in for `docker`, used only where the real engine cannot be made to fail on demand: Docker
# before 29.4.1 fails a container start now and then when remounting its secrets read-only meets a
# passing EBUSY (moby/moby#48783; a CI run of the rehearsal met it in a start-first rollout), and a
# release can fail on the workers alone. The stack has two services, event1_web and
# event1_web-workers. Each `stack deploy` takes the outcome of each, in that order, from the first
# line of OUTCOMES: "flake" (that fault, rolled back), "crash" (the release's own task exits 1,
# rolled back), "ok", or for the first service "follow" and "follow-crash" (below). The other
# verbs answer what event_stack.sh reads.
# "follow": the new task answers on the new port (the stand-in for curl below reads
# serves.<port>), and swarm's stopping of the old task waits (up to 10 s) until Nginx's servers
# name the new port; "follow-crash" then rolls back, the old release answering on its port again,
# and the new task is stopped once Nginx's servers name the live port. What Nginx's servers said
# when a task stopped goes into calls. "follow-drain": as "follow", the old task answering on the
# live port until 2 s after Nginx left it; whether the server's start slot was free while it
# drained, and once it stopped, goes into calls.
FAKE_DOCKER = r"""#!/usr/bin/env bash
set -euo pipefail
state=$FAKE_STATE
services=(event1_web event1_web-workers)
# stopping WHAT PORT: a task stops, once Nginx's servers name PORT or after 10 s.
stopping() {
  for _ in $(seq 50); do grep -q ":$2;" "$FAKE_SERVERS" && break; sleep 0.2; done
  echo "$1 stopped while Nginx used $(grep -o ':[0-9]*;' "$FAKE_SERVERS" | tr -d ':;')" \
    >>"$state/calls"
}
slot() {
  if flock -n /run/lock/django-swarm-start.lock true; then echo free; else echo held; fi
}
case "$1 $2" in
  "stack deploy")
    [[ $3 == --help ]] && { echo '  -d, --detach'; exit 0; }
    echo "deploy $DJANGO_SWARM_PORT" >>"$state/calls"
    read -r -a outcomes <"$state/outcomes"; sed -i 1d "$state/outcomes"
    n=$(wc -l <"$state/calls")
    for i in 0 1; do
      s=$state/${services[i]}
      date +%s%N >"$s.StartedAt"
      case ${outcomes[i]} in
        follow-drain)
          touch "$state/serves.8000" "$state/serves.$DJANGO_SWARM_PORT"
          stopping "old task" "$DJANGO_SWARM_PORT"
          sleep 2
          echo "slot while the old task drains: $(slot)" >>"$state/calls"
          rm "$state/serves.8000"
          sleep 3
          echo "slot once it stopped: $(slot)" >>"$state/calls"
          echo completed >"$s.State" ;;
        follow | follow-crash)
          echo updating >"$s.State"
          touch "$state/serves.$DJANGO_SWARM_PORT"
          stopping "old task" "$DJANGO_SWARM_PORT"
          if [[ ${outcomes[i]} == follow-crash ]]; then
            echo rollback_started >"$s.State"
            touch "$state/serves.8000"
            stopping "new task" 8000
            echo "crash$n-$i task: non-zero exit (1)" >>"$s.tasks"
            echo rollback_completed >"$s.State"
          else
            echo completed >"$s.State"
          fi ;;
        flake) echo "flake$n-$i starting container failed: unable to remount dir as readonly:" \
                 "mount tmpfs:/var/lib/docker/containers/x/mounts/secrets, flags: 0x21," \
                 "data: uid=0,gid=0: device or resource busy" >>"$s.tasks"
               echo rollback_completed >"$s.State" ;;
        crash) echo "crash$n-$i task: non-zero exit (1)" >>"$s.tasks"
               echo rollback_completed >"$s.State" ;;
        ok) echo completed >"$s.State" ;;
      esac
      echo 'rollback completed' >"$s.Message"
    done ;;
  "stack services") printf '%s\n' "${services[@]}" ;;
  "service rollback") echo "rollback ${*: -1}" >>"$state/calls" ;;
  "service inspect")
    case $4 in
      *EndpointSpec*) echo 8000 ;;
      *UpdateStatus.*) field=${4#*UpdateStatus.}
                       cat "$state/$5.${field%%\}*}" 2>/dev/null || true ;;
    esac ;;
  "service ps") cat "$state/${*: -1}.tasks" 2>/dev/null || true ;;
  "service ls") echo 1/1 ;;
esac
"""
# The manager's task answers its health endpoint on the ports FAKE_DOCKER made serve.
FAKE_CURL = r"""#!/usr/bin/env bash
url=${*: -1}
port=${url##*:}
[[ $url == http://172.20.0.1:* && -e $FAKE_STATE/serves.${port%%/*} ]]
"""
# Nginx, for reload_nginx: a configuration that passes, no worker to wait for.
FAKE_NGINX = {"nginx": "#!/bin/sh\n", "systemctl": "#!/bin/sh\n", "ps": "#!/bin/sh\n"}


def stack_program(tmp_path: Path) -> str:
    """event_stack.sh for event1 on ports 8000 (live: FAKE_DOCKER's published port) and 8001,
    its servers in servers.conf."""
    return render_script(
        "event_stack.sh",
        {
            "EVENT": "event1", "SERVICE": "event1_web", "STACK_TEXT": "services: {}\n",
            "STACK_FILE": str(tmp_path / "stacks" / "event1.yml"), "DEPLOY_TIMEOUT": 30,
            "SECRETS_IN_USE": "s1", "PORTS": "8000 8001", "MANAGER_ADDRESS": "172.20.0.1",
            "SERVERS_FILE": str(tmp_path / "servers.conf"),
            "SERVERS_FIRST": "server 172.20.0.1:8000;\n",
            "SERVERS_SECOND": "server 172.20.0.1:8001;\n",
            "MANAGER_SERVERS_FILE": str(tmp_path / "manager-servers.conf"),
            "MANAGER_SERVERS_FIRST": "server 172.20.0.1:8000;\n",
            "MANAGER_SERVERS_SECOND": "server 172.20.0.1:8001;\n",
        },
    )  # fmt: skip


def run_stack_program(
    tmp_path: Path, outcomes: list[str]
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """event_stack.sh against the stand-ins, Nginx pointed at the live port (8000) before; the
    result and the calls FAKE_DOCKER recorded."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    state.mkdir()
    fake_commands(bin_dir, {"docker": FAKE_DOCKER, "curl": FAKE_CURL, **FAKE_NGINX})
    (state / "outcomes").write_text("".join(f"{o}\n" for o in outcomes))
    for name in ("servers.conf", "manager-servers.conf"):
        (tmp_path / name).write_text("server 172.20.0.1:8000;\n")
    result = subprocess.run(
        ["bash", "-c", stack_program(tmp_path)],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_STATE": str(state),
            "FAKE_SERVERS": str(tmp_path / "servers.conf"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, (state / "calls").read_text().splitlines()


@pytest.mark.parametrize(
    ("outcomes", "deploys", "failed", "rolled_back"),
    [
        (["flake ok", "ok ok"], 2, None, []),
        (["flake ok", "flake ok", "ok ok"], 3, None, []),
        (["flake ok", "flake ok", "flake ok", "ok ok"], 3, "event1_web", ["event1_web-workers"]),
        (["crash ok", "ok ok"], 1, "event1_web", ["event1_web-workers"]),
        (["crash ok", "flake ok", "ok ok"], 1, "event1_web", ["event1_web-workers"]),
        # The tasks on the workers count as much as the manager's; when they alone fail, the
        # manager's task, which took the release, goes back to the live one.
        (["ok flake", "ok ok"], 2, None, []),
        (["ok crash", "ok ok"], 1, "event1_web-workers", ["event1_web"]),
        (["flake flake", "ok ok"], 2, None, []),
        # A fault beside a broken release: no retry hides the release.
        (["flake crash", "ok ok"], 1, "event1_web-workers", []),
    ],
)
def test_a_release_the_engine_failed_to_start_is_deployed_again(
    tmp_path, outcomes, deploys, failed, rolled_back
):
    result, calls = run_stack_program(tmp_path, outcomes)
    # Every attempt deploys the port the live release does not hold; when one service failed,
    # the others, which took the release, go back to the live one too.
    assert calls == ["deploy 8001"] * deploys + [f"rollback {s}" for s in rolled_back]
    assert (result.returncode == 0) == (failed is None), result.stderr
    assert result.stderr.count("deploying again") == deploys - 1
    assert (tmp_path / "stacks" / "event1.yml").exists() == (failed is None)
    if failed:
        first = next(line for line in result.stderr.splitlines() if line.startswith("event "))
        assert first.startswith("event event1: the update of ")
        assert f"the update of {failed} failed and was rolled back" in first
        # What the failed service's tasks said follows the reason.
        assert f"Last tasks of {failed}:" in result.stderr
    # Nginx ends at the release that is live: the new one, or after a failure the one before.
    live = "8001" if failed is None else "8000"
    for name in ("servers.conf", "manager-servers.conf"):
        assert (tmp_path / name).read_text() == f"server 172.20.0.1:{live};\n"


@pytest.mark.parametrize(
    ("outcome", "stops", "live"),
    [
        ("follow", ["old task stopped while Nginx used 8001"], "8001"),
        (
            "follow-crash",
            # The service on the workers took the release: it goes back too.
            [
                "old task stopped while Nginx used 8001",
                "new task stopped while Nginx used 8000",
                "rollback event1_web-workers",
            ],
            "8000",
        ),
    ],
)
def test_nginx_leaves_a_task_before_swarm_stops_it(tmp_path, outcome, stops, live):
    """Swarm stops the old task once the new one is healthy; by then Nginx must send it nothing
    (a POST that meets a stopping gunicorn gets a 502). Here the stand-in stops a task only once
    Nginx's servers have moved, or after 10 s: the order shows in what it recorded."""
    result, calls = run_stack_program(tmp_path, [f"{outcome} ok"])
    assert calls == ["deploy 8001", *stops], result.stderr
    assert (result.returncode == 0) == (live == "8001"), result.stderr
    for name in ("servers.conf", "manager-servers.conf"):
        assert (tmp_path / name).read_text() == f"server 172.20.0.1:{live};\n"
    assert "Nginx sends event1's requests to port 8001" in result.stderr


def test_the_next_event_starts_once_the_old_release_stopped(tmp_path):
    """A new release's start holds the server's start slot until Nginx uses it and the old one
    no longer answers: while the old one drains, both hold memory."""
    result, calls = run_stack_program(tmp_path, ["follow-drain ok"])
    assert result.returncode == 0, result.stderr
    assert calls == [
        "deploy 8001",
        "old task stopped while Nginx used 8001",
        "slot while the old task drains: held",
        "slot once it stopped: free",
    ]


def migrate_program(snapshot_timeout: int, event: str = "event1") -> str:
    """event_migrate.sh for ``event``, its migrations bounded by 30 s."""
    return render_script(
        "event_migrate.sh",
        {
            "EVENT": event, "IMAGE": "registry/site@sha256:1", "RELEASE": "0123456789ab",
            "NETWORK": f"{event}_default", "ENV_FILE_TEXT": "A=1\n", "SECRET_MOUNTS": "s1",
            "MIGRATE_TIMEOUT": 30, "SNAPSHOT_TIMEOUT": snapshot_timeout,
        },
    )  # fmt: skip


def start_migrate_step(bin_dir: Path, event: str) -> subprocess.Popen:
    """event_migrate.sh for ``event`` against the stand-ins in ``bin_dir``, started."""
    program = migrate_program(30, event)
    step = subprocess.Popen(
        ["bash", "-c", render_loader(f"{event}-migrate", "event_migrate.sh", program, "create")],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    step.stdin.write(render_stdin(program, None))
    step.stdin.close()
    return step


def test_events_run_their_migrate_steps_one_at_a_time(tmp_path):
    """Two events' migrate steps started together: the second one's snapshot begins once the
    first step ended; while a start holds the server's slot, a step waits and says so."""
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bodies = {
        "docker": "exit 0",
        # The snapshot: A when it begins, B when it ends; it "fails", so no migration follows.
        "django-swarm-backup": f"echo A >>{log}; sleep 1; echo B >>{log}; exit 1",
    }
    fake_commands(bin_dir, {n: f"#!/usr/bin/env bash\n{body}\n" for n, body in bodies.items()})
    steps = [start_migrate_step(bin_dir, event) for event in ("slot1", "slot2")]
    for step in steps:
        assert step.wait(timeout=30) == 1
    assert log.read_text().split() == ["A", "B", "A", "B"]

    log.unlink()
    with open("/run/lock/django-swarm-start.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = start_migrate_step(bin_dir, "slot3")
        time.sleep(2)
        assert not log.exists() and waiting.poll() is None
        fcntl.flock(held, fcntl.LOCK_UN)
        assert waiting.wait(timeout=30) == 1
    assert "Waiting for another event's start to finish" in waiting.stderr.read()
    assert log.read_text().split() == ["A", "B"]


@pytest.mark.parametrize(
    ("backup_body", "reason"),
    [
        # restic retries a bucket it cannot reach for a long time: the step must not wait forever.
        ("sleep 60", "did not finish within 1s (is the backup bucket reachable?"),
        ("echo 'Fatal: unable to open repository' >&2; exit 1", "failed (above)"),
    ],
)
def test_no_snapshot_before_the_migrations_no_migration_and_no_endless_wait(
    tmp_path, backup_body, reason
):
    bin_dir = tmp_path / "bin"
    calls = tmp_path / "docker-calls"
    bodies = {"docker": f'echo "$*" >>{calls}', "django-swarm-backup": backup_body}
    fake_commands(bin_dir, {n: f"#!/usr/bin/env bash\n{body}\n" for n, body in bodies.items()})
    program = migrate_program(snapshot_timeout=1)
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "-c", render_loader("event1-migrate", "event_migrate.sh", program, "create")],
        input=render_stdin(program, None),
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert f"event event1: the snapshot before the migrations {reason}" in result.stderr
    assert "the running version keeps serving" in result.stderr
    assert "service create" not in calls.read_text()


# A stand-in for `docker` in event_migrate.sh, for the fault above, which the real engine meets
# only now and then: each `service create` of the job takes its task's end from the first line of
# OUTCOMES ("flake": that fault; "crash": the migrations exit 1; "ok": complete).
FAKE_DOCKER_JOB = r"""#!/usr/bin/env bash
set -euo pipefail
state=$FAKE_STATE
case "$1 $2" in
  "service create")
    echo create >>"$state/calls"
    head -n 1 "$state/outcomes" >"$state/task"; sed -i 1d "$state/outcomes" ;;
  "service ps")
    case $(<"$state/task") in
      flake) echo 'Failed 1 second ago|starting container failed: unable to remount dir as' \
               'readonly: mount tmpfs:/var/lib/docker/containers/x/mounts/secrets, flags: 0x21,' \
               'data: uid=0,gid=0: device or resource busy' ;;
      crash) echo 'Failed 1 second ago|task: non-zero exit (1)' ;;
      ok) echo 'Complete 1 second ago|' ;;
    esac ;;
  "service logs") echo "job output of $(<"$state/task")" ;;
esac
"""


@pytest.mark.parametrize(
    ("outcomes", "creates", "migrated"),
    [
        (["flake", "ok"], 2, True),
        (["flake", "flake", "ok"], 3, True),
        (["flake", "flake", "flake", "ok"], 3, False),
        # A migration that ran and failed is the release's own fault: it is not started again.
        (["crash", "ok"], 1, False),
        (["flake", "crash", "ok"], 2, False),
    ],
)
def test_a_migration_job_the_engine_failed_to_start_is_started_again(
    tmp_path, outcomes, creates, migrated
):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    state.mkdir()
    fake_commands(bin_dir, {"docker": FAKE_DOCKER_JOB, "django-swarm-backup": "#!/bin/sh\n"})
    (state / "outcomes").write_text("".join(f"{o}\n" for o in outcomes))
    program = migrate_program(snapshot_timeout=5)
    result = subprocess.run(
        ["bash", "-c", program],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (state / "calls").read_text().splitlines() == ["create"] * creates
    assert (result.returncode == 0) == migrated, result.stderr
    assert result.stderr.count("starting it again") == min(creates, 3) - 1
    if not migrated:
        assert "event event1: migrations failed (Failed 1 second ago|" in result.stderr
        assert "the running version keeps serving" in result.stderr
