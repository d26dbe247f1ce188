"""Gunicorn settings for the event site (the image's CMD and the benchmark use this file).

Defaults are sized for a 1 vCPU / 1 GB droplet that runs several events: one worker process with
a few threads per event keeps each event near 60 MB, and the threads overlap the time spent
waiting for PostgreSQL. Raise GUNICORN_WORKERS on a bigger host.
"""

import os
from pathlib import Path

# Runs the site from app/ wherever gunicorn is started, so `gunicorn -c app/gunicorn.conf.py`
# works from the repository root as well as from /app in the image.
chdir = str(Path(__file__).resolve().parent)
wsgi_app = "config.wsgi:application"

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))


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

accesslog = "-"
errorlog = "-"
