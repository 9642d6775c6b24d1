"""Optional written answers: the top passages go to an LLM, its answer is verified, and the
extractive answer stays as evidence and as the fallback.

1. :func:`build_messages` numbers the passages ``[1]`` … ``[N]`` with their titles and fills in
   the versioned prompt (``index/written/prompts/answer-v1.txt``, :data:`PROMPT_VERSION`);
2. :func:`generate` calls the ``[llm]`` endpoint (:mod:`index.written.client`), streaming or not;
3. :func:`index.written.verify.verify` keeps only sentences whose citations name a given passage and
   whose quotes appear verbatim in a cited passage;
   :func:`index.written.verify.fallback_reason` decides
   whether what is left is shown, or the extractive answer instead.

Nothing here raises for an endpoint that is down, slow or talking nonsense: the result is then
the extractive answer (``fell_back``), with the reason in the log and in ``--json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from index.config import LLMSettings
from index.models import Answer, Hit
from index.written import client as llm
from index.written.verify import Removal, Verified, fallback_reason, verify

log = logging.getLogger(__name__)

PROMPT_VERSION = "answer-v1"
LLM_OFF = (
    "written answers are off: set base_url and model in the [llm] section of the config "
    "(see README, “Written answers”)"
)
_SYSTEM, _USER = "=== system ===", "=== user ==="

OnUpdate = Callable[["GeneratedAnswer"], None]


@dataclass(frozen=True)
class Prompt:
    version: str
    system: str
    user: str  # with {passages} and {question}


@cache
def load_prompt(version: str = PROMPT_VERSION) -> Prompt:
    """The prompt file ``index/written/prompts/<version>.txt`` (package data)."""
    raw = resources.files("index.written").joinpath("prompts", f"{version}.txt").read_text("utf-8")
    lines = raw.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    body = "\n".join(lines)
    head, _, rest = body.partition(_SYSTEM + "\n")
    system, _, user = rest.partition("\n" + _USER + "\n")
    if head.strip() or not system.strip() or "{question}" not in user:
        raise ValueError(f"prompt {version} is malformed")  # a packaging bug, caught by tests
    return Prompt(version, system.strip(), user.strip())


def format_passages(hits: Sequence[Hit]) -> str:
    """``[1] Title`` then the passage text, for each hit, separated by blank lines."""
    blocks = []
    for i, h in enumerate(hits, 1):
        title = " ".join(h.title.split()) or "Untitled"
        text = "\n".join(" ".join(p.split()) for p in h.text.strip().split("\n") if p.strip())
        blocks.append(f"[{i}] {title}\n{text}")
    return "\n\n".join(blocks)


def build_messages(
    question: str, hits: Sequence[Hit], prompt: Prompt | None = None
) -> llm.Messages:
    prompt = prompt or load_prompt()
    fill = {"passages": format_passages(hits), "question": " ".join(question.split())}
    # one pass, so braces inside passages or the question are never substituted
    user = _fill(prompt.user, fill)
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": user}]


def _fill(template: str, values: dict[str, str]) -> str:
    out, pos = [], 0
    while True:
        starts = [(template.find("{" + k + "}", pos), k) for k in values]
        found = [(i, k) for i, k in starts if i >= 0]
        if not found:
            out.append(template[pos:])
            return "".join(out)
        i, k = min(found)
        out.append(template[pos:i])
        out.append(values[k])
        pos = i + len(k) + 2


@dataclass(frozen=True)
class Citation:
    """A passage the generated answer cites: its number in the prompt and the passage."""

    n: int
    hit: Hit

    def to_json(self) -> dict[str, Any]:
        h = self.hit
        return {
            "n": self.n,
            "article": h.article_id,
            "title": h.title,
            "source": h.source,
            "url": h.url,
            "chunk_id": h.chunk_id,
            "start": h.start,
            "end": h.end,
        }


@dataclass
class GeneratedAnswer:
    """A written answer (``text``), its verified citations, and the extractive ``answer`` it is
    shown with. ``fell_back``: ``text`` is None and the extractive answer is the answer."""

    answer: Answer
    text: str | None = None
    citations: list[Citation] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)
    fell_back: bool = False
    reason: str | None = None  # why it fell back
    model: str = ""
    prompt: str = PROMPT_VERSION
    elapsed_ms: float = 0.0
    final: bool = True  # False for the partial answers shown while streaming

    @property
    def question(self) -> str:
        return self.answer.question

    def to_json(self) -> dict[str, Any]:
        """``ask --json``'s object, with a ``generated`` member."""
        data = self.answer.to_json()
        data["generated"] = {
            "text": self.text,
            "citations": [c.to_json() for c in self.citations],
            "removed": [r.to_json() for r in self.removed],
            "fell_back": self.fell_back,
            "reason": self.reason,
            "model": self.model,
            "prompt": self.prompt,
            "elapsed_ms": round(self.elapsed_ms, 2),
        }
        return data


