"""Whether TLS can be turned on yet: the domain must already lead to the server.

Let's Encrypt checks the domain over HTTP on the server's public address, so certbot can only
succeed once the domain's A record points there. On a first deployment that record usually cannot
exist yet (the droplet, or its reserved IP, is created by that same `pulumi up`). So TLS is turned
on by the first `pulumi up` that finds the domain resolving to the server: until then the server
and the sites run on plain HTTP (no certbot, no secure-only cookies, no redirect to HTTPS), and
the program says what to do. Nothing else changes on that later `up` but the Nginx step and the
sites' TLS settings.
"""

from __future__ import annotations

import ipaddress
import socket

import pulumi


def lookup_ipv4(name: str) -> set[str]:
    """The IPv4 addresses of ``name`` as this machine's resolver answers (empty if none)."""
    try:
        infos = socket.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return set()
    return {str(info[4][0]) for info in infos}


def leads_to(domain: str, server: str) -> bool:
    """Whether every address ``domain`` resolves to is the server's (``server``: its public IP
    address, or for an existing host the name or address it is reached at)."""
    return _all_on_server(lookup_ipv4(domain), server)


def _all_on_server(found: set[str], server: str) -> bool:
    try:
        targets = {str(ipaddress.ip_address(server))}
    except ValueError:
        targets = lookup_ipv4(server)
    return bool(found) and found <= targets


def tls_active(
    domain: str | None, wanted: bool, server_address: pulumi.Input[str]
) -> pulumi.Output[bool]:
    """True once TLS is wanted (``domain`` and ``tlsEmail``) and ``domain`` leads to the server;
    while it does not, a warning on every `pulumi up` says where to point the domain."""
    if not wanted or domain is None:
        return pulumi.Output.from_input(False)

    def check(address: str) -> bool:
        # One look-up decides and is reported: two could disagree while DNS changes.
        found = lookup_ipv4(domain)
        if _all_on_server(found, address):
            return True
        seen = ", ".join(sorted(found)) or "no address"
        pulumi.log.warn(
            f"TLS for {domain} is waiting: the name resolves to {seen}, not to the server's"
            f" address {address}. The sites are served over plain HTTP until then. Point the"
            f" domain's A record at {address}, wait until `dig +short {domain}` answers it, and"
            " run `pulumi up` again: that run gets the certificate and turns HTTPS on."
        )
        return False

    return pulumi.Output.from_input(server_address).apply(check)
