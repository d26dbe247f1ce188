"""Where django-swarm puts things on the host, and how it names them.

One module so that the host scripts, the event deployment and the tests agree on every path.
"""

ETC_DIR = "/etc/django-swarm"
STACKS_DIR = f"{ETC_DIR}/stacks"
STATIC_ROOT = "/srv/django-swarm"
# The events' data besides PostgreSQL's (uploaded files; backups without a bucket; what a
# restore replaced): DATA_DIR, or the PostgreSQL volume's mount when there is one.
DATA_DIR = "/var/lib/django-swarm"
# Uploaded files, one directory per event, kept when the event is removed (as its database is).
# host_media.sh makes it a link onto the PostgreSQL volume when there is one.
MEDIA_ROOT = f"{DATA_DIR}/media"
# An event whose flag file exists here answers 503 (django-swarm-restore at work).
MAINTENANCE_DIR = f"{DATA_DIR}/maintenance"
# How many instances of each step with a delete are in place (remote_script.step_count_file).
STEPS_DIR = f"{DATA_DIR}/steps"
# Backups (restic): settings with the bucket's secret, restic's password, the tools.
BACKUP_ENV = f"{ETC_DIR}/backup.env"
RESTIC_PASSWORD_FILE = f"{ETC_DIR}/restic-password"
TOOLS_DIR = "/usr/local/sbin"
NGINX_SITE = "/etc/nginx/sites-available/django-swarm"
NGINX_SITE_ENABLED = "/etc/nginx/sites-enabled/django-swarm"
NGINX_LOCATIONS_DIR = "/etc/nginx/django-swarm.d"
# The events' upstreams, included at Nginx's http level; each includes its event's servers file
# (NGINX_SERVERS_DIR), which says which of the event's ports is live (event_stack.sh writes it).
NGINX_UPSTREAMS_DIR = "/etc/nginx/django-swarm-upstreams.d"
NGINX_SERVERS_DIR = f"{ETC_DIR}/nginx-servers"


def event_dir(event: str) -> str:
    """Everything of ``event`` under STATIC_ROOT: its static files and their release records."""
    return f"{STATIC_ROOT}/{event}"


def static_dir(event: str) -> str:
    """What Nginx serves as ``<path>/static/`` for ``event`` (trailing slash on purpose): a
    symlink that ``event_static.sh`` points at the set of files of the current releases."""
    return f"{event_dir(event)}/static/"


def media_dir(event: str) -> str:
    """The uploaded files of ``event``: mounted into its tasks, served as ``<path>/media/``
    (``render_event.nginx_location`` adds the trailing slash its alias needs)."""
    return f"{MEDIA_ROOT}/{event}"


def maintenance_flag(event: str) -> str:
    """While this file exists, ``event`` answers 503 (``django-swarm-restore`` creates it)."""
    return f"{MAINTENANCE_DIR}/{event}"


def nginx_file_name(path: str) -> str:
    """The name of the Nginx location file, and of the upstream file, of the event served at
    ``path`` (``/a/b`` -> ``a_b.conf``).

    Named by path, not by event: when an event is renamed, or two events swap paths, the event
    that takes a path over writes that path's files, so Nginx never sees the same location (or
    upstream) twice. (``_`` cannot occur in a path segment, so two paths never share a name.)
    """
    return f"{'_'.join(path.strip('/').split('/'))}.conf"


def nginx_servers_file(event: str, manager_only: bool = False) -> str:
    # "." cannot occur in an event's name, so no event's file is another's manager file.
    return f"{NGINX_SERVERS_DIR}/{event}{'.manager' if manager_only else ''}.conf"


def stack_file(event: str) -> str:
    return f"{STACKS_DIR}/{event}.yml"


def database_name(event: str) -> str:
    """Database and role of ``event``: a valid unquoted PostgreSQL identifier."""
    return "ev_" + event.replace("-", "_")


def service_name(event: str) -> str:
    return f"{event}_web"
