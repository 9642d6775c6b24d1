"""Which addresses a fetch may connect to: the guard against server-side request forgery.

Before every request, and again on every redirect hop (redirects are followed by
:mod:`index.ingest.fetch`, at most ``MAX_REDIRECTS``), the host is resolved with
:func:`socket.getaddrinfo` and the request is refused when *any* address it resolves to is private,
loopback, link-local, multicast, reserved, unspecified, shared (CGNAT, 100.64.0.0/10) or a cloud
metadata address -- unless the host name or that address matches an entry of ``fetch.allow_hosts``
(host names, ``*.suffix`` wildcards, IPs or CIDR ranges) *for that port*. An entry allows the
default ports 80 and 443 only; ``host:8080`` (``[::1]:8080`` for an IPv6 address,
``10.0.0.0/8:8080`` for a range) allows another port and ``host:*`` every port. Link-local
addresses (169.254.0.0/16, fe80::/10), cloud metadata addresses, unspecified and multicast
addresses are refused always, whatever ``allow_hosts`` says: allowing a *name* never lets it
resolve to one of them.

:func:`check_host` resolves a host and checks every address it resolves to; the fetcher
(:mod:`index.ingest.fetch`) calls it before every request and on every redirect hop, then pins
the connection to a checked address.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from index.config import FetchSettings

_DEFAULT_PORTS = frozenset({80, 443})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack...
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("168.63.129.16"),  # Azure wire server (a public address)
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
    }
)
# what classify_address says of addresses no fetch.allow_hosts entry can open
NEVER_ALLOWED = frozenset(
    {
        "a cloud metadata address",
        "a link-local address",
        "an unspecified address",
        "a multicast address",
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this network": 0.x.y.z reaches the host
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_resolver_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


def classify_address(address: str | IPAddress) -> str | None:
    """Why ``address`` must not be fetched ("a private address", ...), or None when public."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if ip.ipv4_mapped is not None:
            return classify_address(ip.ipv4_mapped)
        embedded = ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = classify_address(embedded)
            if reason:
                return reason
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (CGNAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


# an allow_hosts entry's port part: ":8080" or ":*" after a name, an IPv4 address or range
_PORT_SUFFIX = re.compile(r"^(?P<host>[^:\[\]]+):(?P<port>\d{1,5}|\*)$")
# "[::1]", "[::1]:8080", "[fd00::/8]:*"
_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>\d{1,5}|\*))?$")

Ports = frozenset[int] | None  # None: every port


def _entry_ports(port: str | None) -> Ports:
    if port is None:
        return _DEFAULT_PORTS
    if port == "*":
        return None
    return frozenset({int(port)})


def _port_ok(ports: Ports, port: int) -> bool:
    return ports is None or port in ports


@dataclass(frozen=True)
class _AllowList:
    hosts: tuple[tuple[str, Ports], ...]
    suffixes: tuple[tuple[str, Ports], ...]
    networks: tuple[tuple[IPNetwork, Ports], ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> _AllowList:
        hosts: list[tuple[str, Ports]] = []
        suffixes: list[tuple[str, Ports]] = []
        networks: list[tuple[IPNetwork, Ports]] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            port: str | None = None
            try:  # a bare IPv6 address or range ("fd00::1", "fd00::/8") has colons but no port
                networks.append((ipaddress.ip_network(entry, strict=False), _DEFAULT_PORTS))
                continue
            except ValueError:
                pass
            m = _BRACKETED.match(entry) or _PORT_SUFFIX.match(entry)
            if m:
                entry, port = m.group("host"), m.group("port")
            ports = _entry_ports(port)
            entry = entry.rstrip(".")
            try:
                networks.append((ipaddress.ip_network(entry, strict=False), ports))
                continue
            except ValueError:
                pass
            try:  # compare in the form URLs carry: "bücher.example" → "xn--bcher-kva.example"
                entry = entry.encode("idna").decode("ascii")
            except UnicodeError:
                pass
            if entry.startswith("*."):
                suffixes.append((entry[1:], ports))
            else:
                hosts.append((entry, ports))
        return cls(tuple(hosts), tuple(suffixes), tuple(networks))

    def host_ports(self, name: str) -> list[Ports]:
        """The ports of every entry naming ``name`` (empty: not listed by name)."""
        name = name.lower().rstrip(".")
        found = [ports for host, ports in self.hosts if name == host]
        found += [ports for suffix, ports in self.suffixes if name.endswith(suffix)]
        return found

    def address_ports(self, ip: IPAddress) -> list[Ports]:
        return [ports for net, ports in self.networks if ip.version == net.version and ip in net]

    def host_allowed(self, name: str, port: int) -> bool:
        return any(_port_ok(p, port) for p in self.host_ports(name))

    def address_allowed(self, ip: IPAddress, port: int) -> bool:
        return any(_port_ok(p, port) for p in self.address_ports(ip))


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """Addresses of ``host`` (getaddrinfo order, duplicates removed). Tests replace this."""
    future = _resolver_pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    infos = future.result(timeout=timeout)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    return list(seen)


def check_host(host: str, port: int, settings: FetchSettings, *, timeout: float) -> list[str]:
    """Resolve ``host`` and return its addresses, all of which may be connected to on ``port``.

    Raises :class:`Refused` when one of them is not public and not allowed (on that port) by
    ``settings.allow_hosts``, or is an address no entry can allow (link-local, metadata, ...);
    :class:`Unresolvable` when the name does not resolve. The caller turns both into FetchError.
    """
    allow = _AllowList.parse(settings.allow_hosts)
    name = host.strip("[]")
    try:
        literal: IPAddress | None = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = _resolve(name, port, timeout)
        except concurrent.futures.TimeoutError:
            raise Unresolvable(f"timed out resolving {name}") from None
        except (OSError, UnicodeError) as e:
            raise Unresolvable(f"cannot resolve host {name}") from e
        if not addresses:
            raise Unresolvable(f"cannot resolve host {name}")
    for addr in addresses:
        ip = ipaddress.ip_address(addr)
        reason = classify_address(ip)
        if reason is None:
            continue
        what = f"{addr} is" if literal is not None else f"{name} resolves to {addr}, which is"
        if reason in NEVER_ALLOWED:
            raise Refused(f"refused: {what} {reason} (never allowed)")
        if allow.host_allowed(name, port) or allow.address_allowed(ip, port):
            continue
        listed = allow.host_ports(name) + allow.address_ports(ip)
        if listed:
            raise Refused(
                f"refused: {what} {reason}, allowed by fetch.allow_hosts on "
                f"{_ports_text(listed)} only, not on port {port} "
                f'(add "{_host_port(name, port)}" to allow it)'
            )
        raise Refused(
            f"refused: {what} {reason} (to allow it: `newsdesk index --allow-host "
            f"{_host_port(name, port)}`, NEWSDESK_ALLOW_HOSTS or fetch.allow_hosts)"
        )
    return addresses


def _ports_text(listed: list[Ports]) -> str:
    ports = sorted({p for ports in listed if ports is not None for p in ports})
    return ("port " if len(ports) == 1 else "ports ") + _ports_joined(ports)


def _ports_joined(ports: list[int]) -> str:
    if len(ports) <= 1:
        return "".join(map(str, ports))
    return ", ".join(map(str, ports[:-1])) + f" and {ports[-1]}"


def _host_port(name: str, port: int) -> str:
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


class Refused(Exception):
    """The host or an address it resolves to may not be fetched (the reason is the text)."""


class Unresolvable(Exception):
    """The host name does not resolve (in time)."""
