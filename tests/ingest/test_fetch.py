"""index.ingest.fetch: safe HTTP fetching against a loopback server (no internet)."""

from __future__ import annotations

import gzip
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.config import FetchSettings
from index.errors import FetchError
from index.ingest import addresses, fetch
from index.ingest.addresses import classify_address
from index.ingest.fetch import fetch_url
from index.text import format_size
from tests.fakes.http import LoopbackServer, RecordedRequest, Response, closed_port, repeat

ALLOW = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=2)
PAGE = "<html><head><title>Hello</title></head><body><p>Hi there.</p></body></html>"


@pytest.fixture
def srv() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> list[str]:
    """Resolve names from ``table`` only; returns the list of names looked up."""
    calls: list[str] = []

    def resolve(host: str, port: int, timeout: float) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError("unknown host")
        return table[host]

    monkeypatch.setattr(addresses, "_resolve", resolve)
    return calls


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.10.10", "a link-local address"),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("fd00::1", "a private address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("::ffff:10.0.0.1", "a private address"),  # IPv4-mapped
        ("2002:a00:1::", "a private address"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),  # NAT64 of 169.254.169.254
    ],
)
def test_classify_refuses_non_public_addresses(address: str, reason: str) -> None:
    assert classify_address(address) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"]
)
def test_classify_accepts_public_addresses(address: str) -> None:
    assert classify_address(address) is None


@pytest.mark.parametrize(
    "allow",
    [["intranet.test"], ["INTRANET.test."], ["*.test"], ["10.1.2.3"], ["10.0.0.0/8"]],
)
def test_allow_hosts_by_name_ip_or_cidr(monkeypatch: pytest.MonkeyPatch, allow: list[str]) -> None:
    fake_dns(monkeypatch, {"intranet.test": ["10.1.2.3"]})
    settings_ = FetchSettings(allow_hosts=allow)
    assert addresses.check_host("intranet.test", 80, settings_, timeout=1) == ["10.1.2.3"]


@pytest.mark.parametrize("allow", [[], ["other.test"], ["10.9.0.0/16"], ["*.example"]])
def test_host_resolving_to_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, allow: list[str]
) -> None:
    fake_dns(monkeypatch, {"intranet.test": ["10.1.2.3"]})
    with pytest.raises(FetchError) as err:
        fetch_url("http://intranet.test/x", FetchSettings(allow_hosts=allow))
    assert err.value.reason == (
        "refused: intranet.test resolves to 10.1.2.3, which is a private address "
        "(to allow it: `newsdesk index --allow-host intranet.test:80`, NEWSDESK_ALLOW_HOSTS or "
        "fetch.allow_hosts)"
    )


def test_any_private_address_among_several_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mixed.test": ["93.184.216.34", "192.168.1.1"]})
    with pytest.raises(FetchError, match=r"192\.168\.1\.1, which is a private address"):
        fetch_url("http://mixed.test/", FetchSettings())


def test_private_ip_literal_message() -> None:
    with pytest.raises(FetchError) as err:
        fetch_url("http://10.0.0.5/admin", FetchSettings())
    assert err.value.reason == (
        "refused: 10.0.0.5 is a private address (to allow it: `newsdesk index --allow-host "
        "10.0.0.5:80`, NEWSDESK_ALLOW_HOSTS or fetch.allow_hosts)"
    )
    assert err.value.source == "http://10.0.0.5/admin"


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest"]
)
def test_metadata_address_refused(url: str) -> None:
    with pytest.raises(FetchError, match="cloud metadata address"):
        fetch_url(url, FetchSettings())


def test_loopback_refused_without_allowlist(srv: LoopbackServer) -> None:
    srv.route("/a", PAGE)
    with pytest.raises(FetchError, match=r"refused: 127\.0\.0\.1 is a loopback address"):
        fetch_url(srv.url("/a"), FetchSettings(timeout=2))
    assert srv.requests == []  # nothing was sent


