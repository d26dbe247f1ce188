"""Health endpoint and 503 answers while PostgreSQL is unreachable."""

import logging

from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# Relative to the prefix: Nginx strips /event1, so <prefix>/healthz arrives as /healthz.
HEALTH_PATH = "/healthz"
# What "the database is unreachable" looks like: refused or dropped connections. Errors in a query
# itself (DataError, IntegrityError, ProgrammingError) are bugs and stay 500s.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def database_unavailable(exc: Exception) -> JsonResponse:
    logger.warning(
        "database unavailable: %s", str(exc).strip().splitlines()[0] if str(exc) else exc
    )
    response = JsonResponse({"error": "database unavailable"}, status=503)
    response["Retry-After"] = "5"
    return response


class HealthCheckMiddleware:
    """Answers the health check before anything that could refuse or slow it.

    It runs before host validation on purpose: the container's HEALTHCHECK calls
    http://127.0.0.1:$PORT<prefix>/healthz from inside the container, and ALLOWED_HOSTS stays
    limited to the public names. The answer says only whether the database responds.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info != HEALTH_PATH:
            return self.get_response(request)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except UNAVAILABLE_ERRORS as exc:
            return database_unavailable(exc)
        return JsonResponse({"status": "ok"})


class DatabaseUnavailableMiddleware:
    """Turns a view's lost database connection into a 503 JSON answer instead of a 500 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, UNAVAILABLE_ERRORS):
            return database_unavailable(exception)
        return None