def _result(
    answer: Answer, v: Verified, hits: Sequence[Hit], model: str, t0: float, *, final: bool
) -> GeneratedAnswer:
    return GeneratedAnswer(
        answer,
        text=v.text,
        citations=[Citation(n, hits[n - 1]) for n in v.cited],
        removed=list(v.removed),
        model=model,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
        final=final,
    )


def fallback(
    answer: Answer, reason: str, *, model: str = "", removed: Sequence[Removal] = (), t0: float
) -> GeneratedAnswer:
    return GeneratedAnswer(
        answer,
        removed=list(removed),
        fell_back=True,
        reason=reason,
        model=model,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
    )


async def generate(
    answer: Answer,
    settings: LLMSettings,
    *,
    stream: bool = False,
    on_update: OnUpdate | None = None,
    t0: float | None = None,
) -> GeneratedAnswer:
    """A verified written answer to ``answer.question`` from ``answer.passages``, else the
    extractive ``answer`` (``fell_back``). Never raises for endpoint trouble.

    ``on_update`` (with ``stream``) is called on the event loop with the verified answer so far
    each time it grows; first with an empty text, as soon as the extractive answer is known.
    """
    t0 = time.perf_counter() if t0 is None else t0
    if not settings.enabled:
        return fallback(answer, "generation is off (llm.base_url is not set)", t0=t0)
    if answer.abstained:
        return fallback(answer, "the articles do not answer the question", t0=t0)
    hits = list(answer.passages)
    texts = [h.text for h in hits]
    titles = [h.title for h in hits]
    model = settings.model
    shown = ""

    def on_text(so_far: str) -> None:
        nonlocal shown
        v = verify(so_far, texts, titles, final=False)
        if v.text != shown and on_update is not None:
            shown = v.text
            on_update(_result(answer, v, hits, model, t0, final=False))

    if on_update is not None:
        on_update(GeneratedAnswer(answer, text="", model=model, final=False))
    try:
        done = await llm.chat(
            settings,
            build_messages(answer.question, hits),
            stream=stream,
            on_text=on_text if stream else None,
        )
    except llm.LLMError as e:
        log.warning("no written answer: %s; answering with the extracted quote", e)
        return fallback(answer, str(e), model=model, t0=t0)
    except Exception as e:  # a bug here must not cost the user the answer
        log.exception("unexpected error while generating an answer: answering with the quote")
        return fallback(answer, f"internal error ({type(e).__name__})", model=model, t0=t0)
    model = done.model
    cut = done.finish_reason == "length"
    if cut:
        log.info("the generated answer reached llm.max_tokens: its last sentence is left out")
    v = verify(done.text, texts, titles, final=not cut)
    for r in v.removed:
        log.info("removed from the generated answer: %s %r: %s", r.kind, r.text[:200], r.reason)
    reason = fallback_reason(v)
    if reason is not None:
        log.info("written answer not shown: %s; answering with the extracted quote", reason)
        return fallback(answer, reason, model=model, removed=v.removed, t0=t0)
    return _result(answer, v, hits, model, t0, final=True)
