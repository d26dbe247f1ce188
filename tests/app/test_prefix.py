"""Sub-folders: every URL Django makes carries the prefix; cookies stay in their event.

Requests go through Nginx, which strips /event1 and /event2 (and passes the root site's paths
unchanged), exactly as in production.
"""

import re

import pytest
import requests
from conftest import ADMIN_PASSWORD, form_csrf_token


def log_in(session: requests.Session, base: str) -> requests.Response:
    """The admin login round trip a browser does: form with CSRF token, POST, redirect."""
    form = session.get(f"{base}/admin/login/?next={base_path(base)}/admin/", timeout=10)
    assert form.status_code == 200
    token = form_csrf_token(form.text)
    return session.post(
        f"{base}/admin/login/?next={base_path(base)}/admin/",
        data={
            "csrfmiddlewaretoken": token,
            "username": "organiser",
            "password": ADMIN_PASSWORD,
            "next": f"{base_path(base)}/admin/",
        },
        allow_redirects=False,
        timeout=30,
    )


def base_path(base: str) -> str:
    return re.sub(r"^http://[^/]+", "", base)


@pytest.mark.parametrize(("prefix", "cookie_prefix"), [("/event1", "event1_"), ("", "")])
def test_admin_login_round_trip(sites, admin_user, prefix, cookie_prefix):
    base = sites.base_url + prefix
    with requests.Session() as browser:
        # An anonymous visit to the admin redirects to the login page, under the prefix.
        anonymous = browser.get(f"{base}/admin/", allow_redirects=False, timeout=10)
        assert anonymous.status_code == 302
        assert anonymous.headers["Location"] == f"{prefix}/admin/login/?next={prefix}/admin/"

        logged_in = log_in(browser, base)
        assert logged_in.status_code == 302, logged_in.text[:500]
        assert logged_in.headers["Location"] == f"{prefix}/admin/"

        cookies = {cookie.name: cookie for cookie in browser.cookies}
        assert set(cookies) == {f"{cookie_prefix}sessionid", f"{cookie_prefix}csrftoken"}
        assert {cookie.path for cookie in cookies.values()} == {f"{prefix}/"}

        index = browser.get(f"{base}/admin/", timeout=10)
        assert index.status_code == 200
        assert "Site administration" in index.text
        assert f'href="{prefix}/admin/hits/counter/"' in index.text
        assert f'action="{prefix}/admin/logout/"' in index.text


def test_admin_form_saves_and_shows_its_message_without_another_cookie(sites, admin_user):
    base = f"{sites.base_url}/event1"
    with requests.Session() as browser:
        assert log_in(browser, base).status_code == 302
        form = browser.get(f"{base}/admin/hits/counter/add/", timeout=10)
        token = form_csrf_token(form.text)
        saved = browser.post(
            f"{base}/admin/hits/counter/add/",
            data={"csrfmiddlewaretoken": token, "name": "workshop", "hits": "7"},
            allow_redirects=False,
            timeout=10,
        )
        assert saved.status_code == 302, saved.text[:500]
        assert saved.headers["Location"] == "/event1/admin/hits/counter/"

        # The "added successfully" message travels in the session, not in a cookie of its own.
        assert {cookie.name for cookie in browser.cookies} == {
            "event1_sessionid",
            "event1_csrftoken",
        }
        listing = browser.get(f"{base}/admin/hits/counter/", timeout=10)
        assert "was added successfully" in listing.text
        assert ">workshop</a>" in listing.text
        # Shown once, then gone.
        again = browser.get(f"{base}/admin/hits/counter/", timeout=10)
        assert "was added successfully" not in again.text


@pytest.mark.parametrize("prefix", ["/event1", ""])
def test_static_files_have_hashed_names_under_the_prefix_and_are_served(sites, live_db, prefix):
    page = requests.get(f"{sites.base_url}{prefix}/admin/login/", timeout=10)
    stylesheets = re.findall(r'href="([^"]+\.css)"', page.text)
    assert stylesheets, page.text[:500]
    for href in stylesheets:
        assert re.fullmatch(rf"{prefix}/static/admin/css/[\w/.-]+\.[0-9a-f]{{12}}\.css", href)
        css = requests.get(sites.base_url + href, timeout=10)
        assert css.status_code == 200
        assert css.headers["Content-Type"] == "text/css"


def test_missing_slash_redirects_within_the_prefix(sites, live_db):
    response = requests.get(f"{sites.base_url}/event1/admin", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == "/event1/admin/"


def test_prefix_never_comes_from_a_request_header(sites, live_db):
    headers = {"X-Script-Name": "/elsewhere", "X-Forwarded-Prefix": "/elsewhere"}
    response = requests.get(
        f"{sites.base_url}/event1/admin/", headers=headers, allow_redirects=False, timeout=10
    )
    assert response.headers["Location"] == "/event1/admin/login/?next=/event1/admin/"


def test_two_events_on_one_domain_keep_separate_logins(sites, admin_user):
    event1, event2 = f"{sites.base_url}/event1", f"{sites.base_url}/event2"
    with requests.Session() as browser:
        assert log_in(browser, event1).status_code == 302
        assert log_in(browser, event2).status_code == 302
        # Logging into event2 neither replaced nor sent event1's cookies.
        assert {(c.name, c.path) for c in browser.cookies} == {
            ("event1_sessionid", "/event1/"),
            ("event1_csrftoken", "/event1/"),
            ("event2_sessionid", "/event2/"),
            ("event2_csrftoken", "/event2/"),
        }
        for base in (event1, event2):
            page = browser.get(f"{base}/admin/", allow_redirects=False, timeout=10)
            assert page.status_code == 200, f"{base} logged out"

        # Logging out of event1 leaves event2 logged in.
        token = browser.cookies.get("event1_csrftoken", path="/event1/")
        logout = browser.post(
            f"{event1}/admin/logout/", data={"csrfmiddlewaretoken": token}, timeout=10
        )
        assert logout.status_code == 200
        assert browser.get(f"{event1}/admin/", allow_redirects=False, timeout=10).status_code == 302
        assert browser.get(f"{event2}/admin/", allow_redirects=False, timeout=10).status_code == 200


def test_a_file_uploaded_in_the_admin_is_served_under_the_events_media_url(sites, admin_user):
    base = f"{sites.base_url}/event1"
    content = b"slides of the opening talk\n"
    with requests.Session() as browser:
        assert log_in(browser, base).status_code == 302
        form = browser.get(f"{base}/admin/hits/attachment/add/", timeout=10)
        saved = browser.post(
            f"{base}/admin/hits/attachment/add/",
            data={"csrfmiddlewaretoken": form_csrf_token(form.text), "title": "Opening"},
            files={"file": ("opening.txt", content, "text/plain")},
            allow_redirects=False,
            timeout=10,
        )
        assert saved.status_code == 302, saved.text[:500]
        listing = browser.get(f"{base}/admin/hits/attachment/", timeout=10)
        change = re.search(r'href="(/event1/admin/hits/attachment/\d+/change/)"', listing.text)
        page = browser.get(f"{sites.base_url}{change.group(1)}", timeout=10)
    url = re.search(r'href="(/event1/media/attachments/opening[^"]*\.txt)"', page.text)
    assert url, "the change page links the file under the event's MEDIA_URL"
    served = requests.get(f"{sites.base_url}{url.group(1)}", timeout=10)
    assert (served.status_code, served.content) == (200, content)
