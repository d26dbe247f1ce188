"""The deploy command behind ``./deploy.sh``: preview, confirm, ``pulumi up``, the sites' addresses.

deploy.sh makes ``.venv`` and runs this with it. It drives the ``pulumi`` CLI's engine through the
Automation API with the program inline (``run_program``: what Pulumi's Python language host does
with ``main: infra/``), so the engine's own progress is what the user reads. Plain ``pulumi up``
in the project root runs the same program and stays supported (the GitHub workflows use it).

The state is a local file backend (``~/.django-swarm/state``) unless ``PULUMI_BACKEND_URL``
names another one; the user's own default backend (``pulumi login``) is never changed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import runpy
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from pulumi import automation as auto

import config

PROJECT_DIR = Path(__file__).resolve().parent.parent
INFRA_DIR = PROJECT_DIR / "infra"
# The local try-out's box (local/) is a package of the project root, beside this program.
sys.path.insert(1, str(PROJECT_DIR))
from local.tryout import STACK as LOCAL_STACK  # noqa: E402
from local.tryout import LocalTryout, TryoutError  # noqa: E402

# Pulumi.yaml's name, which is also the namespace of the stack's config keys.
PROJECT = config.NAMESPACE
# The provider plugins the program uses, pinned by their SDKs' versions in requirements.txt.
PLUGIN_PACKAGES = {
    "pulumi-command": "command",
    "pulumi-digitalocean": "digitalocean",
    "pulumi-docker": "docker",
    "pulumi-random": "random",
    "pulumi-tls": "tls",
}


class DeployError(Exception):
    """What stops the deploy before the engine runs: the message says what to do."""


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def run_program() -> None:
    """What the language host does with the project's ``main: infra/``: run the directory as
    ``__main__``, in it. The engine takes a ``main`` that is a directory as the program's working
    directory, and starts the plugins there too (pulumi/pulumi ``pkg/engine/project.go``,
    ``getPwdMain``), so a relative path the program hands a plugin is read from the same place."""
    # The caller's working directory comes back after (the program runs in this process).
    before = os.getcwd()
    os.chdir(INFRA_DIR)
    try:
        runpy.run_path(str(INFRA_DIR), run_name="__main__")
    finally:
        os.chdir(before)


def pinned_plugins(requirements: str, target: str) -> dict[str, str]:
    """name -> version of the provider plugins ``requirements`` pins that ``target`` uses (the
    DigitalOcean provider only for a droplet)."""
    pins = dict(re.findall(r"^([a-z-]+)==([0-9][^\s;#]*)", requirements, re.MULTILINE))
    return {
        plugin: pins[package]
        for package, plugin in PLUGIN_PACKAGES.items()
        if package in pins and (plugin != "digitalocean" or target == "digitalocean")
    }


def state_environment(environ: Mapping[str, str], home: Path) -> Iterator[tuple[str, str]]:
    """The backend: ``PULUMI_BACKEND_URL`` as given, or a private local directory."""
    if environ.get("PULUMI_BACKEND_URL"):
        return
    state_dir = Path(environ.get("DJANGO_SWARM_STATE_DIR") or home / ".django-swarm" / "state")
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    log(f"State kept in {state_dir} (back it up: it is what lets Pulumi update and destroy)")
    yield "PULUMI_BACKEND_URL", f"file://{state_dir}"


def passphrase_environment(environ: Mapping[str, str], stack: str) -> Iterator[tuple[str, str]]:
    """The stack's passphrase from the environment, or asked on the terminal (the engine runs
    without one)."""
    if environ.get("PULUMI_CONFIG_PASSPHRASE") or environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return
    if not sys.stdin.isatty():
        raise DeployError(
            "PULUMI_CONFIG_PASSPHRASE is not set, and there is no terminal to ask for it:\n"
            f"  export PULUMI_CONFIG_PASSPHRASE='the passphrase of stack {stack}'"
            " (or PULUMI_CONFIG_PASSPHRASE_FILE)"
        )
    yield "PULUMI_CONFIG_PASSPHRASE", getpass.getpass(f"Passphrase of stack {stack}: ")


def pulumi_cli(stack: auto.Stack, *args: str, input_: str | None = None) -> str:
    """``pulumi ARGS --stack <stack>`` in the stack's workspace, with its environment (a secret
    goes on stdin, never on the command line)."""
    done = subprocess.run(
        ["pulumi", *args, "--stack", stack.name, "--non-interactive"],
        cwd=stack.workspace.work_dir,
        env={**os.environ, **stack.workspace.env_vars},
        input=input_,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DeployError(f"pulumi {args[0]} {args[1]} failed: {done.stderr.strip()}")
    return done.stdout


def config_keys(stack: auto.Stack) -> dict[str, object]:
    """The stack's config as ``pulumi config --json`` lists it: keys, and secrets unread."""
    return json.loads(pulumi_cli(stack, "config", "--json"))


def config_value(keys: Mapping[str, object], key: str, default: str) -> str:
    """A plain value of ``pulumi config --json``'s listing, as text."""
    entry = keys.get(f"{PROJECT}:{key}")
    value = entry.get("value") if isinstance(entry, dict) else None
    return default if value is None else str(value)


