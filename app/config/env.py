"""Read the site's settings from the environment, failing fast with one line per mistake.

A missing or malformed setting stops the process at start (``SystemExit``): gunicorn (with
``preload_app``) and ``manage.py`` then print exactly one line naming the variable and what it
expects, instead of a traceback or a site that half works.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
# One or more path segments, no trailing slash: "/event1", "/2025/spring".
_URL_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")
# A DNS host name (no scheme, port or path).
_HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")


class SettingError(SystemExit):
    """Stops the process with a one-line message about one environment variable."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Configuration error: {name} {problem}")


def _raw(name: str, secret: bool) -> str | None:
    """The variable's value, or for a secret the content of the file named by ``<name>_FILE``."""
    value = os.environ.get(name)
    if not secret:
        return value
    file_name = os.environ.get(f"{name}_FILE")
    if file_name is None:
        return value
    if value is not None:
        raise SettingError(name, f"is set twice: set either {name} or {name}_FILE, not both")
    try:
        # Secret files (swarm secrets, `echo > file`) usually end with a newline that is not part
        # of the value.
        return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SettingError(
            f"{name}_FILE", f"must name a readable file ({file_name}: {exc.strerror})"
        ) from None


def text(name: str, *, secret: bool = False, default: str | None = None) -> str:
    """A non-empty string; required unless a default is given."""
    value = _raw(name, secret)
    if value is None or value == "":
        if default is not None:
            return default
        hint = f" (or {name}_FILE naming a file that holds it)" if secret else ""
        raise SettingError(name, f"is required: set it to a non-empty value{hint}")
    return value


def secret_key(name: str) -> str:
    """Django's signing key: long and random, as ``check --deploy`` demands."""
    value = text(name, secret=True)
    if len(value) < 50 or len(set(value)) < 5 or value.startswith("django-insecure-"):
        raise SettingError(
            name,
            "must be a random string of at least 50 characters "
            "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(50))')",
        )
    return value


def port(name: str, *, default: int) -> int:
    """A TCP port number."""
    value = text(name, default=str(default))
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise SettingError(name, f"must be a TCP port number from 1 to 65535, got {value!r}")
    return int(value)


def flag(name: str) -> bool:
    """A boolean that is off unless set to 1/true/yes/on."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(name, f"must be 1/true/yes/on or 0/false/no/off, got {value!r}")


def host_list(name: str) -> list[str]:
    """A comma-separated list of host names, as Django's ALLOWED_HOSTS takes them."""
    hosts = [host.strip() for host in text(name).split(",")]
    if any(not host or any(c in host for c in "/: ") for host in hosts):
        raise SettingError(
            name,
            "must be a comma-separated list of host names without scheme or port "
            f"(for example: example.org,localhost), got {os.environ[name]!r}",
        )
    return hosts


def url_prefix(name: str) -> str:
    """The sub-folder the site is served under: "" (the root) or like "/event1"."""
    value = os.environ.get(name, "")
    if value and not _URL_PREFIX.fullmatch(value):
        raise SettingError(
            name,
            "must be empty (site at the root) or a path with a leading slash and no trailing "
            f"slash, like /event1, got {value!r}",
        )
    return value


def host_name(name: str) -> str | None:
    """An optional public DNS name (no scheme, no port)."""
    value = os.environ.get(name, "")
    if not value:
        return None
    if not _HOST_NAME.fullmatch(value):
        raise SettingError(
            name, f"must be a host name without scheme or port, like example.org, got {value!r}"
        )
    return value
