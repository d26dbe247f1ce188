"""The command lines a box runs, sampled, so that a story can check that no secret was in one."""

from local.box import Box

# Where start_ps_sampler writes the command lines it saw on a box.
PS_LOG = "/root/rehearsal-ps.log"


def start_ps_sampler(box: Box) -> None:
    """Every distinct command line seen on ``box``, sampled 5 times a second, into PS_LOG (until
    the box restarts)."""
    box.exec_detached(
        f"while :; do ps -eo args; sleep 0.2; done | awk '!seen[$0]++ {{print; fflush()}}' "
        f">>{PS_LOG}"
    )
