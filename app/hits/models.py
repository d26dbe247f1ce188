"""The visit counter: one row per counter name (each event has its own database)."""

from django.db import connection, models

SITE_COUNTER = "site"


class Counter(models.Model):
    name = models.CharField(max_length=50, primary_key=True)
    hits = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.hits}"


def record_hit(name: str = SITE_COUNTER) -> int:
    """Count one visit and return the new total, in one atomic statement.

    The upsert takes the row lock, so concurrent visits serialise on the row and each one gets its
    own number; there is no read-modify-write in Python and no separate INSERT for the first hit.
    """
    table = connection.ops.quote_name(Counter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, hits) VALUES (%s, 1) "  # noqa: S608 -- table name from the model
            f"ON CONFLICT (name) DO UPDATE SET hits = {table}.hits + 1 RETURNING hits",
            [name],
        )
        return cursor.fetchone()[0]


class Attachment(models.Model):
    """A file an organiser uploads in the admin (slides, a logo): the sample site's media."""

    title = models.CharField(max_length=200)
    file = models.FileField(upload_to="attachments/")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.title
