"""Where the gateway may send requests: not an SSRF hole, and no DNS rebinding.

The gateway never calls a host that is, or resolves to:

* a link-local or metadata address (169.254.0.0/16, fe80::/10, their IPv4-mapped forms,
  ``metadata.google.internal``, ``metadata``), or an unspecified one (0.0.0.0/8, ``::``): never;
* a multicast address: never;
* any other address that is not public (private, loopback, shared/CGNAT 100.64.0.0/10, site-local,
  unique local, reserved, ...): unless ``AI_ADMIN_GATEWAY_ALLOW_HOSTS``
  (comma-separated host names and CIDR blocks, e.g. ``127.0.0.1,10.20.0.0/16,llm.internal``)
  allows it. The practice gateway allows ``127.0.0.1`` (its sandbox).

An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64's ``64:ff9b::/96``)
is judged as that IPv4 address: ``2002:a9fe:a9fe::1`` is the metadata service's.

Two places apply that :class:`AddressPolicy`:

* Save and Test check the endpoints first (:func:`refused_endpoints`), so the admin is told
  which field is refused and why;
* every connection the gateway opens (Save's and Test's checks, the calls of ``/v1``) goes
  through :class:`PinnedBackend`, which resolves the name once, refuses the connection if any
  address it got is refused, and connects to an address it checked. A name that resolves to a
  public address at Save and to an internal one later (DNS rebinding) is therefore refused at
  the connection, never followed. The ``Host`` header and the TLS server name (SNI, and the
  certificate's name check) stay those of the endpoint's host name: only the socket is pinned.

Through a proxy from the environment (``HTTPS_PROXY``), the proxy resolves names and opens the
connections; the gateway then checks names at Save only, and the proxy's own rules must keep
internal addresses out of reach.

A name that does not resolve is left to the checks (they report ``dns_failure``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore

from ..models import AzureOpenAIIntegration, OpenAIIntegration
from ..transport import AddressRefused

__all__ = [
    "ALLOW_HOSTS_ENV",
    "AddressPolicy",
    "PinnedBackend",
    "allowed_hosts_from_environment",
    "refused_endpoints",
]

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


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix


def embedded(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries and leads to (IPv4-mapped, 6to4 ``2002::/16``, Teredo's client in
    ``2001::/32``, NAT64 ``64:ff9b::/96``), else ``address`` itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


#: Blocks that are not public though Python 3.11's ``is_global`` may say they are (RFC 6890's special-purpose
#: registries): shared address space (CGNAT), IETF protocol assignments, benchmarking, site-local, unique local,
#: documentation, local-use NAT64.
_INTERNAL = [
    ipaddress.ip_network(block)
    for block in (
        "100.64.0.0/10",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "fec0::/10",
        "fc00::/7",
        "2001:db8::/32",
        "64:ff9b:1::/48",
    )
]


def _internal(address: Address) -> bool:
    """Whether ``address`` is anything but a public unicast address (private, loopback, reserved, shared, ...)."""
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_reserved
        or any(address in block for block in _INTERNAL if block.version == address.version)
    )


def _literal(host: str) -> Address | None:
    try:
        return _plain(ipaddress.ip_address(host.partition("%")[0]))
    except ValueError:
        return None


def _host(host: str) -> str:
    return host.lower().rstrip(".").strip("[]")


class AddressPolicy:
    """Which addresses the gateway may call, given the allowed hosts (names and CIDR blocks)."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = tuple(entry.strip().lower() for entry in allow if entry.strip())
        self._blocks = []
        for entry in self.allow:
            try:
                self._blocks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:  # a name, not a block
                continue

    def __repr__(self) -> str:
        return f"AddressPolicy(allow={self.allow!r})"

    def name_problem(self, host: str) -> str | None:
        """Why ``host`` is never called by its name alone (a metadata service's name), or None."""
        host = _host(host)
        if host in _METADATA_NAMES:
            return f"{host} is a cloud metadata service, which the AI gateway never calls."
        return None

    def problem(self, host: str, address: Address) -> str | None:
        """Why the gateway must not connect to ``address`` (which ``host`` resolved to), or None when it may.

        An IPv6 address that carries an IPv4 one (:func:`embedded`) is judged as that IPv4 address.
        """
        host, given = _host(host), _plain(address)
        address = embedded(given)
        shown = f"{given}" if given == address else f"{given} (which leads to {address})"
        if address.is_multicast or given.is_multicast:
            return f"{host} is (or resolves to) {shown}, a multicast address, which the AI gateway never calls."
        if address.is_link_local or any(address in block for block in _NEVER if block.version == address.version):
            return (
                f"{host} is (or resolves to) {shown}, a link-local, metadata or unspecified address, which the "
                "AI gateway never calls."
            )
        if _internal(address):
            if host in self.allow or any(
                candidate in block
                for block in self._blocks
                for candidate in {given, address}
                if block.version == candidate.version
            ):
                return None
            return (
                f"{host} is (or resolves to) {shown}, a private, loopback or other non-public address; the hub's "
                f"admin can allow it in {ALLOW_HOSTS_ENV} (host names or CIDR blocks, comma-separated)."
            )
        return None

    def never_called(self, host: str) -> bool:
        """Whether ``host`` (a name or an address literal) is one the gateway never calls, whatever it allows
        (a metadata service's name; a link-local, metadata, unspecified or multicast address). No DNS lookup."""
        if self.name_problem(host) is not None:
            return True
        literal = _literal(_host(host))
        if literal is None:
            return False
        problem = self.problem(host, literal)
        return problem is not None and "never calls" in problem

    def host_problem(self, host: str) -> str | None:
        """Why ``host`` must not be called, resolving it now (blocking; None when it may, or does not resolve)."""
        problem = self.name_problem(host)
        if problem is not None:
            return problem
        literal = _literal(_host(host))
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = socket.getaddrinfo(_host(host), None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                return None  # the checks will say dns_failure
            addresses = [_plain(ipaddress.ip_address(str(item[4][0]).partition("%")[0])) for item in found]
        for address in addresses:
            problem = self.problem(host, address)
            if problem is not None:
                return problem
        return None


def refused_endpoints(
    integration: OpenAIIntegration | AzureOpenAIIntegration, allow: Iterable[str] | AddressPolicy
) -> dict[str, str]:
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
    policy = allow if isinstance(allow, AddressPolicy) else AddressPolicy(allow)
    problems = {}
    for field, url in endpoints.items():
        problem = policy.host_problem(urlsplit(url).hostname or "")
        if problem is not None:
            problems[field] = problem
    return problems


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, each TCP connection made only to an address :class:`AddressPolicy` allows.

    ``connect_tcp`` resolves the host once (``getaddrinfo``), refuses with
    :class:`~ai_admin_widgets.transport.AddressRefused` when any address it got is refused (an
    answer that mixes a public and an internal address is a rebinding attempt too), and connects
    to the checked addresses in turn (each with the connect timeout's remainder). httpcore starts
    TLS on the returned stream with the origin's host name, so SNI and the certificate check,
    like the ``Host`` header, are the endpoint's. The time to resolve counts against the connect
    timeout.
    """

    def __init__(self, policy: AddressPolicy, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self._backend = backend or httpcore.AnyIOBackend()

    def __repr__(self) -> str:
        return f"PinnedBackend({self.policy!r})"

    async def resolve(self, host: str, port: int) -> list[Address]:
        """The addresses ``host`` resolves to now, each allowed (in getaddrinfo's order, without repeats).

        Raises:
            AddressRefused: the host's name, or any address it resolves to, is refused.
            httpcore.ConnectError: the name does not resolve (its ``socket.gaierror`` is the cause).
        """
        problem = self.policy.name_problem(host)
        if problem is not None:
            raise AddressRefused(problem)
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as error:
                raise httpcore.ConnectError(str(error)) from error
            addresses = []
            for item in found:
                address = _plain(ipaddress.ip_address(str(item[4][0]).partition("%")[0]))
                if address not in addresses:
                    addresses.append(address)
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolved to no address.")
        for address in addresses:
            problem = self.policy.problem(host, address)
            if problem is not None:
                raise AddressRefused(problem)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        started = time.monotonic()
        try:
            with anyio.fail_after(timeout):
                addresses = await self.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"{host} did not resolve within {timeout:g} seconds.") from None
        if timeout is not None:  # the connect timeout covers the resolving and the connecting together
            timeout = max(timeout - (time.monotonic() - started), 0.001)
        *others, last = addresses  # resolve returns at least one address, or raises
        for address in others:
            try:
                return await self._backend.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await self._backend.connect_tcp(str(last), port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("The AI gateway does not call Unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