def test_localhost_name_refused_without_allowlist(srv: LoopbackServer) -> None:
    srv.route("/a", PAGE)
    with pytest.raises(FetchError, match=r"refused: localhost resolves to .*loopback"):
        fetch_url(f"http://localhost:{srv.port}/a", FetchSettings(timeout=2))
    assert srv.requests == []


def test_unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    with pytest.raises(FetchError, match=r"cannot resolve host nowhere\.test"):
        fetch_url("http://nowhere.test/", ALLOW)


# --------------------------------------------------------------------------- fetching


def test_fetch_page(srv: LoopbackServer) -> None:
    srv.route(
        "/a",
        PAGE,
        content_type="text/html; charset=ISO-8859-1",
        headers={"ETag": '"v1"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
    )
    page = fetch_url(srv.url("/a#section"), ALLOW)
    assert page.url == srv.url("/a#section")
    assert page.final_url == srv.url("/a")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.charset == "iso-8859-1"
    assert page.body == PAGE.encode()
    assert page.etag == '"v1"'
    assert page.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert not page.not_modified
    (req,) = srv.requests
    assert req.path == "/a"  # fragment never sent
    assert req.headers["user-agent"] == ALLOW.user_agent
    assert "text/html" in req.headers["accept"]
    assert req.headers["host"] == f"127.0.0.1:{srv.port}"


def test_custom_user_agent_and_accept(srv: LoopbackServer) -> None:
    srv.route("/a", PAGE)
    settings_ = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=2, user_agent="probe/9")
    fetch_url(srv.url("/a"), settings_, accept="application/rss+xml")
    (req,) = srv.requests
    assert req.headers["user-agent"] == "probe/9"
    assert req.headers["accept"] == "application/rss+xml"


