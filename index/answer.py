"""Pick the sentence (or two adjacent sentences) that best answers a question. Pure functions.

Each candidate sentence of the top passages is scored by
``w_dense * cos(question, sentence) + w_lex * idf-weighted coverage of the question's terms``
plus a small prior for the passage's rank. The quote is a verbatim span of the article:
its offsets are absolute offsets into the article text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .chunking import sentences
from .lexical import tokenize
from .models import Hit, Quote

EmbedFn = Callable[[list[str]], np.ndarray]
IdfFn = Callable[[str], float]


@dataclass(frozen=True)
class AnswerWeights:
    dense: float = 0.5
    lexical: float = 0.5
    rank_prior: float = 0.05
    pair_margin: float = 0.02
    passages: int = 3


@dataclass
class Candidate:
    hit_index: int
    start: int  # absolute offsets into the article
    end: int
    text: str
    dense: float = 0.0
    lexical: float = 0.0
    score: float = 0.0
    terms: set[str] = field(default_factory=set)


def coverage(q_terms: Sequence[str], s_terms: set[str], idf: IdfFn) -> float:
    total = sum(idf(t) for t in set(q_terms))
    if total <= 0:
        return 0.0
    return sum(idf(t) for t in set(q_terms) if t in s_terms) / total


def candidates(hits: Sequence[Hit], n_passages: int) -> list[Candidate]:
    out: list[Candidate] = []
    for hi, h in enumerate(hits[:n_passages]):
        for s, e in sentences(h.text):
            out.append(Candidate(hi, h.start + s, h.start + e, h.text[s:e]))
    return out


def select(
    question: str,
    hits: Sequence[Hit],
    q_vec: np.ndarray | None,
    embed: EmbedFn | None,
    idf: IdfFn,
    *,
    max_chars: int = 400,
    weights: AnswerWeights | None = None,
) -> tuple[Quote | None, Candidate | None]:
    """Best quote among the top passages, with its scored candidate (None if no sentence)."""
    w = weights or AnswerWeights()
    cands = candidates(hits, w.passages)
    if not cands:
        return None, None
    q_terms = tokenize([question])[0]
    toks = tokenize([c.text for c in cands])
    for c, t in zip(cands, toks, strict=True):
        c.terms = set(t)
        c.lexical = coverage(q_terms, c.terms, idf)
    if q_vec is not None and embed is not None and w.dense > 0:
        vecs = embed([c.text for c in cands])
        sims = vecs @ q_vec.astype(np.float32)
        for c, s in zip(cands, sims, strict=True):
            c.dense = float(s)
    for c in cands:
        c.score = w.dense * c.dense + w.lexical * c.lexical + w.rank_prior / (1 + c.hit_index)
    best_i = max(range(len(cands)), key=lambda i: cands[i].score)
    best = cands[best_i]
    start, end, score = best.start, best.end, best.score
    # two adjacent sentences of the same passage, when together they cover more of the question
    for j in (best_i - 1, best_i + 1):
        if not 0 <= j < len(cands) or cands[j].hit_index != best.hit_index:
            continue
        other = cands[j]
        a, b = (other, best) if j < best_i else (best, other)
        if b.end - a.start > max_chars:
            continue
        lex = coverage(q_terms, a.terms | b.terms, idf)
        pair_score = (
            w.dense * max(a.dense, b.dense) + w.lexical * lex + w.rank_prior / (1 + best.hit_index)
        )
        if pair_score > score + w.pair_margin:
            start, end, score = a.start, b.end, pair_score
    hit = hits[best.hit_index]
    text = hit.text[start - hit.start : end - hit.start]
    if len(text) > max_chars:  # a single over-long sentence: cut at a word boundary, verbatim
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > max_chars // 2 else max_chars].rstrip()
        end = start + len(text)
    quote = Quote(
        text=text,
        article_id=hit.article_id,
        title=hit.title,
        source=hit.source,
        url=hit.url,
        start=start,
        end=end,
        score=score,
        chunk_id=hit.chunk_id,
        published=hit.published,
    )
    return quote, best
