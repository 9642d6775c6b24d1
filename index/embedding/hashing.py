"""A deterministic hash embedder for tests and dry runs (``embedding.model = "hash"``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from index.embedding.base import BatchProgress, Spans

_HASH_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "they",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    ]
)


class HashEmbedder:
    """Deterministic bag-of-words embedder for tests and dry runs (no model, no torch).

    Each lower-cased word is hashed to a few dimensions with signs, so texts sharing words are
    similar: good enough to exercise the whole pipeline deterministically.
    """

    def __init__(self, dimension: int = 64, name: str = "hash-embedder") -> None:
        self.name = name
        self.dimension = dimension
        self.max_seq_length = 256
        self.calls = 0
        self.texts_embedded = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for w in re.findall(r"\w+", text.lower()):
            if w in _HASH_STOPWORDS:
                continue
            h = hashlib.blake2b(w.encode(), digest_size=8).digest()
            for j in range(2):
                idx = int.from_bytes(h[j * 3 : j * 3 + 3], "little") % self.dimension
                v[idx] += 1.0 if h[6 + j] & 1 else -1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def embed(self, texts: Sequence[str], *, progress: BatchProgress | None = None) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        arr = np.vstack([self._vec(t) for t in texts]).astype(np.float32)
        if progress:
            progress(len(texts))
        return arr

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        *,
        progress: BatchProgress | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        vecs = self.embed(texts, progress=progress)
        sent = [
            np.vstack([self._vec(t[a:b]) for a, b in sp]).astype(np.float32)
            if len(sp)
            else np.zeros((0, self.dimension), np.float32)
            for t, sp in zip(texts, spans, strict=True)
        ]
        return vecs, sent
