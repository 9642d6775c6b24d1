"""A small client for OpenAI-compatible chat completions: llama.cpp's server, Ollama, vLLM, or a
hosted API.

``POST {base_url}/chat/completions`` with ``model``, ``messages``, ``max_tokens``,
``temperature`` and ``stream``. A plain answer is one JSON object (``choices[0].message.content``);
a streamed one is Server-Sent Events, ``data: {json}`` lines ending with ``data: [DONE]``, each
carrying the next piece of text in ``choices[0].delta.content``. A server that ignores
``"stream": true`` and sends one JSON object is understood too.

Every failure -- connection refused, an HTTP error, a time-out, a reply that is not what the
protocol says -- raises :class:`LLMError` with a one-line reason meant for the log: callers fall
back to the extractive answer and never show it to a user. ``llm.timeout`` bounds the whole call
(connection, waiting and every byte of the answer), not each read.

The API key is read from the environment variable named by ``llm.api_key_env`` when a call is
made, sent only in the ``Authorization`` header, and removed from every error message (a server
may echo it back). It is never logged.

The base URL is configured by the operator, not taken from articles or users, so loopback and
private addresses are allowed here (unlike :mod:`index.ingest.fetch`): local servers are the point.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from index.config import LLMSettings
from index.errors import NewsdeskError
from index.lazy import lazy_module
from index.text import one_line

if TYPE_CHECKING:
    import httpx
else:  # imported on the first generated answer
    httpx = lazy_module("httpx", globals())

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 2_000_000  # far above any max_tokens; a runaway reply stops here
USER_AGENT = "newsdesk/0.1"

Messages = list[dict[str, str]]
OnText = Callable[[str], None]  # called with the whole text so far, after each streamed piece


class LLMError(NewsdeskError):
    """The endpoint could not give an answer (down, slow, HTTP error, garbage)."""


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop", "length" (cut at max_tokens), ... or None if not given
    model: str  # as the server names it, else as configured


def endpoint(settings: LLMSettings) -> str:
    return settings.base_url.strip().rstrip("/") + "/chat/completions"


def display_url(url: str) -> str:
    """``url`` without a user name or password, for logs."""
    try:
        p = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Scrubber:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    def __call__(self, text: str) -> str:
        if self.secret:
            text = text.replace(self.secret, "[redacted]")
        return text


def _error_detail(body: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else its first characters."""
    text = body[:4000].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return one_line(text)
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return one_line(err["message"])
        if isinstance(err, str):
            return one_line(err)
    return one_line(text)


def _message_text(data: Any) -> tuple[str, str | None]:
    """``(content, finish_reason)`` of a non-streamed chat completion; LLMError if malformed."""
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError("the reply is not a chat completion (no choices[0].message)") from None
    if not isinstance(content, str):
        raise LLMError("the reply's message content is not text")
    reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    return content, reason if isinstance(reason, str) else None


def _delta_text(data: Any) -> tuple[str, str | None]:
    """``(text, finish_reason)`` of one streamed chunk; LLMError if malformed."""
    if not isinstance(data, dict):
        raise LLMError("a streamed event is not a JSON object")
    if "error" in data:
        raise LLMError(f"the stream reported an error: {_error_detail(json.dumps(data).encode())}")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise LLMError("a streamed event has no choices")
    if not choices:
        return "", None  # e.g. a final usage-only chunk
    choice = choices[0]
    if not isinstance(choice, dict):
        raise LLMError("a streamed event's choice is not an object")
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    if content is not None and not isinstance(content, str):
        raise LLMError("a streamed event's content is not text")
    reason = choice.get("finish_reason")
    return content or "", reason if isinstance(reason, str) else None


