"""A tiny program that exercises every resource type the replay engine executes.

The engine's own tests point ``tests.harness.INFRA_DIR`` here; the stack config names the box.
"""

import base64

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls
from pulumi_command import remote

config = pulumi.Config()
connection = remote.ConnectionArgs(
    host=config.require("host"),
    port=config.require_int("sshPort"),
    user="root",
    private_key=config.require_secret("sshPrivateKey"),
)
password = random.RandomPassword("toy-password", length=24, override_special="'\"$ `\\")
key = tls.PrivateKey("toy-key", algorithm="ED25519")

# The secret travels on stdin only; the create text carries the non-secret label.
label = config.get("label") or "first"
secret_file = remote.Command(
    "toy-secret-file",
    connection=connection,
    create=f"install -d /root/toy && base64 -d >/root/toy/secret && echo {label} >/root/toy/label",
    update=f"base64 -d >/root/toy/secret && echo {label} >/root/toy/label && echo updated",
    delete="rm -rf /root/toy",
    stdin=pulumi.Output.secret(
        password.result.apply(lambda p: base64.b64encode(p.encode()).decode())
    ),
    logging="none",
)
log = remote.Command(
    "toy-log",
    connection=connection,
    create="echo create >>/root/toy-log",
    delete="echo delete >>/root/toy-log",
    triggers=[config.get("trigger") or "one"],
    opts=pulumi.ResourceOptions(depends_on=[secret_file]),
)
copy = remote.CopyToRemote(
    "toy-copy",
    connection=connection,
    source=pulumi.FileAsset(str(__file__)),
    remote_path="/root/toy/program.py",
    opts=pulumi.ResourceOptions(depends_on=[secret_file]),
)
registry = config.require_object("registry")
image = docker.Image(
    "toy-image",
    image_name=f"{registry['server']}/{registry['repository']}:latest",
    build=docker.DockerBuildArgs(
        context="tests/rehearsal/toy_program/image",
        args={"GREETING": config.get("greeting") or "hello"},
    ),
    registry=docker.RegistryArgs(
        server=registry["server"],
        username=registry["username"],
        password=config.require_secret("registryPassword"),
    ),
)
if config.get_bool("withExtra"):
    extra = remote.Command(
        "toy-extra",
        connection=connection,
        create="touch /root/toy-extra",
        delete="rm /root/toy-extra",
        opts=pulumi.ResourceOptions(depends_on=[log]),
    )
if config.get_bool("withFailure"):
    remote.Command(
        "toy-failing",
        connection=connection,
        create="echo 'toy: the disk is full' >&2; exit 3",
        opts=pulumi.ResourceOptions(depends_on=[log]),
    )
if config.get_bool("withUnknownType"):
    random.RandomPet("toy-pet")

pulumi.export("digest", image.repo_digest)
pulumi.export("publicKey", key.public_key_openssh)
pulumi.export("passwordLength", password.result.apply(len))
