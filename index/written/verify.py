"""Check a generated answer against the passages it was given. Pure functions.

The model sees the top passages numbered ``[1]`` … ``[N]`` and must cite them. Its answer is
cut into sentences (a quotation is never split), and each sentence is checked:

- **citations** ``[n]`` (also ``[1, 2]``, ``[1][3]``, ``[1-2]``) must name a passage that was
  given; other numbers are removed, and a sentence that cited only missing passages is removed;
- **quotes** -- every span in double quotes (``"…"``, ``“…”``, ``„…“``, ``«…»``) must appear
  verbatim in a passage that its sentence cites (in any passage when the sentence cites none:
  that passage's number is then added). "Verbatim" is compared after normalising Unicode
  (NFKC: ``…`` = ``...``), whitespace, quote marks and apostrophes (all alike) and dashes, and
  ignoring punctuation at either end of the span. A sentence with a quote that is not found is
  removed.

:func:`verify` returns what may be shown and what was removed; :func:`fallback_reason` says
whether the rest is good enough to show or the extractive answer should be given instead.
Nothing unverifiable is ever in :attr:`Verified.text`, also for a partial (streaming) answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from index.chunking import sentences

# what the prompt asks the model to answer when the passages do not answer the question
NO_ANSWER = "NOT IN THE ARTICLES"

_QUOTE_MARKS = '"“”„‟«»〝〞＂'
_ALL_QUOTES = str.maketrans(dict.fromkeys(_QUOTE_MARKS + "'‘’‚‛‹›′″`´", '"'))
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−", "-"))
_CITATION_RE = re.compile(r"\[\s*(\d{1,3}(?:\s*(?:,|;|-|–|and)\s*\d{1,3})*)\s*\]")
_LIST_MARK_RE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# a line break inside a paragraph (not before a blank line or a list item) is a space
_SOFT_BREAK_RE = re.compile(r"(?<!\n)[ \t]*\n(?![ \t]*(?:\n|$|[-*•][ \t]|\d{1,2}[.)][ \t]))[ \t]*")
_THINK_RE = re.compile(r"^\s*<think>.*?(?:</think>\s*|$)", re.S)
_SPAN_TRIM = " .,;:!?\"'"


@dataclass(frozen=True)
class Removal:
    """Something taken out of the generated answer, and why (for logs and ``--json``)."""

    kind: Literal["citation", "quote", "sentence"]
    text: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "reason": self.reason}


@dataclass
class Verified:
    """The part of a generated answer that passed every check."""

    text: str
    # passage numbers (1-based) cited by the kept text, in order of first use
    cited: list[int] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)
    sentences: int = 0  # sentences checked
    kept: int = 0  # sentences kept
    kept_cited: int = 0  # kept sentences with at least one (valid) citation
    refused: bool = False  # the model said the passages do not answer the question


def normalise(text: str) -> str:
    """The form in which quotes are compared: NFKC, one kind of quote mark, one dash, single
    spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_ALL_QUOTES).translate(_DASHES)
    return " ".join(text.split())


@lru_cache(maxsize=64)
def _haystack(title: str, passage: str) -> str:
    """A passage (with its title) as quotes are looked up in it; cached while streaming."""
    return normalise(f"{title}\n{passage}")


def strip_reasoning(text: str) -> str:
    """Drop a leading ``<think>…</think>`` block (reasoning models); all of it while open."""
    return _THINK_RE.sub("", text, count=1)


def is_refusal(text: str) -> bool:
    """The model's "the passages do not answer this" (:data:`NO_ANSWER`), however punctuated."""
    words = re.sub(r"[^A-Za-z ]+", " ", text).split()
    return " ".join(words).upper().startswith(NO_ANSWER)


def citation_numbers(group: str) -> list[int]:
    """``"1, 3-4"`` → ``[1, 3, 4]`` (the inside of one ``[…]``)."""
    out: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group):
        bounds = re.split(r"\s*[-–]\s*", part.strip())
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            a, b = int(bounds[0]), int(bounds[1])
            out.extend(range(a, b + 1) if 0 <= b - a <= 10 else (a, b))
        elif part.strip().isdigit():
            out.append(int(part))
    return list(dict.fromkeys(out))


def quote_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of the inside of each double-quoted span; an unclosed one runs to the
    end. Every double quote mark toggles, so straight, curly and guillemet styles all work."""
    spans: list[tuple[int, int]] = []
    opened: int | None = None
    for i, ch in enumerate(text):
        if ch in _QUOTE_MARKS:
            if opened is None:
                opened = i + 1
            else:
                spans.append((opened, i))
                opened = None
    if opened is not None:
        spans.append((opened, len(text)))
    return spans


def segments(line: str) -> list[tuple[int, int]]:
    """Sentence spans of one line: never splitting a quotation, and with citations that follow
    a sentence's full stop (``… partnership. [1]``) kept with that sentence."""
    spans = [list(s) for s in sentences(line)]
    if not spans:
        return []
    quotes = [(a, b) for a, b in quote_spans(line) if b < len(line)]  # closed ones
    merged: list[list[int]] = [spans[0]]
    for s in spans[1:]:
        prev = merged[-1]
        inside_quote = any(a < prev[1] < b for a, b in quotes)
        lead = re.match(r"(?:\s*\[[^\]]{0,20}\])+", line[s[0] : s[1]])
        if inside_quote:
            prev[1] = s[1]
        elif lead:
            prev[1] = s[0] + lead.end()
            rest = s[0] + lead.end()
            while rest < s[1] and line[rest].isspace():
                rest += 1
            if rest < s[1]:
                merged.append([rest, s[1]])
        else:
            merged.append(s)
    return [(a, b) for a, b in merged]


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" +([.,;:!?])", r"\1", text)
    return text.strip()


