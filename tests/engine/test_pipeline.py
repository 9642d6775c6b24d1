from __future__ import annotations

import itertools

import faiss
import numpy as np
import pytest

from index.config import load_settings
from index.embedding.hashing import HashEmbedder
from index.errors import (
    ArticleNotFoundError,
    EmptyIndexError,
    IndexMismatchError,
    InvalidQuestionError,
)
from index.models import Document
from index.pipeline import Pipeline

VOLCANO = Document(
    "/a/volcano.txt",
    "Volcano erupts on remote island",
    "A volcano on the island of Tern erupted on Tuesday. Ash rose twelve kilometres into the "
    "sky.\n\nScientists at the Tern Observatory said the eruption was the largest since 1982.",
)
CHESS = Document(
    "/a/chess.md",
    "Chess champion keeps her title",
    "The world chess champion defended her title in Madrid. Her opponent resigned on move 61.",
    url="https://news.example.com/chess",
    published="2024-03-05",
)
BREAD = Document(
    "https://bakery.example.com/prize",
    "Bakery wins bread prize",
    "A small bakery in Lyon won the national bread prize. The baker uses a forty year old "
    "sourdough starter.",
)


pytestmark = pytest.mark.backends  # every test here runs on FAISS and on Milvus Lite


def faiss_ids(p: Pipeline) -> set[int]:
    return set(p.snapshot().vectors.ids().tolist())


def db_ids(p: Pipeline) -> set[int]:
    return set(p.store.chunk_ids())


def test_add_then_ask_quotes_verbatim(pipeline: Pipeline) -> None:
    r = pipeline.add_documents([VOLCANO, CHESS, BREAD])
    assert (r.added, r.updated, r.unchanged) == (3, 0, 0)
    assert r.chunks_embedded >= 3
    ans = pipeline.ask("Which move did the opponent resign on?")
    assert ans.quote is not None
    assert ans.quote.title == CHESS.title
    assert "resigned on move 61" in ans.quote.text
    art = pipeline.get_article(CHESS.source)
    assert art.text[ans.quote.start : ans.quote.end] == ans.quote.text
    for h in ans.passages:
        assert pipeline.get_article(h.article_id).text[h.start : h.end] == h.text
    assert faiss_ids(pipeline) == db_ids(pipeline)


def test_unchanged_documents_are_not_embedded(
    pipeline: Pipeline, fake_embedder: HashEmbedder
) -> None:
    pipeline.add_documents([VOLCANO, CHESS])
    before = fake_embedder.texts_embedded
    gen = pipeline.store.generation()
    r = pipeline.add_documents([VOLCANO, CHESS])
    assert (r.added, r.updated, r.unchanged, r.chunks_embedded) == (0, 0, 2, 0)
    assert fake_embedder.texts_embedded == before
    assert pipeline.store.generation() == gen  # nothing published


def test_changed_document_is_reembedded_alone(
    pipeline: Pipeline, fake_embedder: HashEmbedder
) -> None:
    pipeline.add_documents([VOLCANO, CHESS])
    old_ids = db_ids(pipeline)
    changed = Document(CHESS.source, CHESS.title, CHESS.text + " The prize fund was large.")
    before = fake_embedder.texts_embedded
    r = pipeline.add_documents([VOLCANO, changed])
    assert (r.added, r.updated, r.unchanged) == (0, 1, 1)
    assert fake_embedder.texts_embedded - before == r.chunks_embedded == 1
    assert faiss_ids(pipeline) == db_ids(pipeline)
    assert db_ids(pipeline) != old_ids
    assert "prize fund" in pipeline.ask("How large was the prize fund?").passages[0].text


def test_remove_deletes_from_sqlite_faiss_and_bm25(pipeline: Pipeline) -> None:
    pipeline.add_documents([VOLCANO, CHESS, BREAD])
    removed = pipeline.remove(BREAD.title)
    assert removed.id == BREAD.article_id
    assert faiss_ids(pipeline) == db_ids(pipeline)
    assert all(r.id != BREAD.article_id for r in pipeline.list_articles())
    ans = pipeline.ask("sourdough bakery bread Lyon", mode="bm25")
    assert all(h.article_id != BREAD.article_id for h in ans.passages)
    with pytest.raises(ArticleNotFoundError):
        pipeline.remove(BREAD.title)


def test_reindex_rebuilds_everything(pipeline: Pipeline) -> None:
    pipeline.add_documents([VOLCANO, CHESS])
    old = db_ids(pipeline)
    r = pipeline.reindex()
    assert r.updated == 2
    assert db_ids(pipeline).isdisjoint(old)
    assert faiss_ids(pipeline) == db_ids(pipeline)
    assert pipeline.ask("Where did the volcano erupt?").passages[0].title == VOLCANO.title


