"""Gunicorn settings for the event site (the image's CMD and the benchmark use this file).

Defaults are sized for a 1 vCPU / 1 GB droplet that runs several events: one worker process with
a few threads per event keeps each event near 65-75 MB (proportional set size, master included),
and the threads overlap the time spent waiting for PostgreSQL. One worker uses at most one core
(about 0.8 ms of CPU per visit, bench/run.sh). On a host with a core and memory to spare,
GUNICORN_WORKERS=2 served about 25% more visits per second for about 37 MB more (docs/tests.md).
"""

import os
import signal
from pathlib import Path

# Runs the site from app/ wherever gunicorn is started, so `gunicorn -c app/gunicorn.conf.py`
# works from the repository root as well as from /app in the image.
chdir = str(Path(__file__).resolve().parent)
wsgi_app = "config.wsgi:application"


def _whole_number(name: str, default: int, highest: int) -> int:
    """A setting from the environment; a bad value stops gunicorn with one line, like the site's."""
    value = os.environ.get(name) or str(default)
    if not value.isdigit() or not 1 <= int(value) <= highest:
        raise SystemExit(
            f"Configuration error: {name} must be a whole number from 1 to {highest}, got {value!r}"
        )
    return int(value)


bind = f"0.0.0.0:{_whole_number('PORT', 8000, 65535)}"
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"
workers = _whole_number("GUNICORN_WORKERS", 1, 64)
# Two threads overlap a visit's wait for PostgreSQL with the next one's work. Each holds its own
# database connection (CONN_MAX_AGE), about 2.5 MB of PostgreSQL's memory: with 4 threads, the
# eight events of a 1 GB droplet held 16 more connections for 6% more visits per second
# (bench/run.sh, one event on 2 cores).
threads = _whole_number("GUNICORN_THREADS", 2, 256)


def on_starting(server):
    """Validate the settings in the master before any worker starts.

    A configuration error then stops gunicorn once with its one-line message, instead of every
    worker failing to boot in turn. Only the settings module is imported (not Django's apps), so
    the master stays small: the workers load the site.
    """
    import config.settings  # noqa: F401


# Swarm (and `docker stop`) sends SIGTERM, and kills after the stack's stop_grace_period (15 s,
# render_event.stack_file): serve on for STOP_DRAIN_SECONDS (below), then finish in-flight
# requests within graceful_timeout.
graceful_timeout = 8

# Once gunicorn stops on SIGTERM, a connection that reaches its listening socket is never
# accepted, and closing the socket resets it after Nginx sent the request: Nginx retries a GET
# elsewhere but never a POST, so the visitor gets a 502. Swarm stops a release's old task as soon
# as the new one is healthy, and Nginx is pointed at the new one (event_stack.sh) when it answers,
# which under load can be a moment later. So the old task keeps serving this long after SIGTERM,
# then stops as gunicorn does. (Kubernetes' preStop sleep, for the same race.)
STOP_DRAIN_SECONDS = 5


def when_ready(server):
    """Delay the master's SIGTERM by STOP_DRAIN_SECONDS; a second SIGTERM stops at once.

    gunicorn installed its own handlers just before this hook (``Arbiter.start``): SIGTERM only
    queues the signal for the master's loop (``Arbiter.signal``). SIGALRM, which gunicorn does not
    use, queues it later; timers are not inherited by forked workers.
    """

    def stop_later(signum, frame):
        signal.signal(signal.SIGTERM, server.signal)
        signal.setitimer(signal.ITIMER_REAL, STOP_DRAIN_SECONDS)

    signal.signal(signal.SIGALRM, lambda signum, frame: server.signal(signal.SIGTERM, frame))
    signal.signal(signal.SIGTERM, stop_later)


timeout = 30
keepalive = 5
# The heartbeat file on tmpfs: a container's overlay disk can stall it.
worker_tmp_dir = "/dev/shm"  # noqa: S108 -- tmpfs, private to the container

# gunicorn's runtime control socket would live under $HOME, which the site user does not have
# (/nonexistent): every start logged an error. Nothing uses it.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
# The same access lines as gunicorn's, written at a fraction of the CPU (see the module).
logger_class = "config.access_log.AccessLogger"
