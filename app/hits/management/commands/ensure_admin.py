"""Make sure the event's administrator exists with the password the deployment generated.

The deployment runs this in its migration job after `migrate_locked`, with the password as a
swarm secret file (ADMIN_PASSWORD_FILE). Running it again changes nothing but the password, which
is always set to the file's: the deployment's generated password is the account's password
(docs/how-to.md, "Log in to an event's admin").
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from config import env


class Command(BaseCommand):
    help = "Create or update the superuser USERNAME with the password in ADMIN_PASSWORD(_FILE)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="the account (default: admin)")

    def handle(self, *args, username, **options):
        try:
            password = env.text("ADMIN_PASSWORD", secret=True)
        except SystemExit as error:
            raise CommandError(str(error)) from None
        if len(password) < 16:
            raise CommandError("ADMIN_PASSWORD must be at least 16 characters")
        users = get_user_model()
        with transaction.atomic():
            user, created = users.objects.select_for_update().get_or_create(
                **{users.USERNAME_FIELD: username}
            )
            user.is_active = user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} the administrator {username!r}")