def test_conditional_request_304(srv: LoopbackServer) -> None:
    def answer(req: RecordedRequest) -> Response:
        if req.headers.get("if-none-match") == '"v2"':
            return Response(304, headers={"ETag": '"v2"'})
        return Response(200, PAGE, headers={"ETag": '"v2"'}, content_type="text/html")

    srv.add("/a", answer)
    first = fetch_url(srv.url("/a"), ALLOW)
    assert first.etag == '"v2"' and first.body
    again = fetch_url(
        srv.url("/a"), ALLOW, etag=first.etag, last_modified="Wed, 21 Oct 2015 07:28:00 GMT"
    )
    assert again.not_modified and again.status == 304 and again.body == b""
    assert again.etag == '"v2"'
    last = srv.requests_to("/a")[-1]
    assert last.headers["if-none-match"] == '"v2"'
    assert last.headers["if-modified-since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert "if-none-match" not in srv.requests_to("/a")[0].headers


def test_follows_redirects(srv: LoopbackServer) -> None:
    srv.route("/final", PAGE)
    srv.redirect("/one", "/two#frag", status=301)
    srv.redirect("/two", srv.url("/final"), status=308)
    page = fetch_url(srv.url("/one"), ALLOW)
    assert page.final_url == srv.url("/final")
    assert page.url == srv.url("/one")
    assert [r.path for r in srv.requests] == ["/one", "/two", "/final"]


def test_too_many_redirects(srv: LoopbackServer) -> None:
    for i in range(7):
        srv.redirect(f"/r{i}", f"/r{i + 1}")
    srv.route("/r7", PAGE)
    with pytest.raises(FetchError, match=r"too many redirects \(more than 5\)"):
        fetch_url(srv.url("/r0"), ALLOW)
    assert len(srv.requests) == 6


def test_five_redirects_are_fine(srv: LoopbackServer) -> None:
    for i in range(5):
        srv.redirect(f"/r{i}", f"/r{i + 1}")
    srv.route("/r5", PAGE)
    assert fetch_url(srv.url("/r0"), ALLOW).final_url == srv.url("/r5")


@pytest.mark.parametrize(
    ("location", "hint"),
    [
        ("http://10.0.0.1/", "NEWSDESK_ALLOW_HOSTS or fetch.allow_hosts)"),
        ("http://169.254.169.254/latest/meta-data/", "(never allowed)"),
        ("http://[::1]/", "NEWSDESK_ALLOW_HOSTS or fetch.allow_hosts)"),
    ],
)
def test_redirect_to_refused_address(srv: LoopbackServer, location: str, hint: str) -> None:
    srv.redirect("/go", location)
    with pytest.raises(FetchError) as err:
        fetch_url(srv.url("/go"), ALLOW)
    assert err.value.source == srv.url("/go")
    assert err.value.reason.startswith(f"redirected to {location}, refused: ")
    assert err.value.reason.endswith(hint)


def test_redirect_to_host_resolving_privately(
    srv: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {"internal.test": ["192.168.1.1"]})
    srv.redirect("/go", "http://internal.test/admin")
    with pytest.raises(
        FetchError, match=r"internal\.test resolves to 192\.168\.1\.1, which is a priv"
    ):
        fetch_url(srv.url("/go"), ALLOW)


@pytest.mark.parametrize("location", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x/"])
def test_redirect_to_other_scheme_refused(srv: LoopbackServer, location: str) -> None:
    srv.redirect("/go", location)
    with pytest.raises(FetchError, match=r"refused redirect to .*: not an http\(s\) URL"):
        fetch_url(srv.url("/go"), ALLOW)


def test_connection_pinned_to_checked_address(
    srv: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """news.test exists only in the checked answer: the request must go to that address."""
    calls = fake_dns(monkeypatch, {"news.test": ["127.0.0.1"]})
    srv.route("/a", PAGE)
    page = fetch_url(
        f"http://news.test:{srv.port}/a", FetchSettings(allow_hosts=[f"news.test:{srv.port}"])
    )
    assert page.body == PAGE.encode()
    assert page.final_url == f"http://news.test:{srv.port}/a"
    assert srv.requests[0].headers["host"] == f"news.test:{srv.port}"
    assert calls == ["news.test"]  # resolved once, then connected to the checked address


def test_tries_next_address_when_first_refuses(
    srv: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 127.0.0.2 also is loopback but nothing listens on it at this port
    fake_dns(monkeypatch, {"multi.test": ["127.0.0.2", "127.0.0.1"]})
    srv.route("/a", PAGE)
    settings_ = FetchSettings(allow_hosts=["127.0.0.0/8:*"], timeout=2)
    assert fetch_url(f"http://multi.test:{srv.port}/a", settings_).status == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_pinned_with_sni_and_certificate_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=news.test",
         "-addext", "subjectAltName=DNS:news.test"],
        check=True, capture_output=True, timeout=10,
    )  # fmt: skip
    seen: dict[str, Any] = {}
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    def on_sni(_sock: Any, name: str | None, _ctx: Any) -> None:
        seen["sni"] = name

    server_ctx.sni_callback = on_sni
    with LoopbackServer() as srv:
        srv.route("/a", "secure", content_type="text/plain")
        srv._server.socket = server_ctx.wrap_socket(srv._server.socket, server_side=True)
        client_ctx = ssl.create_default_context(cafile=str(cert))
        monkeypatch.setattr(fetch, "_ssl_context", lambda: client_ctx)
        fake_dns(monkeypatch, {"news.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
        page = fetch_url(f"https://news.test:{srv.port}/a", ALLOW)
        assert page.body == b"secure"
        assert seen["sni"] == "news.test"
        assert srv.requests[0].headers["host"] == f"news.test:{srv.port}"
        # the certificate is checked against the name asked for, not the IP connected to
        with pytest.raises(FetchError, match="TLS certificate verification failed"):
            fetch_url(f"https://other.test:{srv.port}/a", ALLOW)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error"), (410, "HTTP 410 Gone")],
)
def test_http_errors(srv: LoopbackServer, status: int, reason: str) -> None:
    srv.route("/x", "nope", status=status)
    with pytest.raises(FetchError) as err:
        fetch_url(srv.url("/x"), ALLOW)
    assert err.value.reason == reason
    assert str(err.value) == f"{srv.url('/x')}: {reason}"


def test_timeout_waiting_for_headers(srv: LoopbackServer) -> None:
    srv.route("/slow", PAGE, delay=3)
    start = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch_url(srv.url("/slow"), FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=0.4))
    assert err.value.reason == "timed out after 0.4s"
    assert time.monotonic() - start < 1.5


def test_overall_deadline_for_trickling_body(srv: LoopbackServer) -> None:
    srv.route("/trickle", repeat(b"x" * 10, 100), chunk_delay=0.05)  # 5 s in all
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 0\.5s"):
        fetch_url(srv.url("/trickle"), FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=0.5))
    assert time.monotonic() - start < 1.5


def test_connection_refused() -> None:
    port = closed_port()
    with pytest.raises(FetchError) as err:
        fetch_url(f"http://127.0.0.1:{port}/", ALLOW)
    assert err.value.reason.startswith("cannot connect")


def test_unsupported_content_type_refused_before_download(srv: LoopbackServer) -> None:
    srv.route("/doc.pdf", repeat(b"%PDF" * 16384, 20), content_type="application/pdf")
    with pytest.raises(FetchError) as err:
        fetch_url(srv.url("/doc.pdf"), ALLOW, allow_type=lambda media: media.startswith("text/"))
    assert err.value.reason == "unsupported content type application/pdf"


@pytest.mark.parametrize("declare_length", [True, False])
def test_oversize_response(srv: LoopbackServer, declare_length: bool) -> None:
    body = b"x" * 1_200_000
    srv.route("/big", body if declare_length else repeat(body[:100_000], 12))
    settings_ = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=2, max_bytes=1_000_000)
    with pytest.raises(FetchError) as err:
        fetch_url(srv.url("/big"), settings_)
    assert err.value.reason == "response is larger than 1 MB (fetch.max_bytes)"


