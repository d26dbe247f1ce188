"""`migrate --noinput` under a PostgreSQL advisory lock, so that two runs never race.

The deployment runs migrations as a one-off job before a new version takes traffic; the lock is
the safety net for two such jobs (or a job and a developer) running at the same time: the second
waits for the first, then finds nothing left to do.
"""

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

# Any constant bigint shared by every run against the same database: "dswarm-m" as 8 bytes.
MIGRATION_LOCK_KEY = int.from_bytes(b"dswarm-m", "big") >> 1


class Command(BaseCommand):
    help = "Run `migrate --noinput` while holding a PostgreSQL advisory lock (bounded wait)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--lock-timeout",
            type=float,
            default=300.0,
            help="seconds to wait for another migration run to finish (default 300)",
        )

    def handle(self, *args, lock_timeout, verbosity, **options):
        deadline = time.monotonic() + lock_timeout
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    raise CommandError(
                        f"another migration run still holds the migration lock after "
                        f"{lock_timeout:g} s; wait for it to finish (or stop it) and run again"
                    )
                time.sleep(0.5)
            try:
                call_command("migrate", interactive=False, verbosity=verbosity)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
