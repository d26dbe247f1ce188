"""What an administrator does on a deployed event site, for the tests that deploy one (the
rehearsal, and the local try-out as the README gives it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import requests


def admin_login(url: Callable[[str], str], path: str, login: dict[str, str]) -> requests.Session:
    """A session logged into the admin under ``path`` with ``login`` (username, password);
    ``url`` makes a site path an address."""
    session = requests.Session()
    page = session.get(url(f"{path}/admin/login/"), timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = session.post(
        url(f"{path}/admin/login/?next={path}/admin/"),
        data={"csrfmiddlewaretoken": token, "username": login["username"],
              "password": login["password"], "next": f"{path}/admin/"},
        timeout=10,
    )  # fmt: skip
    assert done.status_code == 200, done.status_code
    # A refused login shows the form again, at .../admin/login/?next=...
    assert urlsplit(done.url).path == f"{path}/admin/", f"login refused at {path}: {done.url}"
    return session
