"""BM25 over passages with bm25s (English stopwords + Snowball stemming), persisted per generation.

bm25s has no incremental update, so the lexical index is rebuilt from the stored passage texts
whenever a write publishes a new generation (tokenising is fast next to embedding).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_STEMMER: Any = None


def _stemmer() -> Any:
    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER


def _bm25s() -> Any:
    import bm25s

    # bm25s sets its logger to DEBUG on import; keep it quiet unless asked
    lg = logging.getLogger("bm25s")
    if lg.level < logging.WARNING and not logging.getLogger().isEnabledFor(logging.DEBUG):
        lg.setLevel(logging.WARNING)
    return bm25s


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    bm25s = _bm25s()

    out = bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return [list(t) for t in out]


class LexicalIndex:
    """BM25 over passages; ``ids[i]`` is the chunk id of document ``i``."""

    def __init__(self, retriever: Any, ids: np.ndarray, df: dict[str, int] | None = None) -> None:
        self.retriever = retriever
        self.ids = ids
        self.df = df or {}

    def idf(self, term: str) -> float:
        """BM25 idf of a (stemmed) term; unseen terms get the highest idf."""
        n = max(len(self), 1)
        d = self.df.get(term, 0)
        return math.log(1.0 + (n - d + 0.5) / (d + 0.5))

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> LexicalIndex:
        bm25s = _bm25s()

        retriever = bm25s.BM25()
        df: Counter[str] = Counter()
        if texts:
            toks = bm25s.tokenize(
                list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False
            )
            retriever.index(toks, show_progress=False)
            inv = {i: t for t, i in toks.vocab.items()}
            for doc in toks.ids:
                df.update(inv[i] for i in set(doc))
        return cls(retriever, np.asarray(ids, dtype=np.int64), dict(df))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk_id, bm25 score) pairs, best first; only documents sharing a term."""
        if len(self) == 0:
            return []
        vocab = getattr(self.retriever, "vocab_dict", None) or {}
        terms = [t for t in tokenize([query])[0] if t in vocab]
        if not terms:
            return []
        k = min(k, len(self))
        docs, scores = self.retriever.retrieve([terms], k=k, show_progress=False, n_threads=1)
        out = []
        for d, s in zip(docs[0], scores[0], strict=True):
            if s <= 0:
                break
            out.append((int(self.ids[int(d)]), float(s)))
        return out

    def scores_for(self, query: str, chunk_ids: Sequence[int]) -> np.ndarray:
        """Exact BM25 scores of the query for the given chunk ids (0 for unknown ids)."""
        out = np.zeros(len(chunk_ids), dtype=np.float32)
        if len(self) == 0 or not len(chunk_ids):
            return out
        vocab = getattr(self.retriever, "vocab_dict", None) or {}
        terms = [t for t in tokenize([query])[0] if t in vocab]
        if not terms:
            return out
        all_scores = self.retriever.get_scores(terms)
        want = np.asarray(chunk_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, want)
        pos = np.clip(pos, 0, len(self.ids) - 1)
        found = self.ids[pos] == want
        out[found] = all_scores[pos[found]]
        return out

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "ids.npy", self.ids)
        if len(self):
            self.retriever.save(str(path / "bm25"), show_progress=False)
        (path / "lexical.json").write_text(json.dumps({"documents": len(self), "df": self.df}))

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        bm25s = _bm25s()

        ids = np.load(path / "ids.npy")
        df = json.loads((path / "lexical.json").read_text()).get("df", {})
        if ids.shape[0] == 0:
            return cls(bm25s.BM25(), ids, df)
        retriever = bm25s.BM25.load(str(path / "bm25"), show_progress=False, verbosity=0)
        return cls(retriever, ids, df)
