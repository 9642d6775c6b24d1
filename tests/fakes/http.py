"""A small loopback HTTP server for tests (127.0.0.1, a free port, one thread per request).

    with LoopbackServer() as srv:
        srv.route("/a", body="<html>...</html>", content_type="text/html")
        srv.redirect("/old", "/a")
        srv.route("/slow", body="x", delay=3)                 # timeouts
        srv.route("/big", body=[b"x" * 65536] * 100)          # streamed, no Content-Length
        srv.add("/echo", lambda req: Response(body=req.headers.get("user-agent", "")))
        fetch(srv.url("/a"))
        assert srv.requests_to("/a")[0].headers["if-none-match"] == '"v1"'

Unknown paths answer 404. Every request is recorded (method, path, headers with lower-case
names, body) in ``srv.requests``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Body = bytes | str | Iterable[bytes]


@dataclass
class Response:
    """What a route answers. An iterable body is streamed chunk by chunk, without a length."""

    status: int = 200
    body: Body = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0  # seconds to wait before the status line (connect fine, read times out)
    chunk_delay: float = 0.0  # seconds to wait before each chunk of an iterable body


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names in lower case
    body: bytes


Handler = Callable[[RecordedRequest], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that time out or close early are expected in these tests
        log.debug("loopback server: error while answering %s", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("loopback server: " + format, *args)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        owner = self.server.owner
        with owner._lock:
            owner.requests.append(req)
        handler = owner._find(self.path)
        response = (
            handler(req) if handler else Response(404, "not found", content_type="text/plain")
        )
        self._send(response)

    do_GET = do_HEAD = do_POST = _handle

    def _send(self, response: Response) -> None:
        if response.delay:
            time.sleep(response.delay)
        self.send_response(response.status)
        headers = {k.lower(): v for k, v in response.headers.items()}
        if response.content_type is not None:
            headers.setdefault("content-type", response.content_type)
        body = response.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        if isinstance(body, bytes):
            headers.setdefault("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        chunks: Iterable[bytes] = [body] if isinstance(body, bytes) else body
        for chunk in chunks:
            if response.chunk_delay:
                time.sleep(response.chunk_delay)
            self.wfile.write(chunk)
            self.wfile.flush()


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 with routes registered by the test."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _RequestHandler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    # -- routes
    def add(self, path: str, handler: Response | Handler) -> None:
        """Answer ``path`` (exact, or without its query string) with a Response or a callable."""
        if isinstance(handler, Response):
            fixed = handler

            def answer(_req: RecordedRequest) -> Response:
                return fixed

            handler = answer
        with self._lock:
            self._routes[path] = handler

    def route(
        self,
        path: str,
        body: Body = b"",
        *,
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> None:
        self.add(
            path,
            Response(
                status=status,
                body=body,
                headers=dict(headers or {}),
                content_type=content_type,
                delay=delay,
                chunk_delay=chunk_delay,
            ),
        )

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.add(path, Response(status=status, headers={"Location": location}))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if urlsplit(r.path).path == path or r.path == path]

    def _find(self, raw_path: str) -> Handler | None:
        with self._lock:
            return self._routes.get(raw_path) or self._routes.get(urlsplit(raw_path).path)


def closed_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def repeat(chunk: bytes, times: int) -> Iterator[bytes]:
    """A streamed body of ``times`` copies of ``chunk``."""
    for _ in range(times):
        yield chunk
