"""The rendered Nginx site (render_host.nginx_site) under a real nginx, on loopback ports.

The site is served as rendered, except for what must move for a test: its listen ports (to free
loopback ports), its locations, upstreams and servers directories (to temp directories with the
given files) and, with TLS, its certificate (a self-signed one for the domain).
"""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Mapping
from pathlib import Path

from conftest import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import layout


def self_signed(directory: Path, domain: str) -> None:
    """fullchain.pem and privkey.pem for ``domain`` in ``directory``, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class RealNginx:
    """``site`` with ``locations``, ``upstreams`` and ``servers`` (event name -> file text),
    served until stop()."""

    def __init__(
        self,
        tmp: Path,
        site: str,
        locations: Mapping[str, str],
        upstreams: Mapping[str, str] | None = None,
        servers: Mapping[str, str] | None = None,
        domain: str | None = None,
    ):
        dirs = {"locations": layout.NGINX_LOCATIONS_DIR, "upstreams": layout.NGINX_UPSTREAMS_DIR}
        if "listen 80 " not in site or any(f"{d}/*.conf" not in site for d in dirs.values()):
            raise ValueError("the site no longer listens on 80 or includes the events' files")
        self.http_port, self.https_port = free_port(), free_port()
        site = site.replace("listen 80 ", f"listen 127.0.0.1:{self.http_port} ").replace(
            "listen 443 ", f"listen 127.0.0.1:{self.https_port} "
        )
        # Upstream files name their servers files by their place on the server.
        upstreams = {
            event: text.replace(f"{layout.NGINX_SERVERS_DIR}/", f"{tmp / 'servers'}/")
            for event, text in (upstreams or {}).items()
        }
        # An event's manager-only upstream has the same servers unless a test says otherwise.
        servers = {
            **{f"{e}.manager": text for e, text in (servers or {}).items()},
            **(servers or {}),
        }
        for name, files in (
            ("locations", locations),
            ("upstreams", upstreams),
            ("servers", servers),
        ):
            (tmp / name).mkdir()
            for event, text in files.items():
                (tmp / name / f"{event}.conf").write_text(text)
            if name in dirs:
                site = site.replace(f"{dirs[name]}/", f"{tmp / name}/")
        if domain:
            certs = tmp / "certs"
            certs.mkdir()
            self_signed(certs, domain)
            site = site.replace(f"/etc/letsencrypt/live/{domain}", str(certs))
        (tmp / "site.conf").write_text(site)
        temp_paths = "\n".join(
            f"    {kind}_temp_path {tmp}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # Workers run as root: pytest's temporary directories (static files) are private to it.
        (tmp / "nginx.conf").write_text(
            f"user root root;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/error.log;\nevents {{}}\nhttp {{\n"
            f"    include /etc/nginx/mime.types;\n    access_log off;\n{temp_paths}\n"
            f"    include {tmp}/site.conf;\n}}\n"
        )
        self.command = ["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")]
        self.command += ["-e", str(tmp / "error.log")]
        subprocess.run([*self.command, "-t", "-q"], check=True)
        subprocess.run(self.command, check=True)

    def stop(self) -> None:
        subprocess.run([*self.command, "-s", "stop"], check=True)
