"""`manage.py ensure_admin`: the event's administrator, as the migration job makes it."""

from __future__ import annotations

import pytest
from conftest import manage, site_env


@pytest.fixture
def run_ensure_admin(test_db_name, live_db, tmp_path):
    def run(password: str | None, *args: str):
        env = site_env(DB_NAME=test_db_name)
        if password is not None:
            # As swarm gives it: a file, named by ADMIN_PASSWORD_FILE.
            secret = tmp_path / "admin_password"
            secret.write_text(password + "\n")
            env["ADMIN_PASSWORD_FILE"] = str(secret)
        return manage("ensure_admin", *args, env=env)

    return run


def admins():
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.filter(is_superuser=True))


def test_creates_the_superuser_with_the_generated_password(run_ensure_admin):
    result = run_ensure_admin("generated-password-0123456789")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Created the administrator 'admin'"
    (admin,) = admins()
    assert admin.username == "admin" and admin.is_staff and admin.is_active
    assert admin.check_password("generated-password-0123456789")
    assert "generated-password" not in result.stdout + result.stderr


def test_running_again_keeps_one_account_and_sets_the_current_password(run_ensure_admin):
    for password in ("first-password-0123456789", "first-password-0123456789"):
        assert run_ensure_admin(password).returncode == 0
    rotated = run_ensure_admin("rotated-password-0123456789")
    assert rotated.stdout.strip() == "Updated the administrator 'admin'"
    (admin,) = admins()
    assert admin.check_password("rotated-password-0123456789")
    assert not admin.check_password("first-password-0123456789")


def test_an_account_demoted_by_hand_is_made_superuser_again(run_ensure_admin):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("admin", password="x", is_active=False)
    assert run_ensure_admin("generated-password-0123456789").returncode == 0
    (admin,) = admins()
    assert admin.is_active and admin.is_staff


def test_without_a_password_it_names_the_setting_and_changes_nothing(run_ensure_admin):
    result = run_ensure_admin(None)
    assert result.returncode != 0
    assert "ADMIN_PASSWORD" in result.stderr and "Traceback" not in result.stderr
    too_short = run_ensure_admin("short")
    assert "at least 16 characters" in too_short.stderr
    assert admins() == []
