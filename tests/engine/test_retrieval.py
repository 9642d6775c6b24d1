from __future__ import annotations

import numpy as np
import pytest

from index.models import Hit
from index.search.fusion import merge_overlapping, relative_fusion, rrf, single


def test_rrf_scores_and_details() -> None:
    fused = rrf({"dense": [(1, 0.9), (2, 0.8)], "bm25": [(2, 7.0), (3, 5.0)]}, k=60)
    got = {cid: score for cid, score, _ in fused}
    assert got[2] == pytest.approx(1 / 62 + 1 / 61)
    assert got[1] == pytest.approx(1 / 61)
    assert got[3] == pytest.approx(1 / 62)
    assert [c for c, _, _ in fused] == [2, 1, 3]
    details = dict((c, d) for c, _, d in fused)
    assert details[2] == {"dense_rank": 2.0, "dense": 0.8, "bm25_rank": 1.0, "bm25": 7.0}


def test_rrf_weights_change_the_winner() -> None:
    lists = {"dense": [(1, 0.9), (2, 0.1)], "bm25": [(2, 9.0), (1, 1.0)]}
    assert rrf(lists, {"dense": 1, "bm25": 1})[0][1] == pytest.approx(rrf(lists)[1][1])
    assert rrf(lists, {"dense": 1, "bm25": 2})[0][0] == 2
    assert rrf(lists, {"dense": 2, "bm25": 1})[0][0] == 1


def test_relative_fusion_normalises_each_retriever() -> None:
    ids = [10, 11, 12]
    scores = {"dense": np.array([0.9, 0.5, 0.1]), "bm25": np.array([0.0, 20.0, 10.0])}
    fused = relative_fusion(ids, scores)
    got = {c: s for c, s, _ in fused}
    # dense: 1, .5, 0; bm25: 0, 1, .5 -> mean .5, .75, .25
    assert got == pytest.approx({10: 0.5, 11: 0.75, 12: 0.25})
    assert [c for c, _, _ in fused] == [11, 10, 12]
    d = {c: det for c, _, det in fused}
    assert d[11]["bm25_rank"] == 1 and d[11]["dense_rank"] == 2 and d[11]["bm25"] == 20.0


def test_relative_fusion_weights_and_degenerate_scores() -> None:
    ids = [1, 2]
    scores = {"dense": np.array([0.2, 0.1]), "bm25": np.array([0.0, 5.0])}
    assert relative_fusion(ids, scores, {"dense": 3, "bm25": 1})[0][0] == 1
    assert relative_fusion(ids, scores, {"dense": 1, "bm25": 3})[0][0] == 2
    assert relative_fusion(ids, scores, {"dense": 1, "bm25": 0})[0][0] == 1
    # all-zero BM25 (no shared term) contributes nothing
    flat = relative_fusion(ids, {"dense": np.array([0.1, 0.3]), "bm25": np.zeros(2)})
    assert [c for c, _, _ in flat] == [2, 1]
    assert relative_fusion([], {"dense": np.zeros(0)}) == []


def test_single_keeps_raw_scores() -> None:
    assert single("bm25", [(4, 3.5)]) == [(4, 3.5, {"bm25_rank": 1.0, "bm25": 3.5})]


def _hit(cid: int, art: str, start: int, end: int, score: float) -> Hit:
    return Hit(cid, art, "T", "src", None, "x" * (end - start), start, end, score)


def test_merge_overlapping_hits_of_one_article() -> None:
    text = "abcdefghijklmnopqrstuvwxyz"
    hits = [_hit(1, "a", 0, 10, 0.9), _hit(2, "b", 0, 5, 0.8), _hit(3, "a", 8, 20, 0.7)]
    merged = merge_overlapping(hits, lambda art, s, e: text[s:e])
    assert [(h.chunk_id, h.start, h.end) for h in merged] == [(1, 0, 20), (2, 0, 5)]
    assert merged[0].text == text[0:20] and merged[0].score == 0.9


def test_non_overlapping_hits_stay_apart() -> None:
    hits = [_hit(1, "a", 0, 10, 0.9), _hit(2, "a", 11, 20, 0.8)]
    assert len(merge_overlapping(hits, lambda a, s, e: "")) == 2