def test_size_limit_applies_after_decompression(srv: LoopbackServer) -> None:
    bomb = gzip.compress(b"\0" * 3_000_000)
    assert len(bomb) < 10_000
    srv.route("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    settings_ = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=2, max_bytes=1_000_000)
    with pytest.raises(FetchError, match="larger than 1 MB"):
        fetch_url(srv.url("/bomb"), settings_)


def test_body_at_the_limit_is_fine(srv: LoopbackServer) -> None:
    srv.route("/ok", b"y" * 2048, content_type="text/plain")
    settings_ = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=2, max_bytes=2048)
    assert len(fetch_url(srv.url("/ok"), settings_).body) == 2048


def test_truncated_response(srv: LoopbackServer) -> None:
    srv.route("/cut", repeat(b"abc", 1), headers={"Content-Length": "1000"})
    with pytest.raises(FetchError, match="closed the connection"):
        fetch_url(srv.url("/cut"), ALLOW)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "file:///etc/passwd", "javascript:alert(1)", "example.com"]
)
def test_only_http_urls(url: str) -> None:
    with pytest.raises(FetchError) as err:
        fetch_url(url, ALLOW)
    assert err.value.reason == "not an http(s) URL"


@pytest.mark.parametrize("url", ["http://", "http:///path", "https://[::1/"])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(FetchError, match="not a valid URL"):
        fetch_url(url, ALLOW)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rest=st.text(max_size=40))
def test_fetch_raises_only_fetch_error(monkeypatch: pytest.MonkeyPatch, rest: str) -> None:
    fake_dns(monkeypatch, {})  # no network: every name fails to resolve
    for url in ("http://" + rest, "https://" + rest, rest):
        with pytest.raises(FetchError):
            fetch_url(url, FetchSettings(timeout=0.5))


def test_fetches_in_parallel_threads(srv: LoopbackServer) -> None:
    srv.route("/a", PAGE, delay=0.2)
    results: list[int] = []

    def run() -> None:
        results.append(fetch_url(srv.url("/a"), ALLOW).status)

    threads = [threading.Thread(target=run) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert time.monotonic() - start < 0.7


def test_format_size() -> None:
    assert format_size(10_000_000) == "10 MB"
    assert format_size(20_000_000) == "20 MB"
    assert format_size(1_500_000) == "1.5 MB"
    assert format_size(2048) == "2.05 kB"
    assert format_size(12) == "12 bytes"
