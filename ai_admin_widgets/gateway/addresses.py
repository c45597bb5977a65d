"""Where the gateway may send requests: not an SSRF hole.

Save and Test (and the routes of ``/v1``, when the settings change) refuse an endpoint whose
host is, or resolves to:

* a link-local or metadata address (169.254.0.0/16, fe80::/10, their IPv4-mapped forms,
  ``metadata.google.internal``, ``metadata``), or an unspecified one (0.0.0.0/8, ``::``): never;
* a private, loopback or otherwise reserved address: unless ``AI_ADMIN_GATEWAY_ALLOW_HOSTS``
  (comma-separated host names and CIDR blocks, e.g. ``127.0.0.1,10.20.0.0/16,llm.internal``)
  allows it. The practice gateway allows ``127.0.0.1`` (its sandbox).

A name that does not resolve is left to the checks (they report ``dns_failure``). What is not done
here: pinning the connection to the address checked (a name that re-resolves elsewhere between
the check and the request is not caught).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..models import AzureOpenAIIntegration, OpenAIIntegration

__all__ = ["ALLOW_HOSTS_ENV", "allowed_hosts_from_environment", "refused_endpoints"]

ALLOW_HOSTS_ENV = "AI_ADMIN_GATEWAY_ALLOW_HOSTS"
_METADATA_NAMES = {"metadata.google.internal", "metadata", "metadata.azure.internal", "instance-data"}
_NEVER = [
    ipaddress.ip_network(block)
    for block in ("169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128", "100.100.100.200/32", "fd00:ec2::254/128")
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed_hosts_from_environment() -> tuple[str, ...]:
    """``$AI_ADMIN_GATEWAY_ALLOW_HOSTS`` as a tuple of names and CIDR blocks (lower case)."""
    return tuple(part.strip().lower() for part in os.environ.get(ALLOW_HOSTS_ENV, "").split(",") if part.strip())


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (``::ffff:169.254.169.254``) as the IPv4 address it stands for."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _allowed(host: str, address: Address, allow: Iterable[str]) -> bool:
    for entry in allow:
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:  # a name, not a block
            continue
    return False


def _addresses(host: str) -> list[Address]:
    try:
        return [_plain(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # the checks will say dns_failure
    return [_plain(ipaddress.ip_address(str(item[4][0]).split("%")[0])) for item in found]


def _problem(host: str, allow: Iterable[str]) -> str | None:
    host = host.lower().rstrip(".").strip("[]")
    if host in _METADATA_NAMES:
        return f"{host} is a cloud metadata service, which the AI gateway never calls."
    for address in _addresses(host):
        if address.is_link_local or any(address in block for block in _NEVER if block.version == address.version):
            return f"{host} is (or resolves to) {address}, a link-local, metadata or unspecified address, which the AI gateway never calls."
        if (address.is_private or address.is_loopback or address.is_reserved) and not _allowed(host, address, allow):
            return (
                f"{host} is (or resolves to) {address}, a private or loopback address; the hub's admin can allow it "
                f"in {ALLOW_HOSTS_ENV} (host names or CIDR blocks, comma-separated)."
            )
    return None


def refused_endpoints(integration: OpenAIIntegration | AzureOpenAIIntegration, allow: Iterable[str]) -> dict[str, str]:
    """The endpoint fields of ``integration`` that the gateway must not call, with why (empty: all may be called).

    Blocks on name resolution (call it off the event loop).
    """
    if isinstance(integration, OpenAIIntegration):
        endpoints = {"base_url": integration.base_url}
    else:
        endpoints = {
            f"{role}_model.endpoint_url": integration.deployment(role).endpoint_url
            for role in ("language", "embeddings")
        }
    allow = tuple(allow)
    problems = {}
    for field, url in endpoints.items():
        host = urlsplit(url).hostname or ""
        problem = _problem(host, allow)
        if problem is not None:
            problems[field] = problem
    return problems
