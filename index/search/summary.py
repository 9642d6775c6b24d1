"""Summaries of an article without a model call: its most central sentence, or its N most
central sentences.

Every passage stores one unit vector per sentence (pooled at indexing time, see
``store.pack_sentences``). The article's centre is the mean of those vectors; the summary is the
sentence whose vector is closest to it (highest cosine), i.e. the sentence most like the article
as a whole. Sentences repeated by overlapping passages count once. Very short or very long
sentences are passed over while a sentence of ordinary length exists.

A longer summary (:func:`central_sentences`) picks sentences by maximal marginal relevance
(MMR): each next sentence is the one most like the centre and least like the sentences already
picked, so two sentences that say the same thing are not both shown; the picks are returned in
article order, verbatim, with their offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.chunking import all_sentences
from index.storage.base import StoreReader

MIN_CHARS = 40  # shorter sentences ("Yes.", headings) are a poor summary
MAX_CHARS = 400
# MMR trade-off: 1.0 = the N most central sentences even when they repeat one another; lower
# values favour sentences unlike those already picked. 0.7 keeps the summary on the article's
# centre; a near-copy of a picked sentence (cosine above NEAR_COPY) is never picked while
# another sentence is left.
MMR_LAMBDA = 0.7
NEAR_COPY = 0.95


@dataclass(frozen=True)
class SummarySentence:
    """One sentence of a summary: ``text == article_text[start:end]`` (verbatim)."""

    text: str
    start: int
    end: int

    def to_json(self) -> dict[str, object]:
        return {"text": self.text, "start": self.start, "end": self.end}


def _unit(vectors: np.ndarray) -> np.ndarray:
    vecs = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.maximum(norms, 1e-9)


def central_index(vectors: np.ndarray, eligible: Sequence[bool] | None = None) -> int:
    """Index of the row of ``vectors`` closest (cosine) to their mean; -1 when there are none.

    ``eligible``: only these rows may be chosen (all of them when none is eligible).
    """
    if len(vectors) == 0:
        return -1
    unit = _unit(vectors)
    centre = unit.mean(axis=0)
    n = float(np.linalg.norm(centre))
    if n <= 1e-9:
        return 0
    sims = unit @ (centre / n)
    if eligible is not None and any(eligible):
        sims = np.where(np.asarray(eligible, dtype=bool), sims, -np.inf)
    return int(np.argmax(sims))


def mmr_indices(
    vectors: np.ndarray,
    n: int,
    eligible: Sequence[bool] | None = None,
    lam: float = MMR_LAMBDA,
) -> list[int]:
    """Up to ``n`` rows of ``vectors`` by maximal marginal relevance to their mean, in pick
    order (the first pick is :func:`central_index`). ``eligible``: as for
    :func:`central_index`; when fewer than ``n`` rows are eligible, the others follow."""
    if len(vectors) == 0 or n <= 0:
        return []
    first = central_index(vectors, eligible)
    unit = _unit(vectors)
    centre = unit.mean(axis=0)
    norm = float(np.linalg.norm(centre))
    relevance = unit @ (centre / norm) if norm > 1e-9 else np.zeros(len(unit), np.float32)
    ok = np.asarray(eligible, dtype=bool) if eligible is not None else np.ones(len(unit), bool)
    picked = [first]
    closest = unit @ unit[first]  # each row's highest similarity to a picked row
    while len(picked) < min(n, len(unit)):
        score = lam * relevance - (1 - lam) * closest
        score[picked] = -np.inf
        fresh = closest <= NEAR_COPY
        fresh[picked] = False
        # ordinary-length sentences that are no near-copies first; then the others
        for pool in (ok & fresh, fresh):
            if pool.any():
                score = np.where(pool, score, -np.inf)
                break
        i = int(np.argmax(score))
        picked.append(i)
        closest = np.maximum(closest, unit @ unit[i])
    return picked


def _article_sentences(
    store: StoreReader, article_id: str
) -> tuple[str, list[tuple[int, int]], list[np.ndarray]] | None:
    """The article's text, its distinct stored sentence spans (absolute offsets) and their
    vectors, in article order; None when there is no such article."""
    found = store.article_sentences(article_id)
    if found is None:
        return None
    text, passages = found
    spans: list[tuple[int, int]] = []
    vectors: list[np.ndarray] = []
    seen: set[int] = set()
    for start, (rel, vecs) in passages:
        for (a, b), v in zip(rel.tolist(), vecs, strict=True):
            s = start + a
            if s in seen:
                continue
            seen.add(s)
            spans.append((s, start + b))
            vectors.append(v)
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    return text, [spans[i] for i in order], [vectors[i] for i in order]


def _ordinary(spans: Sequence[tuple[int, int]]) -> list[bool]:
    return [MIN_CHARS <= b - a <= MAX_CHARS for a, b in spans]


def central_sentence(store: StoreReader, article_id: str) -> str | None:
    """The article's most central sentence (verbatim, whitespace collapsed), or None.

    Falls back to the first sentence of ordinary length when no sentence vectors are stored.
    """
    found = _article_sentences(store, article_id)
    if found is None:
        return None
    text, spans, vectors = found
    if not spans:
        spans = all_sentences(text)
        ok = _ordinary(spans)
        pick = ok.index(True) if any(ok) else 0
        return _clean(text[slice(*spans[pick])]) if spans else None
    i = central_index(np.vstack(vectors), _ordinary(spans))
    return _clean(text[spans[i][0] : spans[i][1]])


def central_sentences(store: StoreReader, article_id: str, n: int = 3) -> list[SummarySentence]:
    """An extractive ``n``-sentence summary: the article's most central sentences, a near-copy
    of one already picked passed over (MMR), in article order, each verbatim with its offsets.
    [] when there is no such article. Without stored sentence vectors: the first ``n``
    sentences of ordinary length."""
    found = _article_sentences(store, article_id)
    if found is None:
        return []
    text, spans, vectors = found
    if spans:
        picks = mmr_indices(np.vstack(vectors), n, _ordinary(spans))
    else:
        spans = all_sentences(text)
        ok = _ordinary(spans)
        picks = [i for i, good in enumerate(ok) if good][:n] or list(range(min(n, len(spans))))
    out = []
    for i in sorted(picks, key=lambda i: spans[i]):
        a, b = spans[i]
        if text[a:b].strip():
            out.append(SummarySentence(text[a:b], a, b))
    return out


def _clean(sentence: str) -> str | None:
    out = " ".join(sentence.split())
    return out or None
