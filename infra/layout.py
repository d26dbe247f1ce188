"""Where django-swarm puts things on the host, and how it names them.

One module so that the host scripts, the event deployment and the tests agree on every path.
"""

ETC_DIR = "/etc/django-swarm"
STACKS_DIR = f"{ETC_DIR}/stacks"
STATIC_ROOT = "/srv/django-swarm"
NGINX_SITE = "/etc/nginx/sites-available/django-swarm"
NGINX_SITE_ENABLED = "/etc/nginx/sites-enabled/django-swarm"
NGINX_LOCATIONS_DIR = "/etc/nginx/django-swarm.d"


def event_dir(event: str) -> str:
    """Everything of ``event`` under STATIC_ROOT: its static files and their release records."""
    return f"{STATIC_ROOT}/{event}"


def static_dir(event: str) -> str:
    """What Nginx serves as ``<path>/static/`` for ``event`` (trailing slash on purpose): a
    symlink that ``event_static.sh`` points at the set of files of the current releases."""
    return f"{event_dir(event)}/static/"


def nginx_location_file(path: str) -> str:
    """The Nginx location file of the event served at ``path`` (``/a/b`` -> ``a_b.conf``).

    Named by path, not by event: when an event is renamed, or two events swap paths, the event
    that takes a path over writes that path's one file, so Nginx never sees the same location
    twice. (``_`` cannot occur in a path segment, so two paths never share a file name.)
    """
    return f"{NGINX_LOCATIONS_DIR}/{'_'.join(path.strip('/').split('/'))}.conf"


def stack_file(event: str) -> str:
    return f"{STACKS_DIR}/{event}.yml"


def database_name(event: str) -> str:
    """Database and role of ``event``: a valid unquoted PostgreSQL identifier."""
    return "ev_" + event.replace("-", "_")


def service_name(event: str) -> str:
    return f"{event}_web"
