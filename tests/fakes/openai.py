"""A loopback fake of an OpenAI-compatible ``/v1/chat/completions`` endpoint, scripted per test.

    with FakeOpenAI() as llm:
        llm.reply = lambda req: f'Paul Martin won [{req.passage_with("Lyon")}].'
        settings.llm.base_url, settings.llm.model = llm.base_url, "fake"
        ...
        llm.mode = "hang"           # or "error", "garbage", "stall"; "ok" is the default
        assert llm.requests[-1].stream

It answers like llama.cpp's server, Ollama or vLLM: one JSON chat completion, or -- when the
request says ``"stream": true`` -- Server-Sent Events (``data: {chunk}`` per piece of text, then
``data: [DONE]``). ``reply`` is the text (a string, or a function of the :class:`ChatRequest`
that can look at the numbered passages the prompt carried). Modes:

- ``"ok"``: the reply (streamed in pieces of a few characters, ``piece_delay`` seconds apart);
- ``"error"``: HTTP ``status`` (500) with an OpenAI-style error body;
- ``"garbage"``: HTTP 200 that is not the protocol (HTML; or SSE events that are not JSON);
- ``"hang"``: accepts the request and never answers (until the server stops);
- ``"stall"``: streams the first pieces, then never sends another byte;
- ``"cut"``: streams the first pieces, then closes the connection (no ``[DONE]``).

``finish_reason`` is what the last chunk says (``"length"``: cut at ``max_tokens``);
``error_message`` (text, or a function of the request) is the message of an ``"error"`` reply.

``ignore_stream`` answers one JSON object even to a streaming request (some servers do).
Every request is recorded in ``requests`` with its headers and JSON body.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tests.fakes.http import LoopbackServer, RecordedRequest, Response

_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] (.*)$")


@dataclass
class ChatRequest:
    """One request to the fake, parsed."""

    headers: dict[str, str]
    body: dict[str, Any]
    passages: dict[int, tuple[str, str]] = field(default_factory=dict)  # n -> (title, text)
    question: str = ""

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self.body.get("messages") or [])

    def passage_with(self, word: str) -> int:
        """The number of the first passage whose text contains ``word``."""
        for n, (_title, text) in sorted(self.passages.items()):
            if word in text:
                return n
        raise AssertionError(f"no passage contains {word!r}: {self.passages}")

    def sentence_with(self, word: str) -> str:
        """The sentence of a passage that contains ``word``, verbatim, without its full stop."""
        text = self.passages[self.passage_with(word)][1]
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if word in sentence:
                return sentence.rstrip(".!?")
        raise AssertionError(word)


def parse_request(req: RecordedRequest) -> ChatRequest:
    body = json.loads(req.body or b"{}")
    out = ChatRequest(headers=req.headers, body=body)
    user = next((m["content"] for m in reversed(out.messages) if m.get("role") == "user"), "")
    current: int | None = None
    lines: list[str] = []
    for line in user.split("\n"):
        head = _PASSAGE_HEAD.match(line)
        if head:
            current = int(head.group(1))
            out.passages[current] = (head.group(2), "")
            lines = []
        elif line.startswith("Question: "):
            out.question = line[len("Question: ") :]
            current = None
        elif current is not None and line.strip():
            lines.append(line)
            out.passages[current] = (out.passages[current][0], "\n".join(lines))
    return out


class FakeOpenAI:
    def __init__(self) -> None:
        self.server = LoopbackServer()
        self.server.add("/v1/chat/completions", self._handle)
        self.reply: str | Callable[[ChatRequest], str] = "NOT IN THE ARTICLES"
        self.mode = "ok"
        self.status = 500
        self.piece_chars = 6
        self.piece_delay = 0.0
        self.ignore_stream = False
        self.model = "fake-llm-1"
        self.finish_reason = "stop"
        self.error_message: str | Callable[[ChatRequest], str] = "the model crashed"
        self.requests: list[ChatRequest] = []
        self._release = threading.Event()

    # -- lifecycle
    def start(self) -> FakeOpenAI:
        self.server.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hanging handlers finish
        self.server.stop()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self.server.url("/v1")

    # -- answering
    def _text(self, req: ChatRequest) -> str:
        return self.reply(req) if callable(self.reply) else self.reply

    def _handle(self, raw: RecordedRequest) -> Response:
        req = parse_request(raw)
        self.requests.append(req)
        if self.mode == "hang":
            self._release.wait(120)
            return Response(503, "gave up")
        if self.mode == "error":
            msg = self.error_message(req) if callable(self.error_message) else self.error_message
            body = {"error": {"message": msg, "type": "server_error"}}
            return Response(self.status, json.dumps(body), content_type="application/json")
        if self.mode == "garbage":
            if req.stream:
                events = [b"data: {not json at all\n\n", b"data: [DONE]\n\n"]
                return Response(200, events, content_type="text/event-stream")
            return Response(
                200, "<html><body>502 Bad Gateway</body></html>", content_type="text/html"
            )
        text = self._text(req)
        if req.stream and not self.ignore_stream:
            return Response(200, self._events(text), content_type="text/event-stream")
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": self.finish_reason,
                }
            ],
        }
        return Response(200, json.dumps(body), content_type="application/json")

    def _chunk(self, delta: dict[str, str], finish: str | None = None) -> bytes:
        data = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data)}\n\n".encode()

    def _events(self, text: str) -> Iterator[bytes]:
        yield self._chunk({"role": "assistant"})
        pieces = [text[i : i + self.piece_chars] for i in range(0, len(text), self.piece_chars)]
        for i, piece in enumerate(pieces):
            if self.mode == "stall" and i == 2:
                self._release.wait(120)
                return
            if self.mode == "cut" and i == 2:
                return
            if self.piece_delay:
                time.sleep(self.piece_delay)
            yield self._chunk({"content": piece})
        yield self._chunk({}, finish=self.finish_reason)
        yield b"data: [DONE]\n\n"
