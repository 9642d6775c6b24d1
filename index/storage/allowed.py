"""The passages a scope allows in one generation, as the vector and keyword searches filter by.

A scope (index/search/scope.py) is resolved once per index generation into an :class:`Allowed`:
its passage ids (sorted) and article ids. The searches filter *inside* themselves with it — FAISS
scores only the scope's vectors (a selector, or the scope's own small matrix), BM25 adds up only
the scope's postings, Milvus gets a filter expression — so a question in a scope costs about what
one over the whole index does, never a scan of everything. What each search derives from it (a
FAISS selector, BM25 positions) is kept in the value, so it is built once per generation too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

_T = TypeVar("_T")


class Allowed:
    """The passage ids (sorted, unique int64) and article ids a scope allows in ``generation``."""

    def __init__(self, ids: Sequence[int] | np.ndarray, articles: Sequence[str], generation: int):
        self.ids = np.unique(np.asarray(ids, dtype=np.int64))
        self.articles = tuple(sorted(set(articles)))
        self.generation = generation
        self._derived: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __repr__(self) -> str:
        return (
            f"Allowed({len(self)} passages of {len(self.articles)} articles, gen {self.generation})"
        )

    def contains(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """A boolean mask: which of ``ids`` are allowed."""
        want = np.asarray(ids, dtype=np.int64)
        if not len(self) or not len(want):
            return np.zeros(len(want), dtype=bool)
        pos = np.clip(np.searchsorted(self.ids, want), 0, len(self) - 1)
        return np.asarray(self.ids[pos] == want)

    def derived(self, key: str, make: Callable[[], _T]) -> _T:
        """What a search builds from these ids once (``make()``), kept under ``key``."""
        with self._lock:
            if key in self._derived:
                return self._derived[key]
        value = make()
        with self._lock:
            self._derived.setdefault(key, value)
            return self._derived[key]
