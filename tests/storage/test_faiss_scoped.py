"""Scoped search through a FAISS selector inside the index's own search, on every index family
(flat, IVF, HNSW, and their sq8 forms): only the scope's passages come back, and where the
index is exact the result equals brute force over the scope."""

from __future__ import annotations

import numpy as np
import pytest

from index.storage import faiss_index
from index.storage.allowed import Allowed
from index.storage.faiss_index import VectorIndex
from index.storage.policy import IndexPolicy


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("family", "sq8"),
    [("flat", False), ("ivf", False), ("hnsw", False), ("hnsw", True), ("ivf", True)],
)
def test_selector_search_stays_in_scope(
    monkeypatch: pytest.MonkeyPatch, family: str, sq8: bool
) -> None:
    monkeypatch.setattr(faiss_index, "SCOPE_EXACT_MAX", 0)  # always FAISS's selector
    rng = np.random.default_rng(7)
    n, d = 3000, 16
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    vecs = _unit(rng, n, d)
    index = VectorIndex.build(family, sq8, ids, vecs, IndexPolicy())  # type: ignore[arg-type]
    assert index.family == family
    scope = np.sort(rng.choice(ids, 400, replace=False))
    allowed = Allowed(scope, ["a"], generation=1)
    for q in _unit(rng, 20, d):
        got = index.search(q, 10, allowed)
        assert got and len(got) <= 10
        assert set(i for i, _s in got) <= set(scope.tolist())
        if family == "flat" and not sq8:
            exact = vecs[scope - 1000] @ q
            want = scope[np.argsort(-exact)[:10]]
            assert [i for i, _s in got] == want.tolist()
    # the selector is built once per scope and reused
    assert "faiss-params" in allowed._derived
    assert index.search(_unit(rng, 1, d)[0], 10, Allowed([], [], generation=1)) == []
