"""Django's PostgreSQL backend, with a cheaper check of a kept connection before each request.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request that
reuses a persistent connection: for the counter, one database round trip for each visit on top of
its one statement. Between requests, an idle connection that is still good has nothing to read.
One the server has dropped (a restart, pg_terminate_backend) has its error message or end-of-file
waiting in the socket. So a zero-timeout poll of the socket answers "still good" without asking the
server. Only when something is waiting does Django's own check run: it fails on a dropped
connection, which is then replaced before the request uses it, and costs the usual round trip on
the rare good one with a message waiting.

A server that vanishes without closing its side (its host lost power) sends nothing: the poll
misses it, and Django's `SELECT 1` would wait on it just as long as the request's own query does.
"""

import select

from django.db.backends.postgresql import base


def _has_pending_input(fd: int) -> bool:
    poller = select.poll()
    # POLLHUP and POLLERR are always reported; POLLIN covers an error message and end-of-file.
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.connection.closed
            and not _has_pending_input(self.connection.fileno())
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
