"""Hostile remote servers against every fetch path (issue 15, items 1, 2, 4, 10, 11, 12 and the
``index -q`` noise of 15): loopback servers stand in for remote ones.

- a feed whose body is a local path, relative path or FIFO: never opened (feedparser gets a file
  object only);
- decompression bombs, single and stacked (gzip, x-gzip, deflate, raw deflate, "gzip, gzip",
  "gzip, deflate"): peak memory stays near ``fetch.max_bytes``; br/zstd and three stages refused;
- headers (or a status line) trickled a byte at a time: the whole fetch ends by ``fetch.timeout``;
- a non-text charset in Content-Type or in the document: a one-line error, never a traceback;
- a feed of many entries: at most ``fetch.max_feed_entries`` articles fetched per round, the rest
  at the next rounds (even when the feed answers 304);
- ``fetch.allow_hosts``: link-local and metadata addresses never allowed, ports named.
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from index.config import FetchSettings, Settings, load_settings
from index.errors import ConfigError, FetchError, SourceError
from index.feeds.engine import SyncEngine
from index.ingest import addresses, decode, fetch
from index.ingest.feeds import poll_feed
from index.ingest.fetch import fetch_url
from index.ingest.sources import collect
from index.pipeline import Pipeline
from tests.conftest import Nd
from tests.fakes.feeds import FeedSite
from tests.fakes.http import LoopbackServer, Response

ALLOW = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=3)
PAGE = (
    "<html><head><title>Harbour news</title></head><body><article><h1>Harbour news</h1>"
    "<p>The ferry to the island sails twice a day from the harbour during the summer.</p>"
    "</article></body></html>"
)
RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>{items}'
    "</channel></rss>"
)


def item(title: str, link: str, summary: str = "") -> str:
    return (
        f"<item><title>{title}</title><link>{link}</link>"
        f"<description>{summary}</description></item>"
    )


@pytest.fixture
def srv() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    def resolve(host: str, port: int, timeout: float) -> list[str]:
        if host not in table:
            raise OSError("unknown host")
        return table[host]

    monkeypatch.setattr(addresses, "_resolve", resolve)


# --------------------------------------------------------------------------- 1: feed bodies


def secret_feed(tmp_path: Path, srv: LoopbackServer) -> Path:
    """A local feed file whose only entry carries a secret in its text and links to a 404."""
    path = tmp_path / "secret.xml"
    path.write_text(
        RSS.format(items=item("Local secret", srv.url("/gone"), "SECRET-7f3a local file text")),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("spelling", ["absolute", "relative"])
def test_feed_body_naming_a_local_file_is_not_read(
    srv: LoopbackServer, tmp_path: Path, spelling: str
) -> None:
    path = secret_feed(tmp_path, srv)  # the tests run with tmp_path as working directory
    body = {"absolute": str(path), "relative": path.name}[spelling]
    srv.route("/feed.xml", body, content_type="application/rss+xml")
    res = collect([srv.url("/feed.xml")], ALLOW)
    assert res.documents == []
    assert "SECRET" not in repr(res)
    assert [e.reason for e in res.errors] in (
        ["not a valid RSS or Atom feed"],
        ["feed has no entries"],
    )
    # the subscription path (newsdesk sync, /subscribe, every poll) too
    with pytest.raises(SourceError) as err:
        poll_feed(srv.url("/feed.xml"), ALLOW)
    assert "SECRET" not in str(err.value)
    assert srv.requests_to("/gone") == []


def test_feed_body_that_is_a_url_is_not_fetched(srv: LoopbackServer, tmp_path: Path) -> None:
    srv.route("/other.xml", secret_feed(tmp_path, srv).read_text(), content_type="text/xml")
    for body in (srv.url("/other.xml"), f"file://{tmp_path / 'secret.xml'}"):
        srv.route("/feed.xml", body, content_type="application/rss+xml")
        res = collect([srv.url("/feed.xml")], ALLOW)
        assert res.documents == [] and "SECRET" not in repr(res)
    assert srv.requests_to("/other.xml") == [] and srv.requests_to("/gone") == []


@pytest.mark.parametrize("media", ["text/html", "text/plain", "text/markdown", "application/xml"])
def test_page_body_naming_a_local_file_is_text_not_a_file(
    srv: LoopbackServer, tmp_path: Path, media: str
) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("<html><body><p>SECRET-7f3a in a local file.</p></body></html>")
    srv.route("/page", str(secret), content_type=media)
    res = collect([srv.url("/page")], ALLOW)
    assert "SECRET" not in repr(res)


def test_feed_body_naming_a_fifo_does_not_hang(srv: LoopbackServer, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.xml"
    os.mkfifo(fifo)
    srv.route("/feed.xml", str(fifo), content_type="application/rss+xml")
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.append(collect([srv.url("/feed.xml")], ALLOW)), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    try:
        assert not worker.is_alive(), "the feed's body was opened as a file (a FIFO blocks)"
    finally:
        if worker.is_alive():  # unblock the open() so the thread can end
            with open(fifo, "wb"):
                pass
    (res,) = outcome
    assert res.documents == [] and len(res.errors) == 1  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- 2: bombs


def deflate_stream(coding: str, size: int) -> bytes:
    """``size`` zero bytes compressed with ``coding`` (gzip, deflate = zlib, raw), streamed."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw": -zlib.MAX_WBITS}
    c = zlib.compressobj(9, zlib.DEFLATED, wbits[coding])
    block = b"\0" * 1_000_000
    parts = [c.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + c.flush()


def peak_bytes(fn: Callable[[], object]) -> tuple[int, object]:
    """Peak memory traced while ``fn`` runs (one-time imports and the TLS context made before)."""
    import feedparser  # noqa: F401
    import httpcore  # noqa: F401

    fetch._ssl_context()
    tracemalloc.start()
    try:
        try:
            result: object = fn()
        except Exception as e:
            result = e
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


BOMBS = {
    "gzip": ("gzip", ["gzip"]),
    "x-gzip": ("x-gzip", ["gzip"]),
    "deflate": ("deflate", ["deflate"]),
    "raw deflate": ("deflate", ["raw"]),
    "gzip, gzip": ("gzip, gzip", ["gzip", "gzip"]),
    "gzip, deflate": ("gzip, deflate", ["gzip", "deflate"]),
    "deflate, gzip (two headers)": ("deflate\ngzip", ["deflate", "gzip"]),
}


def bomb(layers: list[str], size: int = 96_000_000) -> bytes:
    data = deflate_stream(layers[0], size)
    for coding in layers[1:]:
        c = zlib.compressobj(
            9, zlib.DEFLATED, {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[coding]
        )
        data = c.compress(data) + c.flush()
    return data


class _RawServer:
    """Answers every connection with ``handler(conn)`` (a hand-written HTTP response)."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.handler = handler
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            try:
                self.handler(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def serve_encoded(header: str, body: bytes) -> _RawServer:
    """A response with ``Content-Encoding`` lines as given (newline = another header line)."""

    def answer(conn: socket.socket) -> None:
        lines = "".join(f"Content-Encoding: {v}\r\n" for v in header.split("\n"))
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
            f"{lines}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        conn.sendall(head.encode() + body)

    return _RawServer(answer)


@pytest.mark.parametrize("name", list(BOMBS))
def test_decompression_bomb_stops_at_the_limit_as_it_is_produced(name: str) -> None:
    header, layers = BOMBS[name]
    body = bomb(layers)
    assert len(body) < 200_000  # ~96 MB of zeros
    server = serve_encoded(header, body)
    try:
        settings_ = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=10, max_bytes=1_000_000)
        peak, result = peak_bytes(
            lambda: fetch_url(f"http://127.0.0.1:{server.port}/bomb", settings_)
        )
    finally:
        server.close()
    assert isinstance(result, FetchError), result
    assert result.reason == "response is larger than 1 MB (fetch.max_bytes)"
    # at most a few times the limit in memory at once (httpx inflated a network chunk whole)
    assert peak < 12_000_000, f"{peak / 1e6:.0f} MB in memory for a 1 MB limit"


@pytest.mark.parametrize(
    ("header", "layers"),
    [
        ("gzip", ["gzip"]),
        ("x-gzip", ["gzip"]),
        ("deflate", ["deflate"]),
        ("deflate", ["raw"]),
        ("gzip, deflate", ["gzip", "deflate"]),
        ("identity, gzip", ["gzip"]),
    ],
)
def test_compressed_pages_still_decode(header: str, layers: list[str]) -> None:
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw": -zlib.MAX_WBITS}
    body = PAGE.encode()
    for coding in layers:
        c = zlib.compressobj(6, zlib.DEFLATED, wbits[coding])
        body = c.compress(body) + c.flush()
    server = serve_encoded(header, body)
    try:
        page = fetch_url(f"http://127.0.0.1:{server.port}/", ALLOW)
    finally:
        server.close()
    assert page.body == PAGE.encode()


@pytest.mark.parametrize("step", [1, 2, 7, 4096])
def test_decoder_fed_in_any_pieces_gives_the_whole_body(step: int) -> None:
    data = gzip.compress(b"a" * 100_000) + gzip.compress(b"b" * 5) + b"trailing"
    decoder = decode.BodyDecoder(["gzip"], 1_000_000)
    out = b"".join(p for i in range(0, len(data), step) for p in decoder.feed(data[i : i + step]))
    assert out + b"".join(decoder.finish()) == b"a" * 100_000 + b"b" * 5


def test_multi_member_gzip_decodes_whole() -> None:
    server = serve_encoded("gzip", gzip.compress(b"first half, ") + gzip.compress(b"second half"))
    try:
        assert fetch_url(f"http://127.0.0.1:{server.port}/", ALLOW).body == (
            b"first half, second half"
        )
    finally:
        server.close()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("br", "unsupported Content-Encoding br"),
        ("zstd", "unsupported Content-Encoding zstd"),
        ("gzip, br", "unsupported Content-Encoding br"),
        (
            "gzip, gzip, gzip",
            "refused: the response is compressed 3 times over (Content-Encoding gzip, gzip, gzip)",
        ),
        ("gzip", "cannot decode the response (bad compression)"),
    ],
)
def test_undecodable_encodings_refused_in_one_line(header: str, reason: str) -> None:
    server = serve_encoded(header, b"\x1f\x8b\x08\x00not really compressed" * 10)
    try:
        with pytest.raises(FetchError) as err:
            fetch_url(f"http://127.0.0.1:{server.port}/", ALLOW)
    finally:
        server.close()
    assert err.value.reason == reason


def test_bombs_stop_on_feed_entry_and_poll_paths(srv: LoopbackServer) -> None:
    stacked = bomb(["gzip", "gzip"], 48_000_000)
    srv.route("/bomb", stacked, headers={"Content-Encoding": "gzip, gzip"})
    srv.route(
        "/feed.xml",
        RSS.format(items=item("Bomb", srv.url("/bomb"))),
        content_type="application/rss+xml",
    )
    srv.route("/bombfeed.xml", stacked, content_type="application/rss+xml",
              headers={"Content-Encoding": "gzip, gzip"})  # fmt: skip
    settings_ = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=10, max_bytes=1_000_000)
    peak, res = peak_bytes(lambda: collect([srv.url("/feed.xml")], settings_))
    assert peak < 12_000_000
    assert [e.reason for e in res.errors] == ["none of the 1 feed entries could be read"]  # type: ignore[attr-defined]
    assert [w.reason for w in res.warnings] == ["response is larger than 1 MB (fetch.max_bytes)"]  # type: ignore[attr-defined]
    peak, err = peak_bytes(lambda: poll_feed(srv.url("/bombfeed.xml"), settings_))
    assert peak < 12_000_000
    assert isinstance(err, FetchError) and "larger than 1 MB" in err.reason


# --------------------------------------------------------------------------- 4: slow headers


def trickle(first: bytes, rest: bytes, pause: float) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.sendall(first)
        for i in range(len(rest)):
            time.sleep(pause)
            conn.sendall(rest[i : i + 1])

    return answer


SLOW_HEADERS = b"X-Padding: " + b"a" * 200 + b"\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize(
    ("first", "rest"),
    [
        (b"HTTP/1.1 200 OK\r\n", SLOW_HEADERS),  # headers a byte at a time
        (b"", b"HTTP/1.1 200 OK\r\n" + SLOW_HEADERS),  # the status line too
    ],
)
def test_trickled_headers_end_by_the_deadline(first: bytes, rest: bytes) -> None:
    server = _RawServer(trickle(first, rest, 0.02))  # ~5 s in all, never 0.5 s quiet
    try:
        start = time.monotonic()
        with pytest.raises(FetchError) as err:
            fetch_url(
                f"http://127.0.0.1:{server.port}/",
                FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=0.6),
            )
        elapsed = time.monotonic() - start
    finally:
        server.close()
    assert err.value.reason == "timed out after 0.6s"
    assert elapsed < 1.5


def test_trickled_tls_handshake_ends_by_the_deadline() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)  # the ClientHello
            for byte in b"\x16\x03\x03\x01\x00\x02" + b"\x00" * 255:  # a ServerHello, slowly
                time.sleep(0.02)
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    port = int(listener.getsockname()[1])
    start = time.monotonic()
    try:
        with pytest.raises(FetchError, match=r"timed out after 0\.6s"):
            fetch_url(
                f"https://127.0.0.1:{port}/",
                FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=0.6),
            )
    finally:
        listener.close()
    assert time.monotonic() - start < 1.5


def test_deadline_spans_every_redirect_hop(srv: LoopbackServer) -> None:
    """A quick redirect, then a hop that trickles its headers: one deadline for both."""
    server = _RawServer(trickle(b"HTTP/1.1 200 OK\r\n", SLOW_HEADERS, 0.02))
    try:
        srv.add("/go", Response(302, headers={"Location": f"http://127.0.0.1:{server.port}/"},
                                delay=0.3))  # fmt: skip
        start = time.monotonic()
        with pytest.raises(FetchError, match=r"timed out after 0\.6s"):
            fetch_url(srv.url("/go"), FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=0.6))
        assert time.monotonic() - start < 1.5
    finally:
        server.close()


# --------------------------------------------------------------------------- 10: charsets

NON_TEXT = ["zlib", "base64", "rot13", "idna", "punycode", "undefined", "hex", "bz2", "uu",
            "quopri", "unicode_escape", "zlib_codec"]  # fmt: skip


@pytest.mark.parametrize("charset", NON_TEXT)
def test_non_text_charset_in_content_type_is_one_line_error(
    srv: LoopbackServer, charset: str
) -> None:
    srv.route("/a", PAGE, content_type=f"text/html; charset={charset}")
    with pytest.raises(FetchError) as err:
        fetch_url(srv.url("/a"), ALLOW)
    assert err.value.reason == f"unsupported charset {charset!r} (not a text encoding)"
    res = collect([srv.url("/a")], ALLOW)
    assert [e.reason for e in res.errors] == [err.value.reason]


@pytest.mark.parametrize("charset", NON_TEXT)
def test_non_text_charset_declared_in_the_page_is_ignored(
    srv: LoopbackServer, charset: str
) -> None:
    srv.route("/a", PAGE.replace("<head>", f'<head><meta charset="{charset}">'),
              content_type="text/html")  # fmt: skip
    res = collect([srv.url("/a")], ALLOW)
    assert res.errors == [] and len(res.documents) == 1
    assert "ferry to the island" in res.documents[0].text


@pytest.mark.parametrize("charset", ["undefined", "punycode", "zlib", "idna"])
def test_feed_declaring_a_non_text_encoding_is_one_line_error(
    srv: LoopbackServer, charset: str
) -> None:
    srv.route("/a", PAGE)
    feed = RSS.format(items=item("A", srv.url("/a"))).replace("utf-8", charset)
    srv.route("/feed.xml", feed, content_type="application/rss+xml")
    res = collect([srv.url("/feed.xml")], ALLOW)
    assert [e.reason for e in res.errors] == [
        f"unsupported charset {charset!r} (not a text encoding)"
    ]
    with pytest.raises(SourceError, match="unsupported charset"):
        poll_feed(srv.url("/feed.xml"), ALLOW)


def test_unknown_charset_names_still_fall_back_to_utf8(srv: LoopbackServer) -> None:
    srv.route("/a", PAGE, content_type="text/html; charset=utf8mb4")
    res = collect([srv.url("/a")], ALLOW)
    assert res.errors == [] and "ferry" in res.documents[0].text


# --------------------------------------------------------------------------- 11: entry cap


def many_entries(srv: LoopbackServer, n: int) -> None:
    items = "".join(item(f"Story {i}", srv.url(f"/s{i}")) for i in range(n))
    srv.route("/feed.xml", RSS.format(items=items), content_type="application/rss+xml")
    for i in range(n):
        srv.route(f"/s{i}", PAGE.replace("Harbour news", f"Story {i}"))


def article_requests(srv: LoopbackServer) -> int:
    return sum(1 for r in srv.requests if r.path.startswith("/s"))


def test_feed_entries_fetched_are_capped_and_the_rest_reported(srv: LoopbackServer) -> None:
    many_entries(srv, 30)
    capped = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=3, max_feed_entries=5)
    res = collect([srv.url("/feed.xml")], capped)
    assert [d.title for d in res.documents] == [f"Story {i}" for i in range(5)]
    assert article_requests(srv) == 5
    assert [w.reason for w in res.warnings] == [
        "25 more entries not fetched (at most 5 per feed: fetch.max_feed_entries)"
    ]
    poll = poll_feed(srv.url("/feed.xml"), capped)
    assert len(poll.documents) == 5 and poll.deferred == 25 and len(poll.entries) == 30
    assert [w.reason for w in poll.warnings] == [
        "25 new entries left for the next round (at most 5 fetched per round: "
        "fetch.max_feed_entries)"
    ]


def test_subscription_fetches_the_rest_at_later_rounds_even_with_304(
    srv: LoopbackServer, settings: Settings, pipeline: Pipeline
) -> None:
    settings.fetch.allow_hosts = ["127.0.0.1:*"]
    settings.fetch.max_feed_entries = 4
    site = FeedSite(srv, validators="etag")
    for i in range(10):
        site.publish(f"/p{i}", f"Story {i}", f"Story number {i} is about the harbour. " * 3)
    engine = SyncEngine(pipeline)
    try:
        _status, res = engine.subscribe("feed", site.url)
        assert res.ok and res.added == 4
        assert any("6 new entries left for the next round" in s for s in res.skipped)
        (res,) = engine.run_all()
        assert res.ok and not res.not_modified and res.added == 4
        (res,) = engine.run_all()
        assert res.ok and res.added == 2 and not any("next round" in s for s in res.skipped)
        (res,) = engine.run_all()
        assert res.not_modified  # everything fetched: conditional requests again
    finally:
        engine.close()
    assert len(pipeline.list_articles()) == 10
    assert sum(len(srv.requests_to(f"/p{i}")) for i in range(10)) == 10


# --------------------------------------------------------------------------- 12: allow_hosts

NEVER = [
    "169.254.169.254",  # metadata
    "169.254.170.2",  # ECS task metadata (link-local)
    "169.254.0.23",  # Tencent metadata (link-local)
    "fe80::1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "fd00:ec2::254",
    "100.100.100.200",
    "168.63.129.16",  # Azure wire server, a public address
    "0.0.0.0",
    "0.1.2.3",  # "this network": reaches the host itself
    "224.0.0.1",
]


@pytest.mark.parametrize("address", NEVER)
@pytest.mark.parametrize(
    "allow",
    [
        ["meta.test"],
        ["*.test"],
        ["meta.test:*"],
        ["169.254.0.0/16", "fe80::/10", "0.0.0.0/0", "::/0"],
        ["0.0.0.0/0:*", "[::/0]:*"],
    ],
)
def test_metadata_and_link_local_are_never_allowed(
    monkeypatch: pytest.MonkeyPatch, address: str, allow: list[str]
) -> None:
    fake_dns(monkeypatch, {"meta.test": [address]})
    with pytest.raises(addresses.Refused) as err:
        addresses.check_host("meta.test", 80, FetchSettings(allow_hosts=allow), timeout=1)
    assert str(err.value).startswith(f"refused: meta.test resolves to {address}, which is ")
    assert str(err.value).endswith("(never allowed)")


@pytest.mark.parametrize(
    ("allow", "port", "ok"),
    [
        (["intranet.test"], 80, True),
        (["intranet.test"], 443, True),
        (["intranet.test"], 8080, False),
        (["intranet.test"], 22, False),
        (["intranet.test:8080"], 8080, True),
        (["intranet.test:8080"], 8081, False),
        (["intranet.test:8080"], 80, False),
        (["*.test:*"], 6379, True),
        (["*.test"], 6379, False),
        (["10.1.2.3"], 5432, False),
        (["10.1.2.3:5432"], 5432, True),
        (["10.0.0.0/8:9000"], 9000, True),
        (["10.0.0.0/8:9000"], 9001, False),
        (["10.0.0.0/8:*"], 11211, True),
    ],
)
def test_allow_hosts_entries_name_their_ports(
    monkeypatch: pytest.MonkeyPatch, allow: list[str], port: int, ok: bool
) -> None:
    fake_dns(monkeypatch, {"intranet.test": ["10.1.2.3"]})
    settings_ = FetchSettings(allow_hosts=allow)
    if ok:
        assert addresses.check_host("intranet.test", port, settings_, timeout=1) == ["10.1.2.3"]
        return
    with pytest.raises(addresses.Refused) as err:
        addresses.check_host("intranet.test", port, settings_, timeout=1)
    assert f"not on port {port}" in str(err.value)
    assert f'add "intranet.test:{port}" to allow it' in str(err.value)


@pytest.mark.parametrize(
    ("allow", "port", "ok"),
    [
        (["fd00::5"], 443, True),
        (["fd00::5"], 8443, False),
        (["[fd00::5]:8443"], 8443, True),
        (["[fd00::/8]:*"], 1234, True),
    ],
)
def test_allow_hosts_ipv6_entries_and_ports(
    monkeypatch: pytest.MonkeyPatch, allow: list[str], port: int, ok: bool
) -> None:
    fake_dns(monkeypatch, {"v6.test": ["fd00::5"]})
    settings_ = FetchSettings(allow_hosts=allow)
    if ok:
        assert addresses.check_host("v6.test", port, settings_, timeout=1) == ["fd00::5"]
    else:
        with pytest.raises(addresses.Refused, match=r'add "v6\.test:8443" to allow it'):
            addresses.check_host("v6.test", port, settings_, timeout=1)


def test_allowed_loopback_host_does_not_open_every_port(srv: LoopbackServer) -> None:
    srv.route("/a", PAGE)
    with pytest.raises(FetchError) as err:
        fetch_url(srv.url("/a"), FetchSettings(allow_hosts=["127.0.0.1"], timeout=2))
    assert err.value.reason == (
        f"refused: 127.0.0.1 is a loopback address, allowed by fetch.allow_hosts on ports 80 "
        f'and 443 only, not on port {srv.port} (add "127.0.0.1:{srv.port}" to allow it)'
    )
    assert srv.requests == []  # never contacted
    page = fetch_url(srv.url("/a"), FetchSettings(allow_hosts=[f"127.0.0.1:{srv.port}"]))
    assert page.body == PAGE.encode()


def test_public_addresses_need_no_entry_on_any_port(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"news.test": ["93.184.216.34"]})
    assert addresses.check_host("news.test", 8080, FetchSettings(), timeout=1) == ["93.184.216.34"]


# --------------------------------------------------------------------------- 15: -q


def test_index_quiet_prints_no_extractor_log_lines(nd: Nd, tmp_path: Path) -> None:
    odd = tmp_path / "odd.html"
    odd.write_text('<?xml version="1.0"?><x/>', encoding="utf-8")  # trafilatura logs 2 ERRORs
    good = tmp_path / "good.html"
    good.write_text(PAGE, encoding="utf-8")
    for flags in (["-q"], []):
        r = nd("index", *flags, str(odd), str(good))
        assert r.code == 1 and "no text" in r.err
        assert "trafilatura" not in r.err and "ERROR" not in r.err, r.err


@pytest.mark.parametrize("entry", ["host:abc", "host:70000", "http://intranet.test", "[::1"])
def test_malformed_allow_hosts_entry_is_a_config_error(tmp_path: Path, entry: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[fetch]\nallow_hosts = ["10.0.0.0/8:*", "{entry}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(err.value).startswith(f"{config}: fetch.allow_hosts[1] must be a host name")


@pytest.mark.parametrize("value", [0, -1, 10_001])
def test_max_feed_entries_is_validated(tmp_path: Path, value: int) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[fetch]\nmax_feed_entries = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fetch\.max_feed_entries must be an integer between"):
        load_settings(config)
