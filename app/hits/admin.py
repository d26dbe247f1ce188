from django.contrib import admin

from hits.models import Counter


@admin.register(Counter)
class CounterAdmin(admin.ModelAdmin):
    list_display = ("name", "hits")
