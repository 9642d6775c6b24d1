"""Sentence splitting and sentence-aware, token-bounded chunking. Pure functions.

Every span is a pair of character offsets into the article text, so a passage or a quote is
always ``text[start:end]`` of the stored article: answers are verbatim by construction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Span = tuple[int, int]
TokenCounter = Callable[[Sequence[str]], list[int]]

CHUNKER_VERSION = 1

_PARA_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# candidate sentence ends: terminal punctuation, optional closing quotes/brackets, then whitespace
_END = re.compile(r"""[.!?…]+["'”’»)\]]*(?=\s)""")
_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "gen", "gov", "sen", "rep",
    "col", "lt", "sgt", "capt", "cmdr", "adm", "rev", "hon", "pres", "no", "nos", "vs", "etc",
    "inc", "corp", "co", "ltd", "llc", "dept", "univ", "est", "approx", "fig", "figs", "vol",
    "vols", "ch", "pp", "p", "ed", "eds", "al", "cf", "e.g", "i.e", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "a.m", "p.m",
    "d.c", "ave", "blvd", "rd", "mass", "calif", "fla", "wash", "c", "ca", "op", "cit",
}  # fmt: skip
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")
_NEXT_START = re.compile(r"""\s+["'“‘(\[]*([A-Z0-9À-ÖØ-Þ]|[^\x00-\x7f])""")


def paragraphs(text: str) -> list[Span]:
    """Spans of paragraphs (separated by blank lines), whitespace trimmed, empty ones dropped."""
    spans: list[Span] = []
    pos = 0
    for m in _PARA_BREAK.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[1] > s[0]]


def _trim(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans within ``text[start:end]`` (one paragraph, or any range).

    Splits after ``. ! ? …`` (with closing quotes/brackets) followed by whitespace and an
    upper-case letter, digit, opening quote or non-ASCII letter; not after common abbreviations
    or single initials ("J. K. Rowling", "U.S. Senate").
    """
    end = len(text) if end is None else end
    out: list[Span] = []
    sent_start = start
    for m in _END.finditer(text, start, end):
        cut = m.end()
        nxt = _NEXT_START.match(text, cut, end)
        if not nxt:
            continue
        if text[m.start()] == ".":
            wb = _WORD_BEFORE.search(text, max(sent_start, m.start() - 20), m.start() + 1)
            if wb:
                word = wb.group(1)
                if word.lower() in _ABBREV or (len(word) == 1 and word.isupper()):
                    continue
        span = _trim(text, sent_start, cut)
        if span[1] > span[0]:
            out.append(span)
        sent_start = cut
    span = _trim(text, sent_start, end)
    if span[1] > span[0]:
        out.append(span)
    return out


def all_sentences(text: str) -> list[Span]:
    """Sentences of a whole article; never crosses a paragraph break."""
    return [s for p in paragraphs(text) for s in sentences(text, *p)]


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    para: int


def _split_long(text: str, span: Span, tokens: int, budget: int, count: TokenCounter) -> list[Span]:
    """Cut an over-long sentence at whitespace into pieces of at most ``budget`` tokens."""
    a, b = span
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[a:b])]
    if len(words) <= 1:
        return [span]
    counts = count([text[a + s : a + e] for s, e in words])
    pieces: list[Span] = []
    cur_start, cur_tokens = words[0][0], 0
    last_end = words[0][1]
    for (s, e), n in zip(words, counts, strict=True):
        if cur_tokens and cur_tokens + n > budget:
            pieces.append((a + cur_start, a + last_end))
            cur_start, cur_tokens = s, 0
        cur_tokens += n
        last_end = e
    pieces.append((a + cur_start, a + last_end))
    return pieces


def chunk_text(
    text: str,
    count: TokenCounter,
    budget: int,
    overlap: int = 1,
    min_fill: float = 0.25,
) -> list[Span]:
    """Pack sentences into passages of at most ``budget`` tokens.

    - A passage never splits a sentence unless the sentence alone exceeds the budget.
    - Paragraph boundaries are preferred: a new paragraph starts a new passage when the current
      one is at least ``min_fill`` full, or when the whole paragraph would not fit beside it.
    - When a boundary falls inside a paragraph, the last ``overlap`` sentences are repeated at
      the start of the next passage (if they leave room).
    """
    if budget < 1:
        raise ValueError("budget must be >= 1")
    paras = paragraphs(text)
    units: list[_Unit] = []
    for pi, (pa, pb) in enumerate(paras):
        sents = sentences(text, pa, pb)
        counts = count([text[s:e] for s, e in sents]) if sents else []
        for (s, e), n in zip(sents, counts, strict=True):
            if n > budget:
                pieces = _split_long(text, (s, e), n, budget, count)
                for (ps, pe), pn in zip(pieces, count([text[x:y] for x, y in pieces]), strict=True):
                    units.append(_Unit(ps, pe, pn, pi))
            else:
                units.append(_Unit(s, e, n, pi))
    if not units:
        return []
    para_tokens: dict[int, int] = {}
    for u in units:
        para_tokens[u.para] = para_tokens.get(u.para, 0) + u.tokens

    chunks: list[Span] = []
    cur: list[_Unit] = []
    cur_tokens = 0
    for u in units:
        if cur:
            new_para = u.para != cur[-1].para
            if new_para and (
                cur_tokens >= min_fill * budget or cur_tokens + para_tokens[u.para] > budget
            ):
                chunks.append((cur[0].start, cur[-1].end))
                cur, cur_tokens = [], 0
            elif cur_tokens + u.tokens > budget:
                chunks.append((cur[0].start, cur[-1].end))
                carry: list[_Unit] = []
                if not new_para and overlap > 0:
                    for prev in reversed(cur[-overlap:]):
                        if prev.para != u.para:
                            break
                        if sum(c.tokens for c in carry) + prev.tokens + u.tokens > budget:
                            break
                        carry.insert(0, prev)
                    # never carry the whole previous passage (no progress)
                    if len(carry) == len(cur):
                        carry = carry[1:]
                cur = carry
                cur_tokens = sum(c.tokens for c in cur)
        cur.append(u)
        cur_tokens += u.tokens
    if cur:
        chunks.append((cur[0].start, cur[-1].end))
    return chunks


def whitespace_token_counter(texts: Sequence[str]) -> list[int]:
    """A crude counter for tests and fallbacks: one token per whitespace-separated word."""
    return [len(t.split()) for t in texts]
