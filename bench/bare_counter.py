"""The visit counter without Django: what gunicorn and psycopg alone cost per visit.

bench/run.sh serves this instead of the site with BENCH_APP=bare, in the same image and with the
same gunicorn.conf.py (worker class, threads, access log), so the difference between the two runs
is what Django adds. It runs the site's own statement (hits.models.record_hit) on one connection
per gunicorn thread, as the site's persistent connections do. Not part of the product.
"""

import json
import os
import threading
from pathlib import Path

import psycopg

INCREMENT = (
    "INSERT INTO hits_counter (name, hits) VALUES ('site', 1) "
    "ON CONFLICT (name) DO UPDATE SET hits = hits_counter.hits + 1 RETURNING hits"
)
_local = threading.local()


def _connection() -> psycopg.Connection:
    if getattr(_local, "connection", None) is None:
        _local.connection = psycopg.connect(
            host=os.environ["DB_HOST"],
            port=os.environ["DB_PORT"],
            dbname=os.environ["DB_NAME"],
            user=os.environ["DB_USER"],
            password=Path(os.environ["DB_PASSWORD_FILE"]).read_text().strip(),
            autocommit=True,
        )
    return _local.connection


def application(environ, start_response):
    if environ["PATH_INFO"] == "/healthz":
        answer = {"status": "ok"}
    else:
        answer = {"hits": _connection().execute(INCREMENT).fetchone()[0]}
    body = json.dumps(answer).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]
