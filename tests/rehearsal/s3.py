"""A real S3-compatible server (moto) in a container, for the rehearsal's backups.

The box is a container on Docker's default bridge, so it reaches the server at the server's bridge
IP (:attr:`S3Server.endpoint_for_containers`); this machine reaches it on a port published on
127.0.0.1 only (:attr:`S3Server.endpoint_on_loopback`), never on 0.0.0.0. Moto accepts any
credentials and does not check signatures, so the host side reads it with plain unsigned HTTP
and the tests need no AWS SDK.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

from local.box import docker, free_loopback_port, image_exists
from tests.images.images import build_base_images

MOTO_VERSION = "5.2.5"
S3_IMAGE = f"rehearsal/s3:moto-{MOTO_VERSION}"
PYTHON_BASE_IMAGE = "django-swarm/python-base:trixie"
S3_PORT = 5000
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

# The base image has python3 and venv but no pip: moto goes into its own venv. Pinned so that a
# new moto release cannot change what the rehearsal's backups are tested against.
DOCKERFILE = f"""\
FROM {PYTHON_BASE_IMAGE}
RUN python3 -m venv /opt/moto \\
    && /opt/moto/bin/pip install --no-cache-dir --disable-pip-version-check \\
       'moto[server]=={MOTO_VERSION}' \\
    && useradd --system --no-create-home --shell /usr/sbin/nologin moto
USER moto
EXPOSE {S3_PORT}
CMD ["/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", "{S3_PORT}"]
"""


def build_image() -> None:
    """Build the server's image once; later runs reuse it (the pip install takes a while)."""
    if image_exists(S3_IMAGE):
        return
    # Makes the base images if this machine has none yet; keeps them if it has.
    build_base_images()
    docker("build", "-q", "-t", S3_IMAGE, "-", input_=DOCKERFILE)


class S3Server:
    """One moto server container, named ``rehearsal-s3-<8 hex>`` so a leftover is recognisable."""

    def __init__(self) -> None:
        self.name = f"rehearsal-s3-{uuid.uuid4().hex[:8]}"
        self.port = 0
        self.ip = ""

    def start(self) -> None:
        """Run the container on the default bridge, published on loopback only."""
        build_image()
        self.port = free_loopback_port()
        docker(
            *("run", "-d", "--name", self.name),
            *("-p", f"127.0.0.1:{self.port}:{S3_PORT}"),
            S3_IMAGE,
        )
        self.ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", self.name).strip()
        if not self.ip:
            raise RuntimeError(f"{self.name} has no IP address on the default bridge")

    @property
    def endpoint_for_containers(self) -> str:
        """What the box (or any container on the default bridge) uses: the server's bridge IP."""
        return f"http://{self.ip}:{S3_PORT}"

    @property
    def endpoint_on_loopback(self) -> str:
        """What this machine uses: the port published on 127.0.0.1."""
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until moto answers HTTP at all (an S3 error reply counts: the server is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.endpoint_on_loopback + "/", timeout=5):  # noqa: S310
                    return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        logs = subprocess.run(
            ["docker", "logs", "--tail", "50", self.name],
            capture_output=True,
            text=True,
        )
        raise TimeoutError(
            f"{self.name} did not answer on {self.endpoint_on_loopback} within {timeout:.0f}s;"
            f" its logs:\n{logs.stdout}{logs.stderr}"
        )

    def bucket_size(self, bucket: str) -> int:
        """Total bytes of the bucket's objects, from ListObjectsV2 pages (unsigned, as above)."""
        total, token = 0, ""
        while True:
            query = {"list-type": "2", **({"continuation-token": token} if token else {})}
            url = f"{self.endpoint_on_loopback}/{urllib.parse.quote(bucket)}"
            with urllib.request.urlopen(  # noqa: S310
                f"{url}?{urllib.parse.urlencode(query)}", timeout=10
            ) as reply:
                root = ET.fromstring(reply.read())  # noqa: S314 (our own local server)
            total += sum(int(s.text or 0) for s in root.iter(f"{S3_NS}Size"))
            token = root.findtext(f"{S3_NS}NextContinuationToken") or ""
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return total

    def remove(self) -> None:
        """Remove the container (and with it every object: moto keeps them in memory)."""
        docker("rm", "-f", self.name, check=False)
