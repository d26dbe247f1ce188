"""With TLS on (SECURE_SSL=1), Django trusts Nginx's X-Forwarded-Proto and acts on it."""

import pytest
import requests
from conftest import ADMIN_PASSWORD, form_csrf_token, gunicorn, site_env

FROM_NGINX_OVER_TLS = {"X-Forwarded-Proto": "https", "Host": "example.org"}


@pytest.fixture
def tls_site(test_db_name, work_dir, admin_user):
    settings = site_env(
        DB_NAME=test_db_name,
        URL_PREFIX="/event1",
        ALLOWED_HOSTS="example.org,127.0.0.1",
        PUBLIC_DOMAIN="example.org",
        SECURE_SSL="1",
    )
    with gunicorn(settings, work_dir) as site:
        yield site


def test_plain_http_is_redirected_but_the_health_check_is_not(tls_site):
    plain = requests.get(f"{tls_site.url}/", headers={"Host": "example.org"},
                         allow_redirects=False, timeout=10)  # fmt: skip
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://example.org/event1/"
    # The container's HEALTHCHECK speaks plain HTTP to 127.0.0.1 from inside.
    assert requests.get(f"{tls_site.url}/healthz", timeout=10).status_code == 200


def test_forwarded_https_is_secure_with_hsts_and_secure_cookies(tls_site):
    page = requests.get(f"{tls_site.url}/admin/login/", headers=FROM_NGINX_OVER_TLS, timeout=10)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    csrf_cookie = page.headers["Set-Cookie"]
    assert csrf_cookie.startswith("event1_csrftoken=")
    assert "Secure" in csrf_cookie
    assert "Path=/event1/" in csrf_cookie


@pytest.mark.parametrize(("origin", "status"), [("https://example.org", 302),
                                                ("https://elsewhere.example", 403)])  # fmt: skip
def test_login_post_is_accepted_only_from_the_public_domain(tls_site, origin, status):
    with requests.Session() as browser:
        form = browser.get(f"{tls_site.url}/admin/login/", headers=FROM_NGINX_OVER_TLS, timeout=10)
        token = form_csrf_token(form.text)
        cookie = form.headers["Set-Cookie"].split(";")[0]
        # Nginx may pass an internal Host; the browser's Origin is the public domain.
        login = requests.post(
            f"{tls_site.url}/admin/login/",
            headers={"X-Forwarded-Proto": "https", "Host": "127.0.0.1", "Origin": origin,
                     "Cookie": cookie},
            data={"csrfmiddlewaretoken": token, "username": "organiser",
                  "password": ADMIN_PASSWORD, "next": "/event1/admin/"},
            allow_redirects=False,
            timeout=30,
        )  # fmt: skip
    assert login.status_code == status
    if status == 302:
        assert login.headers["Location"] == "/event1/admin/"
        assert "Secure" in login.headers["Set-Cookie"]
