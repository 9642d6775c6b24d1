"""Safe HTTP fetching: http(s) only, no private addresses, bounded size and time.

Guarding against server-side request forgery
--------------------------------------------
Before every request, and again on every redirect hop (redirects are followed here, at most
:data:`MAX_REDIRECTS`), the host is resolved with :func:`socket.getaddrinfo` and the request is
refused when *any* address it resolves to is private, loopback, link-local, multicast, reserved,
unspecified, shared (CGNAT, 100.64.0.0/10) or a cloud metadata address -- unless the host name or
that address matches an entry of ``fetch.allow_hosts`` (host names, ``*.suffix`` wildcards, IPs
or CIDR ranges).

The connection is then *pinned* to an address that was checked: the request goes to the IP
itself, with the ``Host`` header set to the original host and, for https, the TLS server name
(SNI) and certificate check done against the original host name (httpcore's ``sni_hostname``
extension). A second DNS answer (DNS rebinding) therefore cannot redirect the connection. The
environment's proxy settings are ignored (``trust_env=False``): a proxy would resolve the name
again on its side. ``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR`` are still honoured.

Time: ``fetch.timeout`` bounds each connect and each read, and is also an overall deadline for
the whole fetch (redirects and download included). The deadline is checked between reads, so a
server trickling bytes can hold a fetch for at most about twice the timeout.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import FetchSettings
from .errors import FetchError
from .lazy import lazy_module

if TYPE_CHECKING:
    import httpx
else:  # imported on first fetch: indexing local files never needs it
    httpx = lazy_module("httpx", globals())

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
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
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
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
    if ip.is_unspecified:
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


@dataclass(frozen=True)
class _AllowList:
    hosts: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> _AllowList:
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            try:  # compare in the form URLs carry: "bücher.example" → "xn--bcher-kva.example"
                entry = entry.encode("idna").decode("ascii")
            except UnicodeError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def host_allowed(self, *names: str) -> bool:
        for name in names:
            name = name.lower().rstrip(".")
            if name in self.hosts or any(name.endswith(s) for s in self.suffixes):
                return True
        return False

    def address_allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """Addresses of ``host`` (getaddrinfo order, duplicates removed). Tests replace this."""
    future = _resolver_pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    infos = future.result(timeout=timeout)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    return list(seen)


def check_host(host: str, port: int, settings: FetchSettings, *, timeout: float) -> list[str]:
    """Resolve ``host`` and return its addresses, all of which may be connected to.

    Raises :class:`_Refused` when one of them is not public and not allowed by
    ``settings.allow_hosts``, :class:`_Unresolvable` when the name does not resolve; the caller
    turns both into FetchError.
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
    if allow.host_allowed(name):
        return addresses
    for addr in addresses:
        ip = ipaddress.ip_address(addr)
        reason = classify_address(ip)
        if reason is None or allow.address_allowed(ip):
            continue
        if literal is not None:
            raise _Refused(f"refused: {addr} is {reason} (add it to fetch.allow_hosts to allow)")
        raise _Refused(
            f"refused: {name} resolves to {addr}, which is {reason} "
            "(add it to fetch.allow_hosts to allow)"
        )
    return addresses


class _Refused(Exception):
    pass


class _Unresolvable(Exception):
    pass


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

    headers = {"User-Agent": settings.user_agent, "Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified

    try:
        with httpx.Client(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            trust_env=False,
            verify=_ssl_context(),
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
    too_big = f"response is larger than {format_size(settings.max_bytes)} (fetch.max_bytes)"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes:
        raise FetchError(original, too_big)
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > settings.max_bytes:
            raise FetchError(original, too_big)
        deadline.check()
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
