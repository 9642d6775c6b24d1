"""Safe HTTP fetching: http(s) only, no private addresses, bounded size and time.

Guarding against server-side request forgery
--------------------------------------------
Before every request, and again on every redirect hop (redirects are followed here, at most
:data:`MAX_REDIRECTS`), the host is resolved with :func:`socket.getaddrinfo` and the request is
refused when *any* address it resolves to is private, loopback, link-local, multicast, reserved,
unspecified, shared (CGNAT, 100.64.0.0/10) or a cloud metadata address -- unless the host name or
that address matches an entry of ``fetch.allow_hosts`` (host names, ``*.suffix`` wildcards, IPs
or CIDR ranges) *for that port*. An entry allows the default ports 80 and 443 only; ``host:8080``
(``[::1]:8080`` for an IPv6 address, ``10.0.0.0/8:8080`` for a range) allows another port and
``host:*`` every port. Link-local addresses (169.254.0.0/16, fe80::/10), cloud metadata addresses,
unspecified and multicast addresses are refused always, whatever ``allow_hosts`` says: allowing
a *name* never lets it resolve to one of them.

The connection is then *pinned* to an address that was checked: the request goes to the IP
itself, with the ``Host`` header set to the original host and, for https, the TLS server name
(SNI) and certificate check done against the original host name (httpcore's ``sni_hostname``
extension). A second DNS answer (DNS rebinding) therefore cannot redirect the connection. The
environment's proxy settings are ignored (``trust_env=False``): a proxy would resolve the name
again on its side. ``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR`` are still honoured.

Time: ``fetch.timeout`` is one wall-clock deadline for the whole fetch: name resolution, every
connect, TLS handshake, request write, status line and header read and body read, on every
redirect hop. Every socket operation is given only the time left (:class:`_DeadlineBackend`), so a
server trickling its headers or body a byte at a time cannot hold a fetch past the deadline.

Size: ``fetch.max_bytes`` bounds the bytes received *and* the bytes produced by every decoding
stage, as they are produced: the raw stream is read and decoded here (gzip, deflate, stacked up to
:data:`MAX_ENCODINGS` deep) with bounded ``zlib`` decompressors, never by httpx, which inflates a
whole network chunk at once. Compressions that cannot be decoded (br, zstd, compress) are refused.
Only text charsets are accepted in ``Content-Type`` (``charset=zlib`` or ``base64`` is refused).
"""

from __future__ import annotations

import concurrent.futures
import functools
import http
import ipaddress
import logging
import re
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from index.config import FetchSettings
from index.errors import FetchError
from index.ingest.extract import unusable_charset
from index.lazy import lazy_module

if TYPE_CHECKING:
    import httpx
