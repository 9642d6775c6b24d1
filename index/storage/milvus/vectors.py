"""The vectors of one generation of a Milvus index, as a question searches them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from index.storage.allowed import Allowed
from index.storage.milvus.collections import MilvusCollections, lit_list


class MilvusVectors:
    """:class:`index.storage.base.VectorSearch` over the passages alive in one generation."""

    def __init__(
        self,
        backend: MilvusCollections,
        state: dict[str, Any],
        collection: str | None,
        dimension: int,
    ) -> None:
        self.backend = backend
        self.state = state
        self.collection = collection
        self.dimension = dimension
        self.expr = MilvusCollections.alive_passages(state)
        self._len = int(state.get("passages", 0)) if collection else 0
        self.kind = str(state.get("index_type") or "milvus-flat")
        self.description = self.kind

    def __len__(self) -> int:
        return self._len

    def _search_params(self) -> dict[str, Any]:
        return {"metric_type": "IP", "params": self.backend.index_spec()[2]}

    def search_many(
        self, queries: np.ndarray, k: int, allowed: Allowed | None = None
    ) -> list[list[tuple[int, float]]]:
        q = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
        if not self._len or self.collection is None or not len(q):
            return [[] for _ in range(len(q))]
        expr, n = self.expr, self._len
        if allowed is not None:  # a scope: Milvus filters by its articles inside the search
            if not len(allowed):
                return [[] for _ in range(len(q))]
            expr = f"{expr} and article_id in {lit_list(allowed.articles)}"
            n = min(n, len(allowed))
        b = self.backend
        res = b.call(
            "searching",
            b.client.search,
            self.collection,
            data=[row for row in q],
            anns_field="vector",
            limit=max(1, min(k, n, 16_384)),
            filter=expr,
            search_params=self._search_params(),
            output_fields=["id"],
        )
        return [[(int(h["id"]), float(h["distance"])) for h in hits] for hits in res]

    def search(
        self, query: np.ndarray, k: int, allowed: Allowed | None = None
    ) -> list[tuple[int, float]]:
        return self.search_many(np.asarray(query, dtype=np.float32).reshape(1, -1), k, allowed)[0]

    def vectors_of(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids or self.collection is None:
            return {}
        rows = self.backend.passage_rows(self.collection, list(ids))
        return {i: np.asarray(r["vector"], dtype=np.float32) for i, r in rows.items()}

    def scores_for(self, query: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        found = self.vectors_of([int(i) for i in ids])
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        zero = np.zeros(self.dimension, dtype=np.float32)
        vecs = np.vstack([found.get(int(i), zero) for i in ids])
        return (vecs @ q).astype(np.float32)

    def ids(self) -> np.ndarray:
        if self.collection is None:
            return np.zeros(0, np.int64)
        rows = self.backend.scan(self.collection, self.expr, ["id"])
        return np.sort(np.fromiter((int(r["id"]) for r in rows), dtype=np.int64))

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        if self.collection is None or not self._len:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        rows = sorted(
            self.backend.scan(self.collection, self.expr, ["id", "vector"]), key=lambda r: r["id"]
        )
        ids = np.asarray([r["id"] for r in rows], dtype=np.int64)
        vecs = np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), -1)
        return ids, vecs
