"""The guard on requests cityops sends out (http_pull, webhooks, cameras): no internal address unless allowed.

A URL given by a user (an agency's endpoint, a webhook, a camera) could point the server at its own network — the
database, a cloud's metadata service, an admin interface (SSRF). Before each request the host is resolved and every
address must be a public one, or lie in `CITYOPS_OUTBOUND_ALLOW` (comma-separated networks or host names an admin
allows, e.g. "10.20.0.0/16, igate.nghean.gov.vn"; the demo and the tests allow 127.0.0.0/8). Redirects are never
followed blindly (each client sets follow_redirects=False or checks the target again).

Limit: the host is resolved here and again by the connection; a DNS answer that changes between the two (rebinding)
is not caught. Pin internal services by address in the allow-list rather than by name.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import httpx

ENVIRONMENT = "CITYOPS_OUTBOUND_ALLOW"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(httpx.TransportError):
    """A request to an internal address that is not allowed; its message is "host → address", nothing else (the
    messages around it say what it means and what an admin can do)."""


@dataclass(frozen=True)
class Policy:
    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    def allows(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if host.lower() in self.hosts or any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast


def parse_policy(text: str) -> Policy:
    """The policy from an allow-list text; ValueError for an entry that is neither a network nor a host name."""
    networks: list[Network] = []
    hosts: set[str] = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if not entry.replace("-", "").replace(".", "").isalnum():
                raise ValueError(f"not a network or a host name: {entry[:60]!r}") from None
            hosts.add(entry.lower())
    return Policy(tuple(networks), frozenset(hosts))


@cache
def _environment_policy(text: str) -> Policy:
    return parse_policy(text)


_configured: Policy | None = None


def configure(allow: str) -> None:
    """Set this process's policy from the settings (`outbound_allow`); an empty text leaves the environment's."""
    global _configured
    if allow.strip():
        _configured = parse_policy(allow)


def current_policy() -> Policy:
    """The policy of this process: the settings' when configured, else the environment's."""
    return _configured or _environment_policy(os.environ.get(ENVIRONMENT, ""))


def check_url(url: str, policy: Policy | None = None) -> None:
    """Refuse (OutboundRefused) a URL whose host resolves to an address the policy does not allow."""
    policy = policy or current_policy()
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        raise OutboundRefused("no host in the address")
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise httpx.ConnectError(f"{host}: cannot be resolved") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not policy.allows(host, address):
            raise OutboundRefused(f"{host} → {address}")


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that checks every request's host against the policy before connecting."""

    def __init__(self, policy: Policy | None = None, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.policy = policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_url(str(request.url), self.policy)
        return super().handle_request(request)
