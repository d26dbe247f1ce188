import sys

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from hits.middleware import UNAVAILABLE_ERRORS, database_unavailable
from hits.models import record_hit


@require_GET
def index(request):
    response = JsonResponse({"hits": record_hit()})
    # Each answer is one visit's own number: no browser or proxy may keep it or answer with it.
    response["Cache-Control"] = "no-store"
    return response


def server_error(request):
    """handler500: JSON instead of an HTML page, and 503 when the database was the cause.

    Catches what DatabaseUnavailableMiddleware cannot see: errors raised outside the view, such as
    a session save in SessionMiddleware while PostgreSQL restarts.
    """
    exc = sys.exc_info()[1]
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return database_unavailable(exc)
    return JsonResponse({"error": "internal server error"}, status=500)
