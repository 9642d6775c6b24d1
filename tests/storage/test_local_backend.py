"""The built-in FAISS backend (index/storage/local.py) on its own, behind the Backend interface:
what the facade and ``newsdesk migrate`` rely on without going through ``Pipeline``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.config import Settings
from index.embedding.hashing import HashEmbedder
from index.errors import IndexBusyError, IndexMismatchError
from index.models import Document
from index.pipeline import Pipeline
from index.search.query import Query, validate_question
from index.storage.local import GEN_DIR, LocalBackend, check_meta
from tests.engine.test_pipeline import BREAD, CHESS, VOLCANO

pytestmark = pytest.mark.faiss_only


@pytest.fixture
def indexed(settings: Settings) -> Pipeline:
    p = Pipeline(settings, HashEmbedder())
    p.add_documents([VOLCANO, CHESS, BREAD])
    return p


def test_the_facade_uses_the_local_backend_for_faiss(indexed: Pipeline) -> None:
    assert isinstance(indexed.backend, LocalBackend)
    assert indexed.store is indexed.backend.store
    indexed.close()


def test_a_second_backend_loads_the_published_generation(indexed: Pipeline) -> None:
    b = LocalBackend(indexed.settings)
    try:
        gen = b.store.generation()
        assert gen == indexed.snapshot().generation
        snap = b.load_snapshot(gen, HashEmbedder().dimension, None)
        assert sorted(snap.vectors.ids().tolist()) == sorted(b.store.chunk_ids())
        assert len(snap.lexical) == len(snap.vectors) == b.store.counts()[1]
        assert b.check(indexed.expected_meta) == []
    finally:
        b.close()
        indexed.close()


def test_export_holds_every_passage_with_its_stored_vector(indexed: Pipeline) -> None:
    b = LocalBackend(indexed.settings)
    try:
        out = b.export()
    finally:
        b.close()
    snap = indexed.snapshot()
    assert sorted(out.ids) == sorted(indexed.store.chunk_ids())
    assert len(out.vectors) == len(out.ids) == len(out.sentences) == len(out.texts)
    stored = dict(zip(*snap.vectors.all_vectors(), strict=True))
    for i, vec in zip(out.ids, out.vectors, strict=True):
        np.testing.assert_allclose(vec, stored[i], atol=1e-6)
    docs = {d.article_id: d for d, _chunks in out.planned}
    assert set(docs) == {VOLCANO.article_id, CHESS.article_id, BREAD.article_id}
    texts = iter(out.texts)
    for doc, chunks in out.planned:
        for ch in chunks:
            assert ch.text == doc.text[ch.start : ch.end]
            assert next(texts) == f"{doc.title}\n{ch.text}"
    assert out.meta["model"] == indexed.expected_meta()["model"]
    indexed.close()


def test_the_writer_lock_is_one_per_data_dir(indexed: Pipeline) -> None:
    a, b = LocalBackend(indexed.settings), LocalBackend(indexed.settings)
    try:
        busy = pytest.raises(IndexBusyError, match="another newsdesk process")
        with a.writer(), busy, b.writer(wait=0):
            pass
        with b.writer(wait=0):  # released
            pass
    finally:
        a.close()
        b.close()
        indexed.close()


def test_old_generations_are_cleaned_up_one_kept(indexed: Pipeline) -> None:
    for i in range(3):
        indexed.add_documents([Document(f"/a/extra{i}.txt", f"Extra {i}", f"Text number {i}.")])
    gens = sorted(p.name for p in (indexed.data_dir / GEN_DIR).iterdir())
    current = indexed.store.generation()
    assert gens == [f"{current - 1:08d}", f"{current:08d}"]
    indexed.close()


def test_check_meta_names_what_changed(tmp_path: Path) -> None:
    meta = {"schema_version": "1", "model": "a", "dimension": "4"}
    check_meta(meta, lambda: dict(meta), tmp_path)
    with pytest.raises(IndexMismatchError, match=r"model 'a' -> 'b'.*newsdesk reindex"):
        check_meta(meta, lambda: {**meta, "model": "b"}, tmp_path)
    with pytest.raises(IndexMismatchError, match="storage format 0, this newsdesk uses 1"):
        check_meta({**meta, "schema_version": "0"}, lambda: dict(meta), tmp_path)

    def never() -> dict[str, str]:
        raise AssertionError("an empty index matches any settings")

    check_meta({}, never, tmp_path)


def test_a_query_carries_what_seven_arguments_did() -> None:
    q = Query("moon", None, "bm25", 5)
    assert (q.asked, q.exclude, q.started) == ("", frozenset(), 0.0)
    assert validate_question("  a \n b ", 10) == "a b"
