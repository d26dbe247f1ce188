"""Gunicorn settings for the event site (the image's CMD and the benchmark use this file).

Defaults are sized for a 1 vCPU / 1 GB droplet that runs several events: one worker process with
a few threads per event keeps each event near 65-75 MB (proportional set size, master included),
and the threads overlap the time spent waiting for PostgreSQL. One worker uses at most one core
(about 1 ms of CPU per visit, bench/run.sh): raise GUNICORN_WORKERS on a bigger host, about 55 MB
each.
"""

import os
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
threads = _whole_number("GUNICORN_THREADS", 4, 256)


def on_starting(server):
    """Validate the settings in the master before any worker starts.

    A configuration error then stops gunicorn once with its one-line message, instead of every
    worker failing to boot in turn. Only the settings module is imported (not Django's apps), so
    the master stays small: the workers load the site.
    """
    import config.settings  # noqa: F401


# Swarm (and `docker stop`) sends SIGTERM and kills after 10 s by default: finish in-flight
# requests within that.
graceful_timeout = 8
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
