"""The local try-out exactly as the README gives it, from a fresh clone: `./deploy.sh --local`
serves two events that count on their own and an admin that takes its login; a second run
changes nothing and says so; `./deploy.sh --local --destroy` leaves no container, volume, image
or stack behind.

The README's commands run as written, in bash, with one change: `git clone` takes this
checkout's path instead of the GitHub address, which these machines cannot reach (so what is
tried is this checkout's last commit). The user's Pulumi home holds the test plugins
(tests/plugins), as a laptop's holds the real ones after their first download. The user also
has a passphrase and a backend of their own exported (for a stack `prod`): the try-out must
neither use nor touch them.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from tests.engine import REPO_ROOT, EngineHome
from tests.rehearsal import figures
from tests.sites import admin_login

SECTION = "## Try it on your machine first"


def try_out_blocks() -> list[list[str]]:
    """The README's shell blocks in the try-out section, as lines (comments dropped)."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [
        [line.split(" #", 1)[0].strip() for line in block.splitlines() if line.strip()]
        for block in blocks
    ]


def cloned_here(line: str) -> str:
    """``git clone <url> [dir]`` with this checkout for the URL, into the same directory."""
    words = line.split()
    assert words[:2] == ["git", "clone"], f"the try-out does not start with git clone: {line}"
    url, *directory = words[2:]
    name = directory[0] if directory else Path(urlsplit(url).path).name.removesuffix(".git")
    return f"git clone -q {REPO_ROOT} {name}"


def docker_objects() -> set[str]:
    """Every container, volume and image tag of this machine's Docker engine."""
    listings = {
        "container": ["ps", "-a", "--format", "{{.Names}}"],
        "volume": ["volume", "ls", "--format", "{{.Name}}"],
        "image": ["images", "--format", "{{.Repository}}:{{.Tag}}"],
    }
    objects = set()
    for kind, args in listings.items():
        out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
        objects |= {f"{kind} {name}" for name in out.split() if name != "<none>:<none>"}
    return objects


def run(lines: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    done.seconds = time.monotonic() - started
    assert done.returncode == 0, f"{lines} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def hits(url: str) -> int:
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, (url, answer.status_code, answer.text[:200])
    return answer.json()["hits"]


def test_the_readmes_local_try_out_from_a_fresh_clone(tmp_path, engine_home: EngineHome):
    start, teardown = try_out_blocks()
    assert start[-1].startswith("./deploy.sh --local"), start
    user_backend = tmp_path / "the-users-own-backend"
    user_backend.mkdir()
    env = {
        **os.environ,
        "PULUMI_HOME": str(engine_home.home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": f"file://{user_backend}",
        "PULUMI_CONFIG_PASSPHRASE": "the passphrase of the user's stack prod",
    }
    before = docker_objects()

    first = run([cloned_here(start[0]), *start[1:]], tmp_path, env)
    clone = next(p for p in tmp_path.iterdir() if (p / ".git").is_dir())
    figures.record("./deploy.sh --local, first run (venv, box, deploy)", f"{first.seconds:.0f} s")

    # Every event of the committed config is printed with an address that serves it.
    events = yaml.safe_load((clone / "Pulumi.local.yaml").read_text())["config"][
        "django-swarm:events"
    ]
    printed = dict(re.findall(r"^  (\S+): (http://\S+)$", first.stdout, re.MULTILINE))
    assert set(printed) == {event["name"] for event in events}, first.stdout
    one, other = events[0], events[1]
    for event in events:
        assert urlsplit(printed[event["name"]]).path == f"{event['path']}/"
    # Each counts its own visits.
    assert [hits(printed[one["name"]]) for _ in range(3)] == [1, 2, 3]
    assert hits(printed[other["name"]]) == 1
    assert hits(printed[one["name"]]) == 4

    # The admin login is in a file only its owner reads, not in what the run printed.
    logins_file = Path(re.search(r"cat (\S+)$", first.stdout, re.MULTILINE).group(1))
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    logins = {
        event: {"url": url, "username": user, "password": password}
        for event, url, user, password in re.findall(
            r"^(\S+): (\S+)  user (\S+)  password (\S+)$", logins_file.read_text(), re.MULTILINE
        )
    }
    login = logins[one["name"]]
    assert login["password"] not in first.stdout + first.stderr
    site = urlsplit(login["url"])
    session = admin_login(lambda path: f"{site.scheme}://{site.netloc}{path}", one["path"], login)
    assert session.get(login["url"], timeout=10).status_code == 200

    # Again, as the README says, without the user's passphrase: nothing changes, data stays.
    del env["PULUMI_CONFIG_PASSPHRASE"]
    second = run(start[1:], tmp_path, env)
    figures.record("./deploy.sh --local, second run", f"{second.seconds:.0f} s")
    assert "Nothing changed" in second.stderr, second.stderr
    summary = second.stdout.rsplit("Resources:", 1)[1].split("Duration:", 1)[0]
    assert re.fullmatch(r"\s*\d+ unchanged\s*", summary), summary
    assert hits(printed[one["name"]]) == 5
    # The committed files are as committed; what the runs made is ignored by git.
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert status == ""
    assert list(user_backend.iterdir()) == []

    gone = run(teardown, clone, env)
    figures.record("./deploy.sh --local --destroy", f"{gone.seconds:.0f} s")
    left = docker_objects() - before
    assert left == set(), f"left behind: {sorted(left)}"
    assert not (clone / ".local").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(printed[one["name"]], timeout=5)