else:  # imported on first fetch: indexing local files never needs it
    httpx = lazy_module("httpx", globals())

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
# Content-Encoding stages decoded (e.g. "gzip, gzip" is two); more are refused
MAX_ENCODINGS = 2
# the most bytes one decompression step produces before it is counted
_DECODE_STEP = 64 * 1024
_DEFAULT_PORTS = frozenset({80, 443})
ACCEPT_ENCODING = "gzip, deflate"
_ZLIB_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
# compressions that are not decoded here: refused rather than passed on as garbage
_UNDECODED_CODINGS = frozenset({"br", "zstd", "compress", "x-compress", "pack200-gzip", "exi"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
    "application/xml;q=0.9,text/xml;q=0.9,text/markdown;q=0.8,text/plain;q=0.8,*/*;q=0.5"
)

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


@dataclass(frozen=True)
class FetchedPage:
    """A fetched response. ``body`` is decompressed; empty when ``not_modified`` (HTTP 304)."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    content_type: str  # media type, lower case, without parameters; "" when not declared
    charset: str | None  # declared in the Content-Type header, if any
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


# --------------------------------------------------------------------------- sizes


def format_size(n: int) -> str:
    """``10000000`` → ``"10 MB"``; decimal units, as people read them."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g} MB"
    if n >= 1_000:
        return f"{n / 1_000:.3g} kB"
    return f"{n} bytes"


def _seconds(t: float) -> str:
    return f"{t:g}s"


# --------------------------------------------------------------------------- addresses


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

    Raises :class:`_Refused` when one of them is not public and not allowed (on that port) by
    ``settings.allow_hosts``, or is an address no entry can allow (link-local, metadata, ...);
    :class:`_Unresolvable` when the name does not resolve. The caller turns both into FetchError.
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
            raise _Unresolvable(f"timed out resolving {name}") from None
        except (OSError, UnicodeError) as e:
            raise _Unresolvable(f"cannot resolve host {name}") from e
        if not addresses:
            raise _Unresolvable(f"cannot resolve host {name}")
    for addr in addresses:
        ip = ipaddress.ip_address(addr)
        reason = classify_address(ip)
        if reason is None:
            continue
        what = f"{addr} is" if literal is not None else f"{name} resolves to {addr}, which is"
        if reason in NEVER_ALLOWED:
            raise _Refused(f"refused: {what} {reason} (never allowed)")
        if allow.host_allowed(name, port) or allow.address_allowed(ip, port):
            continue
        listed = allow.host_ports(name) + allow.address_ports(ip)
        if listed:
            raise _Refused(
                f"refused: {what} {reason}, allowed by fetch.allow_hosts on "
                f"{_ports_text(listed)} only, not on port {port} "
                f'(add "{_host_port(name, port)}" to allow it)'
            )
        raise _Refused(
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


class _Refused(Exception):
    pass


class _Unresolvable(Exception):
    pass


# --------------------------------------------------------------------------- decoding


class _TooBig(Exception):
    pass


class _BadEncoding(Exception):
    pass


class _Inflate:
    """One gzip or deflate stage, fed and drained in steps of at most :data:`_DECODE_STEP`
    bytes of output, so that no compressed input can make it produce more at once."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.started = False
        self._d = self._new()

    def _new(self, raw: bool = False) -> Any:
        if self.coding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._d.decompress(data, _DECODE_STEP)
            except zlib.error:
                if self.coding == "deflate" and not self.started:
                    # "deflate" is meant to be zlib-wrapped, but many servers send it raw
                    self.started = True
                    self._d = self._new(raw=True)
                    continue
                raise _BadEncoding from None
            self.started = True
            if out:
                yield out
            if self._d.eof:
                # another gzip member follows (or its first bytes: the rest comes with the next
                # chunk, gathered in unused_data); other trailing bytes are ignored, as httpx does
                rest = self._d.unused_data
                if self.coding == "gzip" and len(rest) >= 2 and rest[:2] == b"\x1f\x8b":
                    self._d = self._new()
                    data = rest
                    continue
                return
            # output beyond _DECODE_STEP stays in the decompressor: the next feed or finish
            # drains it
            data = self._d.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        if self._d.eof or not self.started:
            return
        while True:
            try:
                out = self._d.decompress(b"", _DECODE_STEP)
            except zlib.error:
                raise _BadEncoding from None
            if not out:
                break
            yield out


class _BodyDecoder:
    """Undo a response's Content-Encoding stage by stage, counting what *each* stage produces
    against ``limit`` as it is produced (a stacked "gzip, gzip" bomb stops at the limit)."""

    def __init__(self, codings: Sequence[str], limit: int) -> None:
        # applied in the order listed, so undone in reverse
        self.stages = [_Inflate(_ZLIB_CODINGS[c]) for c in reversed(codings)]
        self.produced = [0] * len(self.stages)
        self.received = 0
        self.limit = limit

    def feed(self, raw: bytes) -> Iterator[bytes]:
        self.received += len(raw)
        if self.received > self.limit:
            raise _TooBig
        yield from self._through(0, raw)

    def finish(self) -> Iterator[bytes]:
        for i, stage in enumerate(self.stages):
            for out in stage.finish():
                yield from self._count(i, out)

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self.stages):
            yield data
            return
        for out in self.stages[i].feed(data):
            yield from self._count(i, out)

    def _count(self, i: int, out: bytes) -> Iterator[bytes]:
        self.produced[i] += len(out)
        if self.produced[i] > self.limit:
            raise _TooBig
        yield from self._through(i + 1, out)


def _content_codings(response: httpx.Response) -> list[str]:
    """The Content-Encoding stages to undo, in the order they were applied.

    Raises FetchError-worthy ValueError with a reason for encodings that are not decoded here.
    """
    codings: list[str] = []
    for value in response.headers.get_list("content-encoding", split_commas=True):
        coding = value.strip().lower()
        if coding in _ZLIB_CODINGS:
            codings.append(coding)
        elif coding in _UNDECODED_CODINGS:
            raise ValueError(f"unsupported Content-Encoding {coding}")
        # "identity", "", and non-compression tokens some servers send ("utf-8"): nothing to undo
    if len(codings) > MAX_ENCODINGS:
        raise ValueError(
            f"refused: the response is compressed {len(codings)} times over "
            f"(Content-Encoding {', '.join(codings)})"
        )
    return codings


# --------------------------------------------------------------------------- fetching


def _media_type(header: str | None) -> tuple[str, str | None]:
    """``("text/html", "utf-8")`` from a Content-Type header value."""
    if not header:
        return "", None
    parts = header.split(";")
    media = parts[0].strip().lower()
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower() or None
    return media, charset


def _status_text(response: httpx.Response) -> str:
    try:
        phrase = http.HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = response.reason_phrase or ""
    return f"HTTP {response.status_code} {phrase}".rstrip()


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def _connect_reason(exc: Exception) -> str:
    msg = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in msg or "certificate verify failed" in msg:
        return "cannot connect (TLS certificate verification failed)"
    if "SSL" in msg or "TLS" in msg:
        return "cannot connect (TLS handshake failed)"
    detail = _ERRNO.sub("", msg).strip()
    if "refused" in detail.lower():
        return "cannot connect (connection refused)"
    return f"cannot connect ({detail[:80]})" if detail else "cannot connect"


def _strip_fragment(url: httpx.URL) -> httpx.URL:
    return url.copy_with(fragment=None) if url.fragment else url


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Certificate checking as httpx does it (certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR).

    Made here because the clients ignore the rest of the environment (proxies); shared by all
    fetches, as an SSLContext is thread-safe.
    """
    return httpx.create_ssl_context(trust_env=True)


class _Deadline:
    """One wall-clock deadline for a whole fetch (every hop, every socket operation)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> float:
        left = self.remaining()
        if left <= 0:
            raise httpx.ReadTimeout("overall deadline exceeded")
        return left

    def bound(self, timeout: float | None, expired: type[Exception]) -> float:
        """``timeout`` cut to the time left; ``expired`` (an httpcore timeout) when none is."""
        left = self.remaining()
        if left <= 0:
            raise expired("overall deadline exceeded")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream:
    """An httpcore network stream whose every read, write and TLS handshake ends by the
    deadline: httpcore gives each socket operation the full read timeout, so a server sending
    its headers a byte at a time would otherwise hold the fetch for bytes x timeout."""

    def __init__(self, inner: Any, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        data: bytes = self._inner.read(
            max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout)
        )
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        self._inner.write(buffer, self._deadline.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _DeadlineStream:
        import httpcore

        inner = self._inner.start_tls(
            ssl_context, server_hostname, self._deadline.bound(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend:
    """httpcore's synchronous network backend, its streams bound by one :class:`_Deadline`."""

    def __init__(self, deadline: _Deadline) -> None:
        import httpcore

        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _DeadlineStream:
        import httpcore

        stream = self._inner.connect_tcp(
            host,
            port,
            self._deadline.bound(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None, **_: Any) -> Any:
        raise OSError("unix sockets are not fetched")  # pragma: no cover - never asked for

    def sleep(self, seconds: float) -> None:  # pragma: no cover - retries are off
        time.sleep(min(seconds, max(self._deadline.remaining(), 0)))


def _transport(deadline: _Deadline) -> httpx.HTTPTransport:
    """httpx's transport on a connection pool whose sockets keep to ``deadline``.

    httpx.HTTPTransport takes no network backend, so its pool is replaced by an equivalent one
    (same TLS context, no proxy) built with :class:`_DeadlineBackend`.
    """
    import httpcore

    transport = httpx.HTTPTransport(verify=_ssl_context(), trust_env=False)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=4,
        max_keepalive_connections=0,
        network_backend=_DeadlineBackend(deadline),  # type: ignore[arg-type]
    )
    return transport


def fetch_url(
    url: str,
    settings: FetchSettings,
    *,
    accept: str = DEFAULT_ACCEPT,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_type: Callable[[str], bool] | None = None,
) -> FetchedPage:
    """GET ``url`` safely (see the module docstring) and return the whole body.

    ``etag`` / ``last_modified`` make the request conditional; a 304 answer gives a page with
    ``not_modified=True`` and an empty body. ``allow_type`` is called with the media type before
    the body is downloaded; False raises FetchError "unsupported content type X".

    Raises FetchError (and nothing else) with a short reason: "not an http(s) URL",
    "cannot connect (...)", "timed out after 15s", "HTTP 404 Not Found", "refused: ...",
    "response is larger than 10 MB (fetch.max_bytes)", "too many redirects (more than 5)", ...
    """
    deadline = _Deadline(settings.timeout)
    try:
        current = _strip_fragment(httpx.URL(url.strip()))
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FetchError(url, "not a valid URL") from None
    if current.scheme not in ("http", "https"):
        raise FetchError(url, "not an http(s) URL")
    if not current.host:
        raise FetchError(url, "not a valid URL (no host)")

    headers = {
        "User-Agent": settings.user_agent,
        "Accept": accept,
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified

    try:
        with httpx.Client(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            trust_env=False,
            transport=_transport(deadline),
            headers=headers,
        ) as client:
            for hop in range(MAX_REDIRECTS + 1):
                response = _send_pinned(client, url, current, settings, deadline, hop=hop)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECT_STATUSES and location:
                        current = _next_hop(url, current, location)
                        log.debug("%s: redirected to %s", url, current)
                        continue
                    return _read(url, current, response, settings, deadline, allow_type)
                finally:
                    response.close()
            raise FetchError(url, f"too many redirects (more than {MAX_REDIRECTS})")
    except FetchError:
        raise
    except httpx.TimeoutException:
        raise FetchError(url, f"timed out after {_seconds(settings.timeout)}") from None
    except httpx.ConnectError as e:
        raise FetchError(url, _connect_reason(e)) from None
    except httpx.RemoteProtocolError:
        raise FetchError(url, "the server closed the connection or sent a bad response") from None
    except httpx.DecodingError:
        raise FetchError(url, "cannot decode the response (bad compression)") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise FetchError(url, "not a valid URL") from None
    except httpx.HTTPError as e:
        raise FetchError(url, f"request failed ({type(e).__name__})") from None
    except (OSError, ValueError, UnicodeError) as e:
        log.debug("fetch of %s failed", url, exc_info=True)
        raise FetchError(url, f"request failed ({type(e).__name__})") from None


def _next_hop(original: str, current: httpx.URL, location: str) -> httpx.URL:
    try:
        nxt = _strip_fragment(current.join(location.strip()))
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FetchError(original, f"redirected to an invalid URL ({location[:100]})") from None
    if nxt.scheme not in ("http", "https"):
        raise FetchError(
            original, f"refused redirect to {location[:100]}: not an http(s) URL"
        ) from None
    return nxt


def _send_pinned(
    client: httpx.Client,
    original: str,
    url: httpx.URL,
    settings: FetchSettings,
    deadline: _Deadline,
    *,
    hop: int,
) -> httpx.Response:
    """Check ``url``'s host, then send the request to one of its checked addresses."""
    prefix = f"redirected to {url}, " if hop else ""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = check_host(host, port, settings, timeout=max(deadline.check(), 0.01))
    except _Refused as e:
        raise FetchError(original, prefix + str(e)) from None
    except _Unresolvable as e:
        raise FetchError(original, prefix + str(e)) from None
    last_error: httpx.ConnectError | None = None
    for addr in addresses:
        left = deadline.check()
        pinned = url.copy_with(host=addr)
        extensions: dict[str, str] = {}
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        request = client.build_request(
            "GET",
            pinned,
            headers={"Host": url.netloc.decode("ascii")},
            timeout=httpx.Timeout(min(settings.timeout, left)),
            extensions=extensions,
        )
        try:
            log.debug("GET %s (pinned to %s)", url, addr)
            return client.send(request, stream=True)
        except httpx.ConnectError as e:
            last_error = e
            log.debug("cannot connect to %s at %s: %s", host, addr, e)
    if last_error is None:  # pragma: no cover - check_host never returns an empty list
        raise FetchError(original, prefix + f"cannot resolve host {host}")
    raise last_error


def _read(
    original: str,
    final: httpx.URL,
    response: httpx.Response,
    settings: FetchSettings,
    deadline: _Deadline,
    allow_type: Callable[[str], bool] | None,
) -> FetchedPage:
    media, charset = _media_type(response.headers.get("content-type"))
    page_etag = response.headers.get("etag")
    page_modified = response.headers.get("last-modified")
    final_url = str(final)
    if response.status_code == 304:
        return FetchedPage(
            url=original,
            final_url=final_url,
            status=304,
            content_type=media,
            charset=charset,
            body=b"",
            etag=page_etag,
            last_modified=page_modified,
            not_modified=True,
        )
    if response.status_code >= 300 or response.status_code < 200:
        raise FetchError(original, _status_text(response))
    if allow_type is not None and not allow_type(media):
        raise FetchError(original, f"unsupported content type {media or '(none declared)'}")
    if charset is not None and unusable_charset(charset):
        raise FetchError(original, f"unsupported charset {charset[:40]!r} (not a text encoding)")
    too_big = f"response is larger than {format_size(settings.max_bytes)} (fetch.max_bytes)"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes:
        raise FetchError(original, too_big)
    try:
        decoder = _BodyDecoder(_content_codings(response), settings.max_bytes)
    except ValueError as e:
        raise FetchError(original, str(e)) from None
    body = bytearray()
    try:
        for raw in response.iter_raw():
            for piece in decoder.feed(raw):
                body += piece
            deadline.check()
        for piece in decoder.finish():
            body += piece
    except _TooBig:
        raise FetchError(original, too_big) from None
    except _BadEncoding:
        raise FetchError(original, "cannot decode the response (bad compression)") from None
    return FetchedPage(
        url=original,
        final_url=final_url,
        status=response.status_code,
        content_type=media,
        charset=charset,
        body=bytes(body),
        etag=page_etag,
        last_modified=page_modified,
    )
