"""Steady load on a box's sites during a rollout, a failure or a move: what a visitor sees."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import requests


class Site(Protocol):
    def url(self, path: str) -> str: ...


def hits(site: Site, path: str) -> int:
    """A visit to an event's page at ``path``: its visit count, this visit included."""
    response = requests.get(site.url(path), timeout=10)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response.json()["hits"]


def wait_until_serving(site: Site, path: str, timeout: float) -> None:
    """Until the event at ``path`` answers its health check (which asks its database): a visit
    counts, this does not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(site.url(f"{path}/healthz"), timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"{path} did not come back within {timeout} s"
        time.sleep(2)


class SteadyLoad(threading.Thread):
    """Back-to-back requests until stopped, counting what failed: a visit (GET) on each of
    ``paths``, and a form submission (POST) on each of ``posts``. A POST carries no CSRF token,
    so the site itself refuses it with its own 403 page: that answer proves it reached a task
    (Nginx's own failures are 502 to 504)."""

    def __init__(self, site: Site, paths: list[str], posts: tuple[str, ...] = ()):
        super().__init__(daemon=True)
        self.site, self.paths, self.posts = site, paths, posts
        self.stopping = threading.Event()
        self.total = self.failed = 0
        self.ok_by_path = dict.fromkeys(paths, 0)
        self.posts_answered = 0
        # Why each failed request failed, with when (seconds since the start): what a failing
        # assertion shows.
        self.failures: list[str] = []
        self.started = time.monotonic()

    def _answered(self, method: str, path: str) -> bool:
        try:
            response = requests.request(method, self.site.url(path), data={"visit": "1"}, timeout=5)
        except requests.RequestException as error:
            return self._failed(method, path, type(error).__name__)
        if method == "POST":
            if response.status_code == 403 and "CSRF" in response.text:
                return True
        elif response.status_code == 200:
            return True
        return self._failed(method, path, f"{response.status_code} {response.text[:80]!r}")

    def _failed(self, method: str, path: str, reason: str) -> bool:
        self.failures.append(f"{time.monotonic() - self.started:.1f}s {method} {path}: {reason}")
        return False

    def report(self) -> str:
        """The failures, for an assertion's message: how many, then the first and last few."""
        shown = (
            self.failures[:5]
            + (["..."] if len(self.failures) > 10 else [])
            + self.failures[max(5, len(self.failures) - 5) :]
        )
        return f"{self.failed} of {self.total} requests failed:\n" + "\n".join(shown)

    def run(self) -> None:
        while not self.stopping.is_set():
            for method, path in [("GET", p) for p in self.paths] + [
                ("POST", p) for p in self.posts
            ]:
                self.total += 1
                if not self._answered(method, path):
                    self.failed += 1
                elif method == "GET":
                    self.ok_by_path[path] += 1
                else:
                    self.posts_answered += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join()

    def __enter__(self) -> SteadyLoad:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
