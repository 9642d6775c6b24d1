"""Tiny passages and stored sentence vectors for the answer-selection tests (hash embedder)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from index.chunking import all_sentences
from index.embedding.hashing import HashEmbedder
from index.models import Hit

EMB = HashEmbedder()
Lookup = Callable[[Sequence[int]], dict[int, tuple[np.ndarray, np.ndarray]]]


def idf(term: str) -> float:
    return 1.0


def make_hit(text: str, start: int = 0, cid: int = 1, title: str = "T", art: str = "art") -> Hit:
    return Hit(cid, art, title, "/src.txt", None, text, start, start + len(text), 1.0,
               parts=[(cid, start, start + len(text))])  # fmt: skip


def lookup_for(hits: Sequence[Hit]) -> Lookup:
    """Stored sentence spans/vectors as the indexer would write them (hash embedder)."""

    def lookup(ids: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for h in hits:
            if h.chunk_id in ids:
                spans = all_sentences(h.text)
                vecs = EMB.embed([h.text[a:b] for a, b in spans])
                out[h.chunk_id] = (np.asarray(spans, dtype=np.int32), vecs)
        return out

    return lookup
