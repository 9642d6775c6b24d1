"""FAISS vector index whose ids are chunk ids (``IndexIDMap2``), inner product on unit vectors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from .errors import IndexCorruptError

log = logging.getLogger(__name__)


class VectorIndex:
    def __init__(self, index: faiss.Index, kind: str = "flat") -> None:
        self.index = index
        self.kind = kind

    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), "flat")

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def copy(self) -> VectorIndex:
        return VectorIndex(faiss.clone_index(self.index), self.kind)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {vecs.shape}")
        self.index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        return int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))  # type: ignore[arg-type]

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)  # type: ignore[attr-defined]

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if len(self) == 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.index.search(q, min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def scores_for(self, query: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Exact inner products of the query with the stored vectors of ``ids``."""
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        vecs = np.vstack([self.index.reconstruct(int(i)) for i in ids])
        return (vecs @ query.astype(np.float32).reshape(-1)).astype(np.float32)

    def search_many(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        if len(self) == 0:
            return [[] for _ in range(len(queries))]
        q = np.ascontiguousarray(queries, dtype=np.float32)
        scores, ids = self.index.search(q, min(k, len(self)))
        return [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True) if i >= 0]
            for row_i, row_s in zip(ids, scores, strict=True)
        ]

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, dimension: int) -> VectorIndex:
        try:
            index = faiss.read_index(str(path))
        except Exception as e:  # faiss raises RuntimeError with C++ text
            raise IndexCorruptError(
                f"the vector index {path} is unreadable ({str(e).splitlines()[0][:120]}); "
                "run `newsdesk reindex` to rebuild it from the stored articles"
            ) from e
        if index.d != dimension:
            raise IndexCorruptError(
                f"the vector index {path} has dimension {index.d}, expected {dimension}; "
                "run `newsdesk reindex`"
            )
        return cls(index, "flat")