def check_credentials(
    stack: auto.Stack, environ: Mapping[str, str]
) -> tuple[str, dict[str, object]]:
    """The stack's target and its config listing, once the credentials it needs are there."""
    keys = config_keys(stack)
    target = config_value(keys, "target", "digitalocean")
    if target == "digitalocean" and not environ.get("DIGITALOCEAN_TOKEN"):
        raise DeployError(
            "DIGITALOCEAN_TOKEN is not set: create a token with write scope in the DigitalOcean\n"
            "control panel (API -> Tokens) and run: export DIGITALOCEAN_TOKEN=<token>"
        )
    if f"{PROJECT}:registryPassword" not in keys:
        raise DeployError(
            "registryPassword is not set: run\n"
            f"  pulumi config set --secret registryPassword --stack {stack.name}\n"
            "and paste a registry token (GHCR: a GitHub token with write:packages)"
        )
    return target, keys


def install_missing_plugins(workspace: auto.Workspace, plugins: Mapping[str, str]) -> None:
    installed = {(p.name, p.version) for p in workspace.list_plugins() if p.kind == "resource"}
    for name, version in sorted(plugins.items()):
        if (name, version) not in installed:
            log(f"Installing the {name} plugin {version} (pinned in requirements.txt)")
            try:
                workspace.install_plugin(name, f"v{version}")
            except auto.errors.CommandError as error:
                raise DeployError(f"pulumi could not install the {name} plugin:{error}") from None


def confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        raise DeployError(
            "there is no terminal to ask whether to go on: run it again with --yes to go on"
            " without asking"
        )
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def print_sites(stack: auto.Stack, outputs: Mapping[str, auto.OutputValue]) -> None:
    log("Your sites")
    urls = outputs["eventUrls"].value if "eventUrls" in outputs else {}
    for event, url in sorted((urls or {}).items()):
        print(f"  {event}: {url}")
    print(
        "Each event's admin login: pulumi stack output eventAdmins --show-secrets"
        f" --stack {stack.name}"
    )


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./deploy.sh",
        description="Preview, confirm and deploy (or tear down) the stack STACK (default prod).",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="go on without asking")
    parser.add_argument(
        "--destroy", action="store_true",
        help="take everything down but the data (docs/how-to.md, \"Tear down\")",
    )  # fmt: skip
    parser.add_argument(
        "--local", action="store_true",
        help="deploy stack local to a box on this machine's Docker engine (with --destroy:"
        " remove the box and everything of it)",
    )  # fmt: skip
    parser.add_argument(
        "--replace", action="append", default=[], metavar="URN",
        help="run this resource's step again (as pulumi up --replace)",
    )  # fmt: skip
    parser.add_argument(
        "--target", action="append", default=[], metavar="URN",
        help="change only this resource (as pulumi up --target)",
    )  # fmt: skip
    return parser.parse_args(argv)


def prepare_engine(stack: auto.Stack, environ: Mapping[str, str]) -> tuple[str, dict[str, object]]:
    """The stack's target and config listing, once its credentials are there and the plugins
    requirements.txt pins for that target are installed."""
    target, keys = check_credentials(stack, environ)
    plugins = pinned_plugins((PROJECT_DIR / "requirements.txt").read_text(), target)
    install_missing_plugins(stack.workspace, plugins)
    return target, keys


def open_stack(name: str, work_dir: Path, env: Mapping[str, str]) -> auto.Stack:
    try:
        return auto.create_or_select_stack(
            stack_name=name,
            project_name=PROJECT,
            program=run_program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(work_dir), env_vars=dict(env), secrets_provider="passphrase"
            ),
        )
    except auto.errors.CommandError as error:
        # Nothing was printed yet: the CLI's own words (a wrong passphrase, an unreachable
        # backend) are the message.
        raise DeployError(f"pulumi could not open stack {name}:{error}") from None


def deploy(argv: list[str], environ: Mapping[str, str]) -> None:
    arguments = parse_arguments(argv)
    if arguments.local:
        deploy_local(arguments)
        return
    stack_name = environ.get("STACK") or "prod"
    if not (PROJECT_DIR / f"Pulumi.{stack_name}.yaml").is_file():
        raise DeployError(
            f"no Pulumi.{stack_name}.yaml here: copy Pulumi.prod.yaml to it, or set STACK=prod"
        )
    env = dict(state_environment(environ, Path.home()))
    env.update(passphrase_environment(environ, stack_name))
    stack = open_stack(stack_name, PROJECT_DIR, env)
    target, keys = prepare_engine(stack, {**environ, **env})

    if arguments.destroy:
        tear_down(stack, target, keys, arguments.yes)
        return
    options = {
        "replace": arguments.replace or None,
        "target": arguments.target or None,
        **ENGINE_OUTPUT,
    }
    if not arguments.yes:
        log(f"Preview of stack {stack_name}")
        if not changes(stack.preview(**options).change_summary):
            log("Nothing to change: the sites are as the config and the code say")
            print_sites(stack, stack.outputs())
            return
        if not confirmed("Deploy these changes?"):
            raise DeployError("nothing was changed")
    log(f"Deploying stack {stack_name}")
    result = stack.up(**options)
    log(summary_line("Changed", result))
    print_sites(stack, result.outputs)


