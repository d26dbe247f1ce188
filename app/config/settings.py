"""Settings of one event's site, entirely from the environment (see docs/architecture.md).

The same image runs every event; each gets its own URL prefix, database and secrets. The prefix
comes from URL_PREFIX only, never from a request header: Nginx strips it from the path and Django
adds it back to every URL it generates (FORCE_SCRIPT_NAME, STATIC_URL, cookie paths).
"""

from pathlib import Path

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = env.secret_key("SECRET_KEY")
DEBUG = env.flag("DEBUG")
ALLOWED_HOSTS = env.host_list("ALLOWED_HOSTS")

URL_PREFIX = env.url_prefix("URL_PREFIX")
FORCE_SCRIPT_NAME = URL_PREFIX or None
STATIC_URL = f"{URL_PREFIX}/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded files: in production a directory of the host mounted into every task of the event
# (docs/architecture.md, "Media"), which Nginx serves under <prefix>/media/.
MEDIA_URL = f"{URL_PREFIX}/media/"
MEDIA_ROOT = Path(env.text("MEDIA_ROOT", default=str(BASE_DIR / "media")))

# Several events share one domain: each keeps its cookies to its own path and under its own
# names, so logging into /event1/admin/ neither sends nor replaces /event2's session.
_COOKIE_PREFIX = URL_PREFIX.strip("/").replace("/", "_")
SESSION_COOKIE_PATH = CSRF_COOKIE_PATH = f"{URL_PREFIX}/"
SESSION_COOKIE_NAME = f"{_COOKIE_PREFIX}_sessionid" if _COOKIE_PREFIX else "sessionid"
CSRF_COOKIE_NAME = f"{_COOKIE_PREFIX}_csrftoken" if _COOKIE_PREFIX else "csrftoken"
SESSION_COOKIE_HTTPONLY = True

PUBLIC_DOMAIN = env.host_name("PUBLIC_DOMAIN")
CSRF_TRUSTED_ORIGINS = [f"https://{PUBLIC_DOMAIN}"] if PUBLIC_DOMAIN else []

# Nginx terminates TLS and says so in X-Forwarded-Proto. Only trusted when TLS is on, so that a
# plain-HTTP deployment cannot be talked into thinking a request is secure.
if env.flag("SECURE_SSL"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    # Other sub-domains of the domain may belong to someone else (a student branch rarely owns
    # the whole zone): HSTS for this host only, no preload.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False
    SECURE_HSTS_PRELOAD = False
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]  # the two HSTS choices above

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "hits",
]

MIDDLEWARE = [
    # First: answers <prefix>/healthz before host validation, sessions or anything else.
    "hits.middleware.HealthCheckMiddleware",
    "hits.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "config.postgresql",
        "NAME": env.text("DB_NAME"),
        "USER": env.text("DB_USER"),
        "PASSWORD": env.text("DB_PASSWORD", secret=True),
        "HOST": env.text("DB_HOST"),
        "PORT": env.port("DB_PORT", default=5432),
        # Persistent connections (one per gunicorn thread) save a connect per request; the health
        # check before reuse drops connections a database restart has broken (our backend makes
        # it a look at the socket instead of a `SELECT 1`).
        "CONN_MAX_AGE": 300,
        "CONN_HEALTH_CHECKS": True,
        # A database that is down answers 503 quickly instead of holding every thread.
        "OPTIONS": {"connect_timeout": 3},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The admin's messages ("saved", "deleted") live in the session it already has, instead of one more
# cookie per event; and the default storage, which tries a cookie first, costs each visit of the
# counter a few percent of its CPU just to be set up.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names: each image carries its own static set, cacheable forever by Nginx.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# The site and its admin speak English only: without the translation machinery each request
# does a little less work.
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
