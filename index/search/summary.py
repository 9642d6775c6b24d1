"""A one-sentence summary of an article without a model call: its most central sentence.

Every passage stores one unit vector per sentence (pooled at indexing time, see
``store.pack_sentences``). The article's centre is the mean of those vectors; the summary is the
sentence whose vector is closest to it (highest cosine), i.e. the sentence most like the article
as a whole. Sentences repeated by overlapping passages count once. Very short or very long
sentences are passed over while a sentence of ordinary length exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from index.chunking import all_sentences
from index.storage.base import StoreReader

MIN_CHARS = 40  # shorter sentences ("Yes.", headings) are a poor summary
MAX_CHARS = 400


def central_index(vectors: np.ndarray, eligible: Sequence[bool] | None = None) -> int:
    """Index of the row of ``vectors`` closest (cosine) to their mean; -1 when there are none.

    ``eligible``: only these rows may be chosen (all of them when none is eligible).
    """
    if len(vectors) == 0:
        return -1
    vecs = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    unit = vecs / np.maximum(norms, 1e-9)
    centre = unit.mean(axis=0)
    n = float(np.linalg.norm(centre))
    if n <= 1e-9:
        return 0
    sims = unit @ (centre / n)
    if eligible is not None and any(eligible):
        sims = np.where(np.asarray(eligible, dtype=bool), sims, -np.inf)
    return int(np.argmax(sims))


def central_sentence(store: StoreReader, article_id: str) -> str | None:
    """The article's most central sentence (verbatim, whitespace collapsed), or None.

    Falls back to the first sentence of ordinary length when no sentence vectors are stored.
    """
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
    if not spans:
        spans = all_sentences(text)
        ok = [MIN_CHARS <= b - a <= MAX_CHARS for a, b in spans]
        pick = ok.index(True) if any(ok) else 0
        return _clean(text[slice(*spans[pick])]) if spans else None
    ok = [MIN_CHARS <= b - a <= MAX_CHARS for a, b in spans]
    i = central_index(np.vstack(vectors), ok)
    return _clean(text[spans[i][0] : spans[i][1]])


def _clean(sentence: str) -> str | None:
    out = " ".join(sentence.split())
    return out or None
