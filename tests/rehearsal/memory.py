"""Memory of a box as the rehearsal reports it: the PSS of every process (the kernel's
proportional set size: a page shared by n processes counts 1/n in each, so the sum over
processes is the memory they use), split into each event's containers and the host's share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import config
from local.box import Box

# Every process of the box: "<pid> <comm> <Pss kB>".
PSS_LISTING = r"""
for dir in /proc/[0-9]*; do
  pss=$(awk '/^Pss:/ {print $2}' "$dir/smaps_rollup" 2>/dev/null) || continue
  comm=$(tr -d ' ' <"$dir/comm" 2>/dev/null) || continue
  printf '%s %s %s\n' "${dir#/proc/}" "${comm:-?}" "${pss:-0}"
done
"""
# The box's registry (Debian's docker-registry) stands in for the remote one (GHCR) a droplet pulls
# from: not part of the host's share.
NOT_ON_A_DROPLET = frozenset({"docker-registry"})


@dataclass
class MemoryFigures:
    # MB per event: every process of its containers.
    per_event: dict[str, float]
    # MB by process name, every other process of the box (the registry left out).
    host: dict[str, float]
    # MB of what was left out (NOT_ON_A_DROPLET).
    left_out: dict[str, float]

    @property
    def host_total(self) -> float:
        return sum(self.host.values())

    def held_against_counted(self) -> tuple[float, int, str]:
        """(MB held, MB the program's memory check counts for them, the line that says so).

        The check (config.memory_needed_mb) counts the host's share and each event's reservation,
        the defaults here, plus room for one event to reach its limit, which is left out: what
        the processes hold must fit in the rest."""
        held = self.host_total + sum(self.per_event.values())
        events = len(self.per_event)
        counted = config.HOST_MEMORY_MB + events * config.DEFAULT_MEMORY_RESERVATION_MB
        line = (
            f"{held:.0f} MB / {counted} MB (host {config.HOST_MEMORY_MB} + {events} x"
            f" {config.DEFAULT_MEMORY_RESERVATION_MB} reserved)"
        )
        return held, counted, line

    def host_line(self) -> str:
        biggest = sorted(self.host.items(), key=lambda item: -item[1])[:6]
        return (
            f"{self.host_total:.0f} MB: "
            + ", ".join(f"{comm} {mb:.0f}" for comm, mb in biggest)
            + " (the box's registry, left out: "
            + ", ".join(f"{comm} {mb:.0f}" for comm, mb in sorted(self.left_out.items()))
            + ")"
        )


def measure(box: Box, containers: Mapping[str, Iterable[str]]) -> MemoryFigures:
    """PSS figures of ``box``; ``containers``: event -> the ids of its running containers."""
    processes = {}
    for line in box.check(PSS_LISTING).splitlines():
        pid, comm, pss_kb = line.split()
        processes[int(pid)] = (comm, int(pss_kb))
    per_event: dict[str, float] = {}
    in_events: set[int] = set()
    for event, ids in containers.items():
        for container in ids:
            top = box.check(f"docker top {container} -o pid | tail -n +2")
            pids = {int(pid) for pid in top.split()}
            in_events |= pids
            mb = sum(processes[pid][1] for pid in pids if pid in processes) / 1024
            per_event[event] = per_event.get(event, 0) + mb
    by_name: dict[str, float] = {}
    for pid, (comm, pss_kb) in processes.items():
        if pid not in in_events:
            by_name[comm] = by_name.get(comm, 0) + pss_kb / 1024
    # The name is right: something was left out.
    assert by_name.keys() >= NOT_ON_A_DROPLET, sorted(by_name)
    return MemoryFigures(
        per_event,
        {comm: mb for comm, mb in by_name.items() if comm not in NOT_ON_A_DROPLET},
        {comm: by_name[comm] for comm in NOT_ON_A_DROPLET},
    )