def deploy_local(arguments: argparse.Namespace) -> None:
    """The stack ``local`` on a box on this machine (local/tryout.py): no question asked, since
    it changes nothing but the box; ``--destroy`` removes the box and everything of it."""
    tryout = LocalTryout(PROJECT_DIR, PROJECT)
    if arguments.destroy:
        # The box holds everything the stack made, and .local/ the stack itself.
        tryout.remove(log)
        log("The local try-out is gone: its box, volume, images and stack")
        return
    box = tryout.start_box(log)
    missing_secrets = tryout.write_workspace(PROJECT_DIR / "Pulumi.yaml")
    stack = open_stack(LOCAL_STACK, tryout.work_dir, tryout.environment())
    for key in missing_secrets:
        pulumi_cli(stack, "config", "set", "--secret", key, input_=tryout.secret_value(key, box))
    prepare_engine(stack, {})
    log(f"Deploying stack {LOCAL_STACK} to the box")
    result = stack.up(
        replace=arguments.replace or None, target=arguments.target or None, **ENGINE_OUTPUT
    )
    log(
        summary_line(
            "Changed",
            result,
            "Nothing changed: the local sites are as Pulumi.local.yaml and the code say",
        )
    )
    log("Your sites, on this machine")
    for event, url in sorted(tryout.site_urls(result.outputs["eventUrls"].value).items()):
        print(f"  {event}: {url}")
    logins = tryout.save_admin_logins(result.outputs["eventAdmins"].value)
    print(f"Each event's admin login (readable by you only): cat {logins}")


def tear_down(stack: auto.Stack, target: str, keys: Mapping[str, object], yes: bool) -> None:
    """Everything but the data, as docs/how-to.md ("Tear down an event, or everything") says:
    what is protected stays (a droplet's PostgreSQL volume, restic's password). A droplet is
    protected too, so that no config change replaces it: its protection is lifted here, once
    the question is answered."""
    log(f"Preview of tearing down stack {stack.name}")
    planned = changes(stack.preview_destroy(exclude_protected=True, **ENGINE_OUTPUT).change_summary)
    droplet = stack.outputs().get("dropletUrn") if target == "digitalocean" else None
    if not planned and not droplet:
        log("Nothing to tear down")
        return
    if droplet:
        log("The droplet goes too: its protection is lifted once you confirm")
    kept = data_kept(target, keys)
    log(f"Kept: {kept}" if kept else f"WARNING: {DATA_LOST}")
    if not yes and not confirmed("Tear all this down?"):
        raise DeployError("nothing was changed")
    if droplet:
        pulumi_cli(stack, "state", "unprotect", droplet.value, "--yes")
    log(f"Tearing down stack {stack.name}")
    result = stack.destroy(exclude_protected=True, **ENGINE_OUTPUT)
    log(summary_line("Deleted", result))
    log(
        "restic's password stays in the stack, so that the backups stay readable: pulumi stack"
        f" output resticPassword --show-secrets --stack {stack.name}"
    )


DATA_LOST = (
    "postgresVolumeGb is 0: every event's database and uploaded files are on the droplet's own"
    ' disk and go with it; to keep them, take them first (docs/how-to.md, "Move to a new'
    ' droplet")'
)


def data_kept(target: str, keys: Mapping[str, object]) -> str | None:
    """What a teardown keeps of the events' data, or None where it goes."""
    if target != "digitalocean":
        return "every event's database and uploaded files, on your server"
    if config_value(keys, "postgresVolumeGb", str(config.DEFAULT_POSTGRES_VOLUME_GB)) != "0":
        return "the PostgreSQL volume, with every event's database and uploaded files"
    return None


def changes(summary: Mapping[str, int]) -> dict[str, int]:
    """An engine summary's counts of resources changed, by operation."""
    return {op: count for op, count in sorted(summary.items()) if op != "same" and count}


def summary_line(
    label: str, result: auto.UpResult | auto.DestroyResult, unchanged: str = "Nothing changed"
) -> str:
    """``<label>: create 2, update 3`` from an engine run's summary, or ``unchanged``."""
    done = changes(result.summary.resource_changes or {})
    if not done:
        return unchanged
    return f"{label}: " + ", ".join(f"{op} {count}" for op, count in done.items())


def print_error(text: str) -> None:
    print(text, file=sys.stderr)


# The engine's own progress and messages, as `pulumi up` prints them.
ENGINE_OUTPUT = {"on_output": print, "on_error": print_error}


def main() -> int:
    try:
        deploy(sys.argv[1:], os.environ)
    except (DeployError, TryoutError) as error:
        print(f"deploy.sh: {error}", file=sys.stderr)
        return 1
    except auto.errors.CommandError:
        # The engine printed what failed, step by step, above.
        print("deploy.sh: pulumi failed: its messages are above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
