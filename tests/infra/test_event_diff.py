"""Two runs of the program with configs that differ in one place: only what should change has
changed inputs. This is what `pulumi up` would update, in normal and in preview mode."""

from __future__ import annotations

import pytest
from conftest import UserConfig

from harness import ProgramRun


@pytest.fixture(params=[False, True], ids=["up", "preview"])
def preview(request) -> bool:
    return request.param


def changed(before: ProgramRun, after: ProgramRun) -> tuple[set[str], set[str], set[str]]:
    """Names of resources (added, removed, with changed inputs) from ``before`` to ``after``."""
    old = {r.name: r for r in before.resources}
    new = {r.name: r for r in after.resources}
    different = {
        name
        for name in old.keys() & new.keys()
        if old[name].inputs != new[name].inputs or old[name].secret_paths != new[name].secret_paths
    }
    return set(new) - set(old), set(old) - set(new), different


def assert_only_changed(
    before: ProgramRun, after: ProgramRun, expected: set[str], preview: bool
) -> None:
    """Nothing but ``expected`` changed. In a first preview the steps built from generated
    passwords and the image digest are unknown on both sides, so they may show no change."""
    added, removed, different = changed(before, after)
    assert (added, removed) == (set(), set())
    if preview:
        assert different <= expected
    else:
        assert different == expected


def with_event(config: UserConfig, name: str, **changes) -> UserConfig:
    events = [e | changes if e["name"] == name else e for e in config.values["events"]]
    return config.with_(events=events)


def test_the_upload_limit_of_one_event_changes_only_its_nginx_step(
    existing_config: UserConfig, preview: bool
):
    before = existing_config.run(preview=preview)
    after = with_event(existing_config, "event2", uploadLimitMb=64).run(preview=preview)
    assert_only_changed(before, after, {"event2-nginx"}, preview)


def test_settings_of_one_event_change_only_its_release(existing_config: UserConfig, preview: bool):
    before = existing_config.run(preview=preview)
    after = with_event(existing_config, "event2", settings={"TIME_ZONE": "Europe/Berlin"}).run(
        preview=preview
    )
    # Migrations run with the site's environment, so they see the new setting too.
    assert_only_changed(before, after, {"event2-migrate", "event2-stack"}, preview)


def test_moving_one_event_changes_nothing_of_the_others(existing_config: UserConfig, preview: bool):
    before = existing_config.run(preview=preview)
    after = with_event(existing_config, "event2", path="/spring", port=24000).run(preview=preview)
    added, removed, different = changed(before, after)
    assert (added, removed) == (set(), set())
    assert different
    assert all(name.startswith("event2-") for name in different), different


def test_adding_an_event_only_adds_its_resources(existing_config: UserConfig, preview: bool):
    before = existing_config.run(preview=preview)
    events = [*existing_config.values["events"], {"name": "event3", "path": "/event3"}]
    after = existing_config.with_(events=events).run(preview=preview)
    added, removed, different = changed(before, after)
    assert removed == set() and different == set()
    assert added == {
        "event3",
        *(f"event3-{s}" for s in ("admin-password", "db-password", "secret-key")),
        *(f"event3-{s}" for s in ("database", "secrets", "network", "migrate", "static")),
        *(f"event3-{s}" for s in ("media", "stack", "nginx")),
    }


def test_removing_an_event_only_removes_its_resources(existing_config: UserConfig):
    before = existing_config.run()
    after = existing_config.with_(events=existing_config.values["events"][:1]).run()
    added, removed, different = changed(before, after)
    assert added == set() and different == set()
    assert removed and all(name.startswith("event2") for name in removed)


def test_a_new_image_rolls_every_event_and_nothing_else(existing_config: UserConfig):
    before = existing_config.run()
    after = existing_config.with_(baseImage="django-swarm/python-base:trixie").run()
    added, removed, different = changed(before, after)
    assert (added, removed) == (set(), set())
    assert different == {
        "app-image",
        *(f"{e}-{s}" for e in ("event1", "event2") for s in ("migrate", "static", "stack")),
    }


def test_a_new_image_in_preview_changes_only_the_image(existing_config: UserConfig):
    """In a preview the new digest is unknown: the release steps show as unknown, not as stale."""
    before = existing_config.run(preview=True)
    after = existing_config.with_(baseImage="django-swarm/python-base:trixie").run(preview=True)
    assert changed(before, after) == (set(), set(), {"app-image"})
