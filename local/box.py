"""The box: a Debian 13 server in a container (systemd, sshd, and a registry with a password).

``./deploy.sh --local`` deploys to one box on the user's own Docker engine (the local try-out),
and the rehearsal deploys to one or three: the same code and the same image (box.Dockerfile).
The program reaches a box only over SSH on a port published on 127.0.0.1, with a key kept in the
box's work directory. The box's registry is published on the same loopback port number it
listens on inside, so ``127.0.0.1:<port>/<repo>`` names one image on both sides: the program
pushes from this machine, the box's Docker pulls with ``--with-registry-auth``.
"""

from __future__ import annotations

import functools
import io
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

BOX_DIR = Path(__file__).resolve().parent
BOX_IMAGE = "django-swarm/box:trixie"
# Debian 13 from Docker Hub, or the one tests/setup_machine.sh makes with debootstrap where
# Docker Hub cannot be reached (the test machines): the box builds on the second if it is there.
HUB_DEBIAN = "debian:trixie"
LOCAL_DEBIAN = "django-swarm/debian:trixie"

# What a systemd box needs without --privileged (which fails on some engines: one capability is
# missing from the bounding set). Everything usual but SYS_RESOURCE, PERFMON, BPF,
# CHECKPOINT_RESTORE.
CAPABILITIES = [
    *("SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_MODULE", "SYS_NICE", "SYS_TIME"),
    *("IPC_LOCK", "MKNOD", "AUDIT_CONTROL", "AUDIT_READ", "DAC_READ_SEARCH", "LINUX_IMMUTABLE"),
    *("SYSLOG", "NET_BROADCAST", "SYS_RAWIO", "SYS_BOOT", "LEASE", "WAKE_ALARM", "BLOCK_SUSPEND"),
    *("MAC_ADMIN", "MAC_OVERRIDE", "SYS_PACCT", "SYS_TTY_CONFIG", "IPC_OWNER"),
]

# The box's own cgroup, from inside it (cgroup v1's memory line, or v2's one line): systemd, PID 1,
# moved itself into init.scope below it.
OWN_CGROUP = (
    'awk -F: \'$2 == "memory" || $2 == "" {sub("/init\\\\.scope$", "", $3); print $3; exit}\''
    " /proc/1/cgroup"
)


def docker(*args: str, input_: str | None = None, check: bool = True) -> str:
    """Run the machine's docker CLI; a failure raises with its output."""
    done = subprocess.run(["docker", *args], input=input_, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def box_base() -> str:
    return LOCAL_DEBIAN if image_exists(LOCAL_DEBIAN) else HUB_DEBIAN


def build_box_image(base: str | None = None) -> None:
    """The box image, FROM ``base`` (:func:`box_base` by default; kept as Docker's build cache
    keeps it)."""
    docker(
        "build", "-q", "-t", BOX_IMAGE, "--build-arg", f"BASE={base or box_base()}",
        "-f", str(BOX_DIR / "box.Dockerfile"), str(BOX_DIR),
    )  # fmt: skip


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_private_key(text: str) -> paramiko.PKey:
    """A paramiko key from OpenSSH/PEM text, whatever its algorithm."""
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.SSHException:
            continue
    raise ValueError("unsupported private key (expected ED25519, ECDSA or RSA)")


@dataclass
class CommandResult:
    status: int
    stdout: str
    stderr: str


def ssh_run(
    port: int, private_key: str, command: str, stdin: str | None = None, timeout: float = 600
) -> CommandResult:
    """``command`` as root on a box (sshd on 127.0.0.1:``port``), any host key accepted: the
    test's own look at the box, beside what the program does."""
    client = paramiko.SSHClient()
    # The box's keys change on purpose (story 3b); the program's own steps check theirs.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507
    client.connect(
        "127.0.0.1",
        port=port,
        username="root",
        pkey=load_private_key(private_key),
        allow_agent=False,
        look_for_keys=False,
        timeout=30,
    )
    try:
        channel = client.get_transport().open_session()
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin.encode())
        channel.shutdown_write()
        # Both streams at once: a command that fills one pipe while the other is read would hang.
        out, err = io.BytesIO(), io.BytesIO()
        while True:
            if channel.recv_ready():
                out.write(channel.recv(65536))
            elif channel.recv_stderr_ready():
                err.write(channel.recv_stderr(65536))
            elif channel.exit_status_ready() and (channel.eof_received or channel.closed):
                # sshd may report the exit status before the last output: the end of the output
                # is its EOF (or the channel's close).
                break
            else:
                time.sleep(0.05)
        while channel.recv_ready():
            out.write(channel.recv(65536))
        while channel.recv_stderr_ready():
            err.write(channel.recv_stderr(65536))
        return CommandResult(
            channel.recv_exit_status(),
            out.getvalue().decode(errors="replace"),
            err.getvalue().decode(errors="replace"),
        )
    finally:
        client.close()