def test_other_process_sees_new_generation(settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    writer = Pipeline(settings, fake_embedder)
    reader = Pipeline(settings, fake_embedder)
    writer.add_documents([VOLCANO])
    assert reader.ask("volcano Tern").passages
    writer.add_documents([CHESS])
    titles = {h.title for h in reader.ask("chess champion Madrid").passages}
    assert CHESS.title in titles
    writer.close()
    reader.close()


def test_model_mismatch_asks_for_reindex(settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    Pipeline(settings, fake_embedder).add_documents([VOLCANO])
    other = Pipeline(settings, HashEmbedder(dimension=32, name="other-model"))
    with pytest.raises(IndexMismatchError, match="newsdesk reindex"):
        other.ask("volcano")
    with pytest.raises(IndexMismatchError):
        other.add_documents([CHESS])
    other.reindex()
    assert other.ask("Where did the volcano erupt?").passages


def test_chunking_change_asks_for_reindex(tmp_path, fake_embedder, backend) -> None:  # type: ignore[no-untyped-def]
    store = f'[store]\nbackend = "{backend}"\n'
    (tmp_path / "a.toml").write_text(store)
    first = Pipeline(load_settings(tmp_path / "a.toml", data_dir=tmp_path / "d"), fake_embedder)
    first.add_documents([VOLCANO])
    first.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text("[chunking]\noverlap_sentences = 2\n" + store)
    p = Pipeline(load_settings(cfg, data_dir=tmp_path / "d"), fake_embedder)
    with pytest.raises(IndexMismatchError, match="chunk_overlap"):
        p.ask("volcano")
    p.close()


def test_ask_before_indexing(pipeline: Pipeline) -> None:
    with pytest.raises(EmptyIndexError, match="newsdesk index"):
        pipeline.ask("anything?")


@pytest.mark.parametrize("q", ["", "   ", "\n\t"])
def test_empty_question(pipeline: Pipeline, q: str) -> None:
    pipeline.add_documents([VOLCANO])
    with pytest.raises(InvalidQuestionError, match="empty"):
        pipeline.ask(q)


def test_long_question(pipeline: Pipeline) -> None:
    pipeline.add_documents([VOLCANO])
    with pytest.raises(InvalidQuestionError, match="too long"):
        pipeline.ask("why " * 2500)


def test_ask_many_keeps_order_and_errors(pipeline: Pipeline, fake_embedder: HashEmbedder) -> None:
    pipeline.add_documents([VOLCANO, CHESS])
    calls = fake_embedder.calls
    res = pipeline.ask_many(["volcano Tern?", "", "chess Madrid?", "x" * 5000])
    assert [type(r).__name__ for r in res] == [
        "Answer",
        "InvalidQuestionError",
        "Answer",
        "InvalidQuestionError",
    ]
    assert res[0].passages[0].title == VOLCANO.title  # type: ignore[union-attr]
    assert res[2].passages[0].title == CHESS.title  # type: ignore[union-attr]
    # the two questions were embedded in one batch, and nothing else was (sentence vectors
    # come from the index)
    assert fake_embedder.calls - calls == 1


def test_overlapping_passages_are_merged(settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(f"Sentence {i} mentions turbines and wind farms." for i in range(12))
    doc = Document("/a/wind.txt", "Wind", text)
    cfg_settings = settings
    cfg_settings.chunking.max_tokens = 40
    p = Pipeline(cfg_settings, fake_embedder)
    p.add_documents([doc])
    assert p.store.counts()[1] > 2
    hits = p.search("turbines wind farms", k=10)
    spans = sorted((h.start, h.end) for h in hits)
    for (_a1, b1), (a2, _b2) in itertools.pairwise(spans):
        assert b1 < a2, "overlapping passages of one article must be merged"


def test_text_with_nul_and_surrogates_is_stored(pipeline: Pipeline) -> None:
    doc = Document(
        "/a/odd.txt", "Odd\x00 title", "Broken \ud800 text with a NUL\x00 inside. Second."
    )
    pipeline.add_documents([doc])
    art = pipeline.get_article(doc.source)
    assert "\x00" not in art.text and "\x00" not in art.title


def test_stats_and_articles(pipeline: Pipeline) -> None:
    pipeline.add_documents([VOLCANO, CHESS])
    s = pipeline.stats()
    assert (s.articles, s.model, s.dimension) == (2, "hash-embedder", 64)
    assert s.chunks == len(db_ids(pipeline)) and s.bytes_on_disk > 0
    titles = [r.title for r in pipeline.match_titles("ch")]
    assert titles[0] == CHESS.title
    assert [r.title for r in pipeline.match_titles("volcno erupts")] == [VOLCANO.title]
    assert len(pipeline.match_titles("")) == 2


def test_faiss_index_is_idmap2_with_chunk_ids(pipeline: Pipeline, backend: str) -> None:
    if backend != "faiss":
        pytest.skip("FAISS files only")
    pipeline.add_documents([VOLCANO])
    idx = pipeline.snapshot().vectors.index
    assert isinstance(idx, faiss.IndexIDMap2)
    for cid in db_ids(pipeline):
        v = idx.reconstruct(cid)
        assert np.isclose(np.linalg.norm(v), 1.0, atol=1e-4)
