"""URLs relative to the event's prefix (Nginx strips it; FORCE_SCRIPT_NAME adds it back)."""

from django.contrib import admin
from django.urls import path

from hits import views

urlpatterns = [
    path("", views.index, name="index"),
    path("admin/", admin.site.urls),
]

handler500 = "hits.views.server_error"