class BoxNetwork:
    """A Docker network of our own that boxes share, as droplets share their VPC."""

    def __init__(self) -> None:
        self.name = f"rehearsal-net-{uuid.uuid4().hex[:8]}"
        # A /24 no other network of this machine uses (the boxes' own Docker takes 10.0.0.0/8
        # for its overlay networks and 172.17-172.20 for its bridges).
        taken = set(docker("network", "inspect", "--format",
                           "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
                           *docker("network", "ls", "-q").split()).split())  # fmt: skip
        third = next(n for n in range(200, 255) if f"192.168.{n}.0/24" not in taken)
        self.prefix = f"192.168.{third}"
        docker("network", "create", "--subnet", f"{self.prefix}.0/24", self.name)

    def address(self, host: int) -> str:
        return f"{self.prefix}.{host}"

    def remove(self) -> None:
        docker("network", "rm", self.name, check=False)


class Box:
    """One running box. ``start()`` boots it; ``remove()`` deletes it and its Docker volume.

    On a ``network`` of our own it has the fixed ``address``. A worker box logs in with the key
    of the box it works for (``key_of``, as droplets share the deploy key) and reaches that box's
    registry at the same name, 127.0.0.1:<port> (as every droplet reaches the real registry).
    """

    def __init__(
        self,
        workdir: Path,
        registry_user: str,
        registry_password: str,
        network: BoxNetwork | None = None,
        address: str | None = None,
        key_of: Box | None = None,
        hostname: str = "rehearsal-box",
        name: str | None = None,
        ports: tuple[int, int, int] | None = None,
        memory: str | None = None,
    ):
        """``ports``: SSH, HTTP and the registry's on 127.0.0.1 (by default free ones). The
        private key is ``workdir/id_ed25519``, made there if it is not there yet. ``memory``
        (like ``1g``): the box's whole memory, every process of it and of its containers, with no
        swap (a droplet has none)."""
        self.name = name or f"rehearsal-box-{uuid.uuid4().hex[:8]}"
        self.network, self.address, self.hostname = network, address, hostname
        self.manager = key_of
        self.memory = memory
        self.volume = f"{self.name}-docker"
        self.workdir = workdir
        self.registry_user = registry_user
        self.registry_password = registry_password
        # Fixed host ports (not ephemeral ones) so that they survive `docker restart` and the
        # stack config's sshPort stays right.
        self.ssh_port, self.http_port, self.registry_port = ports or (
            free_loopback_port(),
            free_loopback_port(),
            key_of.registry_port if key_of else free_loopback_port(),
        )
        key_file = workdir / "id_ed25519"
        if key_of:
            self.private_key = key_of.private_key
        elif key_file.exists():
            self.private_key = key_file.read_text()
        else:
            self.private_key = (
                ed25519.Ed25519PrivateKey.generate()
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.OpenSSH,
                    serialization.NoEncryption(),
                )
                .decode()
            )
        key_file.touch(mode=0o600)
        key_file.write_text(self.private_key)
        self.public_key = (
            serialization.load_ssh_private_key(self.private_key.encode(), None)
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )

    @property
    def registry_server(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    def start(self) -> None:
        caps = [arg for cap in CAPABILITIES for arg in ("--cap-add", cap)]
        network = ["--network", self.network.name, "--ip", self.address] if self.network else []
        # A worker's registry port is its manager's, published there.
        registry = (
            [] if self.manager else ["-p", f"127.0.0.1:{self.registry_port}:{self.registry_port}"]
        )
        memory = ["--memory", self.memory, "--memory-swap", self.memory] if self.memory else []
        docker(
            "run", "-d", "--name", self.name, "--hostname", self.hostname,
            *caps, *network, *memory,
            "--security-opt", "seccomp=unconfined",
            "--security-opt", "apparmor=unconfined",
            "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs", "/run", "--tmpfs", "/run/lock",
            # The box's own dockerd needs a real filesystem (overlay2 works on a volume, not
            # on the outer engine's layers, vfs or overlay).
            "-v", f"{self.volume}:/var/lib/docker",
            "-p", f"127.0.0.1:{self.ssh_port}:22", "-p", f"127.0.0.1:{self.http_port}:80",
            *registry,
            BOX_IMAGE,
        )  # fmt: skip
        self._configure()
        self.wait_ready()

    def _configure(self) -> None:
        """What the cloud provider does for a droplet (the root key) plus the test registry."""
        self.wait_for("systemctl is-system-running --wait", timeout=120, accept_degraded=True)
        self.exec(
            "install -d -m 700 /root/.ssh && cat >/root/.ssh/authorized_keys "
            "&& chmod 600 /root/.ssh/authorized_keys",
            input_=self.public_key + "\n",
        )
        if self.memory:
            self._contain_containers()
        if self.manager:
            self._forward_registry()
            return
        htpasswd = bcrypt.hashpw(self.registry_password.encode(), bcrypt.gensalt()).decode()
        self.exec(
            "cat >/etc/docker/registry/htpasswd && chmod 640 /etc/docker/registry/htpasswd "
            "&& chgrp docker-registry /etc/docker/registry/htpasswd",
            input_=f"{self.registry_user}:{htpasswd}\n",
        )
        self.exec(
            f"sed -i 's/^  addr: .*/  addr: :{self.registry_port}/' /etc/docker/registry/config.yml"
            " && systemctl restart docker-registry"
        )
        if self.memory:
            # The registry stands in for the remote one (GHCR) a droplet pulls from: neither it
            # nor the image layers it writes and reads count against the box's memory.
            self.exec(
                "echo $(systemctl show -p MainPID --value docker-registry)"
                f' >"$(dirname {self.memory_cgroup})/cgroup.procs"'
            )

    def _contain_containers(self) -> None:
        """Keep the containers of the box's own Docker within the box's memory.

        The box shares this machine's cgroup tree (``--cgroupns=host``), and a Docker engine that
        uses cgroupfs (on cgroup v1) puts each container in ``/docker/<id>`` of that tree: beside
        the box, out of its limit. On a droplet, Docker uses systemd's cgroups (cgroup v2), under
        the machine. So the box's engine, once the program installs it, makes them under the
        box's own cgroup (test box only, like the drop-in of box.Dockerfile).
        """
        self.exec(
            f"box=$({OWN_CGROUP})"
            ' && install -d /etc/docker && printf \'{"cgroup-parent": "%s/docker"}\\n\' "$box"'
            " >/etc/docker/daemon.json"
        )

    @functools.cached_property
    def memory_cgroup(self) -> str:
        """The box's memory cgroup directory (cgroup v1 or v2), as seen from inside it."""
        return self.exec(
            f"path=$({OWN_CGROUP})"
            ' && if [ -d /sys/fs/cgroup/memory ]; then echo "/sys/fs/cgroup/memory$path";'
            ' else echo "/sys/fs/cgroup$path"; fi'
        ).strip()

    def _forward_registry(self) -> None:
        """127.0.0.1:<port> forwarded to the manager box's registry (systemd's own proxy)."""
        port, target = self.registry_port, f"{self.manager.address}:{self.registry_port}"
        self.exec(
            "cat >/etc/systemd/system/rehearsal-registry.socket <<EOF\n"
            f"[Socket]\nListenStream=127.0.0.1:{port}\n[Install]\nWantedBy=sockets.target\nEOF\n"
            "cat >/etc/systemd/system/rehearsal-registry.service <<EOF\n"
            f"[Service]\nExecStart=/usr/lib/systemd/systemd-socket-proxyd {target}\nEOF\n"
            "systemctl daemon-reload && systemctl disable --now -q docker-registry"
            " && systemctl enable --now -q rehearsal-registry.socket"
        )

    def exec(self, command: str, input_: str | None = None) -> str:
        """A root shell command through ``docker exec`` (box set-up and inspection only)."""
        return docker("exec", "-i", self.name, "bash", "-c", command, input_=input_)

    def exec_detached(self, command: str) -> None:
        """A root shell command left running in the box (until it exits or the box restarts)."""
        docker("exec", "-d", self.name, "bash", "-c", command)

    def wait_for(self, command: str, timeout: float, accept_degraded: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while True:
            done = subprocess.run(
                ["docker", "exec", self.name, "bash", "-c", command], capture_output=True, text=True
            )
            if done.returncode == 0 or (accept_degraded and "degraded" in done.stdout):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"box: {command!r} did not succeed: {done.stdout}{done.stderr}")
            time.sleep(1)

    def wait_ready(self, timeout: float = 120) -> None:
        """Until sshd answers with our key and the registry answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                registry = "rehearsal-registry.socket" if self.manager else "docker-registry"
                if self.ssh(f"systemctl is-active ssh {registry}").status == 0:
                    return
            except (OSError, paramiko.SSHException):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"box {self.name}: sshd or the registry did not come up")
            time.sleep(1)

    def ssh(self, command: str, stdin: str | None = None, timeout: float = 600) -> CommandResult:
        return ssh_run(self.ssh_port, self.private_key, command, stdin, timeout)

    def check(self, command: str) -> str:
        """Stdout of ``command`` over SSH; a non-zero exit raises with its output."""
        result = self.ssh(command)
        if result.status != 0:
            raise AssertionError(f"box: {command!r} exited {result.status}: {result.stderr}")
        return result.stdout

    def reboot(self) -> None:
        """``docker restart``: every process stops, /run is emptied, disks stay."""
        docker("restart", "-t", "30", self.name)
        self.wait_ready(timeout=180)

    def remove(self) -> None:
        """The box, its Docker volume, and this machine's copies of what was pushed to it."""
        docker("rm", "-f", "-v", self.name, check=False)
        docker("volume", "rm", "-f", self.volume, check=False)
        if self.manager:
            return
        names = docker("images", "--format", "{{.Repository}}:{{.Tag}}").split()
        pushed = [
            name
            for name in names
            if name.startswith(self.registry_server + "/") and not name.endswith(":<none>")
        ]
        if pushed:
            docker("rmi", "-f", *pushed, check=False)