def _check_sentence(
    sent: str, haystacks: Sequence[str], removed: list[Removal]
) -> tuple[str | None, list[int]]:
    """One sentence: its text with only valid citations (None = drop it) and its citations."""
    n = len(haystacks)
    cited: list[int] = []
    had_citation = False

    def fix(m: re.Match[str]) -> str:
        nonlocal had_citation
        had_citation = True
        keep = []
        for k in citation_numbers(m.group(1)):
            if 1 <= k <= n:
                keep.append(k)
            else:
                removed.append(
                    Removal("citation", f"[{k}]", f"there is no passage [{k}] (1 to {n} given)")
                )
        cited.extend(k for k in keep if k not in cited)
        return "".join(f"[{k}]" for k in keep)

    text = _CITATION_RE.sub(fix, sent)
    if sum(ch in _QUOTE_MARKS for ch in text) % 2:
        removed.append(Removal("sentence", sent.strip(), "it has an unclosed quotation mark"))
        return None, []
    if had_citation and not cited:
        why = "it cites only passages that were not given"
        removed.append(Removal("sentence", sent.strip(), why))
        return None, []
    added: list[int] = []
    for a, b in quote_spans(text):
        span = normalise(text[a:b]).strip(_SPAN_TRIM)
        if not span:
            continue
        pool = cited or list(range(1, n + 1))
        found = [k for k in pool if span in haystacks[k - 1]]
        if not found:
            where = ", ".join(f"[{k}]" for k in cited) if cited else "any passage"
            removed.append(Removal("quote", text[a:b].strip(), f"not found verbatim in {where}"))
            removed.append(Removal("sentence", sent.strip(), "it contains an unverifiable quote"))
            return None, []
        if not cited and found[0] not in added:
            added.append(found[0])
    if added:
        text = _add_citations(text, added)
        cited = added
    return _tidy(text), cited


def _add_citations(text: str, numbers: Sequence[int]) -> str:
    """``… said "x".`` → ``… said "x" [2].``; after a closing quote mark: at the very end."""
    marks = "".join(f"[{k}]" for k in numbers)
    m = re.search(r"[.!?…]+\s*$", text)
    if m:
        return text[: m.start()].rstrip() + " " + marks + text[m.start() :]
    return text.rstrip() + " " + marks


def verify(
    text: str,
    passages: Sequence[str],
    titles: Sequence[str] | None = None,
    *,
    final: bool = True,
) -> Verified:
    """Keep the sentences of ``text`` whose citations and quotes check out against
    ``passages`` (numbered from 1; a passage's title counts as part of it).

    With ``final=False`` (a partial, streaming answer) the last sentence is left out: it may be
    unfinished or still waiting for its citation.
    """
    titles = titles or [""] * len(passages)
    haystacks = [_haystack(t, p) for t, p in zip(titles, passages, strict=True)]
    text = strip_reasoning(text.replace("\r\n", "\n").replace("\r", "\n"))
    if text.lstrip().startswith("<think>"):
        return Verified("")  # still reasoning
    if is_refusal(text):
        return Verified("", refused=True)
    text = re.sub(r"(?m)^[ \t]+$", "", text)  # whitespace-only lines are blank lines
    lines = _SOFT_BREAK_RE.sub(" ", text).split("\n")
    marks: list[str] = []  # a list item's "- " or "2. ", kept in front of its kept sentences
    units: list[tuple[int, str, int, int]] = []  # (line index, line body, start, end)
    for li, line in enumerate(lines):
        mark = _LIST_MARK_RE.match(line)
        marks.append(mark.group(0).strip() + " " if mark else "")
        body = line[mark.end() :] if mark else line
        units.extend((li, body, a, b) for a, b in segments(body))
    if not final and units:
        units.pop()
    out = Verified("")
    kept_lines: dict[int, list[str]] = {}
    for li, body, a, b in units:
        out.sentences += 1
        sent, cited = _check_sentence(body[a:b], haystacks, out.removed)
        if sent is None:
            continue
        out.kept += 1
        out.kept_cited += bool(cited)
        out.cited.extend(k for k in cited if k not in out.cited)
        kept_lines.setdefault(li, []).append(sent)
    rendered: list[str] = []
    for li, line in enumerate(lines):
        if li in kept_lines:
            rendered.append(marks[li] + " ".join(kept_lines[li]))
        elif not line.strip() and rendered and rendered[-1]:
            rendered.append("")  # keep paragraph breaks between kept lines
    out.text = "\n".join(rendered).strip()
    return out


def fallback_reason(v: Verified) -> str | None:
    """Why the extractive answer should be given instead of ``v`` (None: show ``v``)."""
    if v.refused:
        return "the model found no answer in the passages"
    if not v.text or not v.kept:
        return "nothing in the generated answer could be verified"
    if not v.kept_cited:
        return "the generated answer cites no passage"
    if 2 * v.kept < v.sentences:
        return (
            f"most of the generated answer could not be verified "
            f"({v.sentences - v.kept} of {v.sentences} sentences removed)"
        )
    return None
