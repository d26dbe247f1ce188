"""The event sites as the program declares them (Pulumi mock runtime): graph, order, isolation,
secrets, teardown. The rendered texts themselves are tested in test_render_event.py."""

from __future__ import annotations

import itertools
import re

import pytest
import yaml
from conftest import UserConfig, step_program, step_secrets
from conftest import script_params as params

import layout
import render_event
from harness import UNKNOWN, ProgramRun
from remote_script import script_text

COMMAND = "command:remote:Command"
IMAGE = "docker:index/image:Image"
PASSWORD = "random:index/randomPassword:RandomPassword"
STEPS = ("database", "secrets", "network", "migrate", "static", "stack", "nginx")
PROD_EVENTS = ("spring-hackathon", "autumn-hackathon")


@pytest.fixture(params=[False, True], ids=["up", "preview"])
def preview(request) -> bool:
    return request.param


def ancestors(run: ProgramRun, name: str) -> set[str]:
    """Names of every resource ``name`` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [run.named(name)]
    while todo:
        for urn in todo.pop().dependencies:
            dependency = run.by_urn(urn)
            if dependency.name not in seen:
                seen.add(dependency.name)
                todo.append(dependency)
    return seen


def test_each_event_has_its_steps_and_passwords(prod_config: UserConfig, preview: bool):
    run = prod_config.run(preview=preview)
    names = {r.name for r in run.of_type(COMMAND)}
    for event in PROD_EVENTS:
        assert {f"{event}-{step}" for step in STEPS} <= names
        component = run.named(event)
        assert component.type == "django-swarm:index:EventSite"
        for step in STEPS:
            assert run.named(f"{event}-{step}").parent == component.urn
    assert sorted(r.name for r in run.of_type(PASSWORD)) == sorted(
        [
            "host-restic-password",
            *(
                f"{e}-{kind}"
                for e in PROD_EVENTS
                for kind in ("admin-password", "db-password", "secret-key")
            ),
        ]
    )
    assert len(run.of_type(IMAGE)) == 1
    assert "app-registry-login" in names


def test_steps_run_in_dependency_order(prod_config: UserConfig, preview: bool):
    run = prod_config.run(preview=preview)
    for event in PROD_EVENTS:
        chain = [
            "host-nginx",
            *(f"{event}-{step}" for step in ("database", "migrate", "stack", "nginx")),
        ]
        for earlier, later in itertools.pairwise(chain):
            assert earlier in ancestors(run, later), f"{later} does not wait for {earlier}"
        migrate = ancestors(run, f"{event}-migrate")
        assert {
            "app-image",
            "app-registry-login",
            f"{event}-secrets",
            f"{event}-network",
        } <= migrate
        stack = ancestors(run, f"{event}-stack")
        assert {f"{event}-static", f"{event}-secrets", f"{event}-network"} <= stack
        assert "app-image" in ancestors(run, f"{event}-static")
        # Nothing of one event waits for another event.
        other = next(e for e in PROD_EVENTS if e != event)
        assert not any(n.startswith(other) for n in ancestors(run, f"{event}-nginx"))
    assert "host-nginx" in ancestors(run, "app-registry-login")


def test_release_steps_deploy_the_pushed_digest(prod_config: UserConfig):
    run = prod_config.run()
    digest = run.named("app-image").outputs["repoDigest"]
    assert re.fullmatch(r"ghcr\.io/ieee-branch/hits@sha256:[0-9a-f]{64}", digest)
    assert run.exports["imageDigest"] == digest
    for event in PROD_EVENTS:
        stack = params(run.named(f"{event}-stack").inputs)
        assert yaml.safe_load(stack["STACK_TEXT"])["services"]["web"]["image"] == digest
        assert params(run.named(f"{event}-migrate").inputs)["IMAGE"] == digest
        assert params(run.named(f"{event}-static").inputs)["IMAGE"] == digest


def test_preview_computes_nothing_from_unknown_values(prod_config: UserConfig):
    run = prod_config.run(preview=True)
    assert run.exports["imageDigest"] == UNKNOWN
    for event in PROD_EVENTS:
        for step in ("secrets", "migrate", "static", "stack"):
            assert run.named(f"{event}-{step}").inputs["create"] == UNKNOWN
        # What does not depend on the image or the passwords is known, and shown in the preview.
        assert run.named(f"{event}-nginx").inputs["create"] != UNKNOWN
        assert params(run.named(f"{event}-nginx").inputs)["EVENT"] == event
        # Its stdin waits for the password's verifier, but which step will run is known.
        assert run.named(f"{event}-database").inputs["create"] != UNKNOWN


def test_events_share_no_port_database_secret_file_or_prefix(prod_config: UserConfig):
    run = prod_config.run()
    seen: dict[str, set[str]] = {}
    for event in PROD_EVENTS:
        stack = params(run.named(f"{event}-stack").inputs)
        document = yaml.safe_load(stack["STACK_TEXT"])
        web = document["services"]["web"]
        environment = web["environment"]
        nginx = params(run.named(f"{event}-nginx").inputs)
        # No port of one event's pair is the other's.
        for port in stack["PORTS"].split():
            assert port not in seen.setdefault("port", set()), f"port {port} shared"
            seen["port"].add(port)
        values = {
            "ports": stack["PORTS"],
            "database": environment["DB_NAME"],
            "role": environment["DB_USER"],
            # The site derives its cookie paths and names from its prefix.
            "prefix": environment["URL_PREFIX"],
            "stack file": stack["STACK_FILE"],
            "service": stack["SERVICE"],
            "network": document["networks"]["default"]["name"],
            "nginx files": params(run.named(f"{event}-nginx").inputs)["FILE_NAME"],
            "upstream": re.search(r"upstream (\S+) ", nginx["UPSTREAM_TEXT"])[1],
            "static dir": params(run.named(f"{event}-static").inputs)["STATIC_DIR"],
        }
        values |= {f"secret {k}": v["name"] for k, v in document["secrets"].items()}
        assert environment["DB_NAME"] == layout.database_name(event)
        for kind, value in values.items():
            assert value not in seen.setdefault(kind, set()), f"{kind} {value} shared"
            seen[kind].add(value)
    assert seen["prefix"] == {"/spring", "/autumn"}


STRIPE_KEY = "sk_live_STRIPE-KEY-must-not-leak"


def with_event_secrets(config: UserConfig, value: str = STRIPE_KEY) -> UserConfig:
    """``pulumi config set --secret --path 'eventSecrets.spring-hackathon.STRIPE_KEY' <value>``"""
    return config.with_secret("eventSecrets", {"spring-hackathon": {"STRIPE_KEY": value}})


def secret_values(run: ProgramRun, config: UserConfig) -> list[str]:
    generated = [r.outputs["result"] for r in run.of_type(PASSWORD)]
    assert all(len(value) >= 20 for value in generated)
    configured = [v for v in config.secret_values if isinstance(v, str)]
    for value in config.secret_values:
        if isinstance(value, dict):  # eventSecrets
            configured += [secret for event in value.values() for secret in event.values()]
    return [*generated, *configured]


@pytest.mark.parametrize("event_secrets", [False, True])
def test_no_secret_in_any_command_text_or_plain_output(prod_config: UserConfig, event_secrets):
    config = with_event_secrets(prod_config) if event_secrets else prod_config
    run = config.run()
    secrets = secret_values(run, config)
    assert (STRIPE_KEY in secrets) == event_secrets
    for resource in run.of_type(COMMAND):
        for field in ("create", "delete", "update"):
            text = resource.inputs.get(field) or ""
            assert field not in resource.secret_paths, f"{resource.name}.{field} is secret"
            for secret in secrets:
                assert secret not in text, f"a secret is in {resource.name}.{field}"
        # The programs on stdin are shown in the preview when the step sends no secret.
        for which in ("create", "delete"):
            program = step_program(resource.inputs, which)
            for secret in secrets:
                assert secret not in program, f"a secret is in {resource.name}'s {which} program"
        if step_secrets(resource.inputs):
            # Secrets travel on stdin, and what such a step prints is neither shown nor stored.
            assert "stdin" in resource.secret_paths
            assert resource.inputs["logging"] == "none"
            assert {"stdout", "stderr"} <= set(resource.additional_secret_outputs)
    for name, value in run.exports.items():
        if name not in run.secret_exports:
            assert not any(secret in str(value) for secret in secrets), name


def test_secret_steps_read_the_secrets_in_the_documented_order(prod_config: UserConfig):
    run = prod_config.run()
    for event in PROD_EVENTS:
        key = run.named(f"{event}-secret-key").outputs["result"]
        password = run.named(f"{event}-db-password").outputs["result"]
        admin = run.named(f"{event}-admin-password").outputs["result"]
        assert step_secrets(run.named(f"{event}-secrets").inputs) == [key, password, admin]
        # The database step gets the password's SCRAM verifier, never the password itself.
        database = step_secrets(run.named(f"{event}-database").inputs)
        assert database == [render_event.scram_verifier(password)]
    login = step_secrets(run.named("app-registry-login").inputs)
    assert login == [prod_config.values["registryPassword"]]


def test_swarm_secret_names_carry_a_version_of_their_value(prod_config: UserConfig):
    run = prod_config.run()
    names = params(run.named("spring-hackathon-secrets").inputs)["SECRETS"].split()
    assert len(names) == 3
    for name, kind in zip(names, ("secret_key", "db_password", "admin_password"), strict=True):
        assert re.fullmatch(rf"spring-hackathon_{kind}_[0-9a-f]{{12}}", name)
    stack = params(run.named("spring-hackathon-stack").inputs)
    # The stack step removes the event's secrets not in this list: the job's stays.
    assert stack["SECRETS_IN_USE"].split() == names
    # Only the migration job mounts the administrator's password, never the site.
    migrate = params(run.named("spring-hackathon-migrate").inputs)
    assert f"source={names[2]},target=admin_password" in migrate["SECRET_MOUNTS"].split()
    assert "admin_password" not in stack["STACK_TEXT"]


def test_event_secrets_reach_their_site_and_its_job_as_swarm_secrets(prod_config: UserConfig):
    run = with_event_secrets(prod_config).run()
    step = run.named("spring-hackathon-secrets")
    names = params(step.inputs)["SECRETS"].split()
    assert len(names) == 4 and re.fullmatch(r"spring-hackathon_setting_[0-9a-f]{12}", names[3])
    assert step_secrets(step.inputs)[3] == STRIPE_KEY
    stack = params(run.named("spring-hackathon-stack").inputs)
    document = yaml.safe_load(stack["STACK_TEXT"])
    web = document["services"]["web"]
    assert web["environment"]["STRIPE_KEY_FILE"] == "/run/secrets/setting_STRIPE_KEY"
    assert "STRIPE_KEY" not in web["environment"]
    assert {"source": "setting_STRIPE_KEY", "target": "setting_STRIPE_KEY"} in web["secrets"]
    assert document["secrets"]["setting_STRIPE_KEY"] == {"external": True, "name": names[3]}
    assert names[3] in stack["SECRETS_IN_USE"].split()
    # The migration job runs the same settings module: it needs the file too.
    migrate = params(run.named("spring-hackathon-migrate").inputs)
    assert f"source={names[3]},target=setting_STRIPE_KEY" in migrate["SECRET_MOUNTS"].split()
    assert "STRIPE_KEY_FILE=/run/secrets/setting_STRIPE_KEY\n" in migrate["ENV_FILE_TEXT"]
    # The other event has none.
    other = params(run.named("autumn-hackathon-stack").inputs)["STACK_TEXT"]
    assert "STRIPE" not in other
    other_secrets = params(run.named("autumn-hackathon-secrets").inputs)["SECRETS"]
    assert len(other_secrets.split()) == 3


def test_a_new_secret_value_gets_a_new_swarm_secret_and_nothing_else_does(prod_config):
    def names(value: str) -> list[str]:
        run = with_event_secrets(prod_config, value).run()
        return params(run.named("spring-hackathon-secrets").inputs)["SECRETS"].split()

    before, after = names(STRIPE_KEY), names(STRIPE_KEY + "-rotated")
    assert before[:3] == after[:3] and before[3] != after[3]
    assert names(STRIPE_KEY) == before


def test_each_events_admin_login_is_a_secret_output(prod_config: UserConfig):
    run = prod_config.run()
    assert "eventAdmins" in run.secret_exports
    admins = run.exports["eventAdmins"]
    for event in PROD_EVENTS:
        password = run.named(f"{event}-admin-password").outputs["result"]
        assert admins[event] == {
            "url": run.exports["eventUrls"][event] + "admin/",
            "username": "admin",
            "password": password,
        }
        assert len(password) >= 32


def test_site_environment_follows_the_stack_config(prod_config: UserConfig):
    run = prod_config.run()
    stack = params(run.named("spring-hackathon-stack").inputs)
    environment = yaml.safe_load(stack["STACK_TEXT"])["services"]["web"]["environment"]
    assert environment["ALLOWED_HOSTS"] == "ieee.example.org"
    assert environment["PUBLIC_DOMAIN"] == "ieee.example.org"
    assert environment["SECURE_SSL"] == "1"
    assert environment["DB_HOST"] == "172.20.0.1"
    assert environment["GUNICORN_WORKERS"] == "3"
    migrate = params(run.named("spring-hackathon-migrate").inputs)
    assert "GUNICORN_WORKERS=3\n" in migrate["ENV_FILE_TEXT"]
    assert "URL_PREFIX=/spring\n" in migrate["ENV_FILE_TEXT"]
    assert run.exports["eventUrls"] == {
        "spring-hackathon": "https://ieee.example.org/spring/",
        "autumn-hackathon": "https://ieee.example.org/autumn/",
    }


def test_without_a_domain_the_site_answers_to_the_servers_address(existing_config: UserConfig):
    run = existing_config.run()
    stack = params(run.named("event1-stack").inputs)
    environment = yaml.safe_load(stack["STACK_TEXT"])["services"]["web"]["environment"]
    assert environment["ALLOWED_HOSTS"] == "198.51.100.7"
    assert "SECURE_SSL" not in environment
    assert run.exports["eventUrls"]["event2"] == "http://198.51.100.7/event2/"


def test_an_event_alternates_between_its_port_and_the_next_one_which_nginx_both_knows(
    existing_config: UserConfig,
):
    events = [{"name": "event1", "path": "/event1", "port": 24000}, {"name": "e2", "path": "/e2"}]
    run = existing_config.with_(events=events).run()
    stack = params(run.named("event1-stack").inputs)
    assert stack["PORTS"] == "24000 24001"
    # The server's own address on docker_gwbridge (swarmSubnet's first), not 127.0.0.1: the live
    # port first, the other its backup.
    for live, other, text in (
        ("24000", "24001", stack["SERVERS_FIRST"]),
        ("24001", "24000", stack["SERVERS_SECOND"]),
    ):
        assert re.findall(r"server (\S+)", text) == [f"172.20.0.1:{live}", f"172.20.0.1:{other}"]
        assert text.splitlines()[1].endswith(" backup max_fails=0;")
    upstream = params(run.named("event1-nginx").inputs)["UPSTREAM_TEXT"]
    assert f"include {stack['SERVERS_FILE']};" in upstream
    delete = params(run.named("event1-stack").inputs, "delete")
    assert delete["SERVERS_FILE"] == stack["SERVERS_FILE"] == layout.nginx_servers_file("event1")


def test_teardown_removes_everything_but_keeps_the_database(prod_config: UserConfig):
    run = prod_config.run()
    for event in PROD_EVENTS:
        assert run.named(f"{event}-database").inputs.get("delete") is None
        for step, script in (
            ("secrets", "event_secrets_remove.sh"),
            ("network", "event_network_remove.sh"),
            ("stack", "event_stack_remove.sh"),
            ("static", "event_static_remove.sh"),
            ("nginx", "event_nginx_remove.sh"),
        ):
            assert_runs_script(run.named(f"{event}-{step}").inputs, "delete", script)
        assert params(run.named(f"{event}-stack").inputs, "delete")["EVENT"] == event
    assert_runs_script(run.named("app-registry-login").inputs, "delete", "registry_logout.sh")


def test_location_files_are_named_by_path_and_owned_by_their_event(existing_config: UserConfig):
    # Renamed: event2 becomes event2b at the same path; event1 moves to another path.
    events = [{"name": "event1", "path": "/camp/2027"}, {"name": "event2b", "path": "/event2"}]
    run = existing_config.with_(events=events).run()
    files = {}
    for event in ("event1", "event2b"):
        create = params(run.named(f"{event}-nginx").inputs)
        delete = params(run.named(f"{event}-nginx").inputs, "delete")
        # Each file starts with its owner's line, the line by which the scripts find it again.
        assert create["LOCATION_TEXT"].splitlines()[0] == create["OWNER_LINE"]
        assert create["UPSTREAM_TEXT"].splitlines()[0] == create["OWNER_LINE"]
        owner = ("EVENT", "LOCATIONS_DIR", "UPSTREAMS_DIR", "OWNER_LINE")
        assert delete == {k: create[k] for k in owner}
        assert event in create["OWNER_LINE"]
        files[event] = create["FILE_NAME"]
    assert (create["LOCATIONS_DIR"], create["UPSTREAMS_DIR"]) == (
        layout.NGINX_LOCATIONS_DIR,
        layout.NGINX_UPSTREAMS_DIR,
    )
    # The files event2 wrote at /event2: event2b takes them over instead of adding duplicates.
    assert files == {"event1": "camp_2027.conf", "event2b": "event2.conf"}


def test_drop_database_on_delete_is_a_per_event_decision(existing_config: UserConfig):
    events = existing_config.values["events"]
    config = existing_config.with_(events=[events[0] | {"dropDatabaseOnDelete": True}, events[1]])
    run = config.run()
    database = run.named("event1-database").inputs
    assert_runs_script(database, "delete", "event_database_drop.sh")
    assert params(database, "delete") == {"DATABASE": "ev_event1"}
    assert run.named("event2-database").inputs.get("delete") is None
    # The uploaded files go with the database, and stay with it.
    media = run.named("event1-media").inputs
    assert_runs_script(media, "delete", "event_media_remove.sh")
    assert params(media, "delete") == {"MEDIA_DIR": "/var/lib/django-swarm/media/event1"}
    assert run.named("event2-media").inputs.get("delete") is None


def test_each_event_mounts_its_own_media_directory_and_nginx_bounds_its_uploads(existing_config):
    events = existing_config.values["events"]
    run = existing_config.with_(events=[events[0] | {"uploadLimitMb": 64}, events[1]]).run()
    for event, limit in (("event1", 64), ("event2", 20)):
        media_dir = f"/var/lib/django-swarm/media/{event}"
        media = run.named(f"{event}-media")
        assert params(media.inputs) == {"MEDIA_DIR": media_dir, "SITE_UID": "10001"}
        stack = run.named(f"{event}-stack")
        assert media.urn in stack.dependencies
        web = yaml.safe_load(params(stack.inputs)["STACK_TEXT"])["services"]["web"]
        assert web["volumes"] == [{"type": "bind", "source": media_dir, "target": "/srv/media"}]
        assert web["environment"]["MEDIA_ROOT"] == "/srv/media"
        location = params(run.named(f"{event}-nginx").inputs)["LOCATION_TEXT"]
        assert f"alias {media_dir}/;" in location
        assert f"client_max_body_size {limit}m;" in location


def assert_runs_script(inputs, which: str, script: str) -> None:
    assert f": {script} (program " in inputs[which].splitlines()[0], f"{which} names no {script}"
    assert step_program(inputs, which).endswith(script_text(script)), f"does not run {script}"