async def chat(
    settings: LLMSettings,
    messages: Messages,
    *,
    stream: bool = False,
    on_text: OnText | None = None,
) -> Completion:
    """One chat completion; with ``stream``, ``on_text`` sees the text grow. Bounded by
    ``settings.timeout`` in all; raises :class:`LLMError` on any failure."""
    key = settings.api_key
    scrub = _Scrubber(key)
    url = endpoint(settings)
    if settings.api_key_env and not key:
        log.warning(
            "$%s (llm.api_key_env) is not set: calling %s without an API key",
            settings.api_key_env,
            display_url(url),
        )
    try:
        async with asyncio.timeout(settings.timeout):
            return await _chat(settings, url, key, messages, stream, on_text)
    except TimeoutError:
        raise LLMError(
            f"{display_url(url)} did not answer within llm.timeout ({settings.timeout:g} s)"
        ) from None
    except LLMError as e:
        raise LLMError(scrub(str(e))) from None
    except httpx.HTTPError as e:
        reason = scrub(one_line(str(e)) or type(e).__name__)
        what = "could not be reached" if isinstance(e, httpx.ConnectError) else "failed"
        raise LLMError(f"{display_url(url)} {what} ({reason})") from None


async def _chat(
    settings: LLMSettings,
    url: str,
    key: str | None,
    messages: Messages,
    stream: bool,
    on_text: OnText | None,
) -> Completion:
    payload: dict[str, Any] = {
        "model": settings.model,
        "messages": messages,
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "stream": stream,
    }
    headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream, application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    timeout = httpx.Timeout(settings.timeout)
    # a proxy from the environment would not reach a server on this machine
    async with (
        httpx.AsyncClient(timeout=timeout, trust_env=not _is_loopback(url)) as client,
        client.stream("POST", url, json=payload, headers=headers) as resp,
    ):
        if resp.status_code != 200:
            body = await _read_limited(resp, 4000)
            hint = ""
            if resp.status_code == 404:
                hint = " (llm.base_url should end in /v1, e.g. http://localhost:11434/v1)"
            elif resp.status_code in (401, 403):
                where = f"${settings.api_key_env}" if settings.api_key_env else "llm.api_key_env"
                hint = f" (check the API key: {where})"
            raise LLMError(
                f"{display_url(url)} answered HTTP {resp.status_code}: {_error_detail(body)}{hint}"
            )
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "text/event-stream":
            return await _read_events(resp, settings, on_text)
        body = await _read_limited(resp, MAX_RESPONSE_BYTES)
        try:
            data = json.loads(body)
        except ValueError:
            raise LLMError(
                f"the reply is not JSON ({ctype or 'no content type'}: "
                f"{one_line(body[:200].decode('utf-8', 'replace'), 80)!r})"
            ) from None
        text, reason = _message_text(data)
        if on_text is not None and text:
            on_text(text)
        return Completion(text, reason, _model_of(data, settings))


def _model_of(data: Any, settings: LLMSettings) -> str:
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model else settings.model


async def _read_limited(resp: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            if limit >= MAX_RESPONSE_BYTES:
                raise LLMError(f"the reply is larger than {MAX_RESPONSE_BYTES:,} bytes")
            break
    return b"".join(chunks)[:limit]


async def _read_events(
    resp: httpx.Response, settings: LLMSettings, on_text: OnText | None
) -> Completion:
    parts: list[str] = []
    size = 0
    reason: str | None = None
    model = settings.model
    done = False
    async for line in resp.aiter_lines():
        size += len(line) + 1
        if size > MAX_RESPONSE_BYTES:
            raise LLMError(f"the streamed reply is larger than {MAX_RESPONSE_BYTES:,} bytes")
        if not line.startswith("data:"):
            continue  # blank lines, ": comments", "event:", "id:", "retry:"
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            event = json.loads(data)
        except ValueError:
            raise LLMError(f"a streamed event is not JSON: {one_line(data, 80)!r}") from None
        piece, finish = _delta_text(event)
        model = _model_of(event, settings) if model == settings.model else model
        reason = finish or reason
        if piece:
            parts.append(piece)
            if on_text is not None:
                on_text("".join(parts))
    if not done and reason is None:
        raise LLMError("the stream ended before the answer was complete")
    return Completion("".join(parts), reason, model)
