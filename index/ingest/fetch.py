"""Safe HTTP fetching: http(s) only, no private addresses, bounded size and time.

Which addresses may be fetched is decided by :mod:`index.ingest.addresses` (the guard against
server-side request forgery) before every request and on every redirect hop; the body is
decoded within ``fetch.max_bytes`` by :mod:`index.ingest.decode`.

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
"""

from __future__ import annotations

import functools
import http
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from index.config import FetchSettings
from index.errors import FetchError
from index.ingest.addresses import Refused, Unresolvable, check_host
from index.ingest.decode import ACCEPT_ENCODING, BadEncoding, BodyDecoder, TooBig, content_codings
from index.ingest.extract import unusable_charset
from index.lazy import lazy_module
from index.text import format_size

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


def _seconds(t: float) -> str:
    return f"{t:g}s"


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
    except Refused as e:
        raise FetchError(original, prefix + str(e)) from None
    except Unresolvable as e:
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
        decoder = BodyDecoder(content_codings(response), settings.max_bytes)
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
    except TooBig:
        raise FetchError(original, too_big) from None
    except BadEncoding:
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
