"""Article tags and scoped questions on both backends (index/search/scope.py,
index/storage/allowed.py): a scoped question never returns a passage outside its scope."""

from __future__ import annotations

import dataclasses
import random
import sqlite3

import pytest

from index.config import Settings
from index.embedding.hashing import HashEmbedder
from index.models import Document, normalize_tags
from index.pipeline import Pipeline
from index.search.scope import Selection
from tests.fakes.corpus import article_text

pytestmark = pytest.mark.backends  # every test here runs on FAISS and on Milvus Lite

TAGS = ("sport", "politics", "science", "local")


def _docs(n: int, seed: int = 7) -> list[Document]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        tags = tuple(sorted(rnd.sample(TAGS, rnd.randint(0, 2))))
        out.append(
            Document(
                f"/news/{'a' if i % 2 else 'b'}/n{i}.txt", f"Story {i}", article_text(i), tags=tags
            )
        )
    return out


def _allowed_articles(p: Pipeline, sel: Selection) -> set[str]:
    return {a for a, source, tags in p.store.catalogue() if sel.selects(a, source, tags)}


def test_tags_are_stored_listed_and_changed(pipeline: Pipeline) -> None:
    doc = Document(
        "/news/x.txt", "X", "The harbour opened a new ferry line today.", tags=("local",)
    )
    pipeline.add_documents([doc])
    assert pipeline.get_article(doc.article_id).tags == ("local",)
    assert [r.tags for r in pipeline.list_articles()] == [("local",)]
    # a change of tags alone writes the article again (its hash covers the tags)
    pipeline.add_documents([dataclasses.replace(doc, tags=("local", "transport"))])
    assert pipeline.get_article(doc.article_id).tags == ("local", "transport")
    pipeline.add_documents([dataclasses.replace(doc, tags=())])
    assert pipeline.get_article(doc.article_id).tags == ()
    # an untagged article keeps the hash older indexes stored
    assert (
        dataclasses.replace(doc, tags=()).content_hash == Document("/n", "X", doc.text).content_hash
    )


def test_reindex_keeps_tags(pipeline: Pipeline) -> None:
    docs = _docs(6)
    pipeline.add_documents(docs)
    pipeline.reindex()
    for d in docs:
        assert pipeline.get_article(d.article_id).tags == d.tags


def test_scoped_ask_and_search_stay_inside(pipeline: Pipeline) -> None:
    docs = _docs(12)
    pipeline.add_documents(docs)
    target = docs[3]
    sel = Selection(articles=frozenset({target.article_id}))
    # the question is about another article; in the scope only the target can answer
    ans = pipeline.ask("Who opened the exhibition in Town5?", scope=sel)
    assert ans.passages and {h.article_id for h in ans.passages} == {target.article_id}
    if ans.quote is not None:
        assert ans.quote.article_id == target.article_id
    unscoped = pipeline.ask("Who opened the exhibition in Town5?")
    assert unscoped.passages[0].article_id == docs[5].article_id
    for mode in ("dense", "bm25", "hybrid"):
        hits = pipeline.search("mayor exhibition town visitors", k=10, mode=mode, scope=sel)
        assert hits and {h.article_id for h in hits} == {target.article_id}


def test_tag_and_folder_scopes(pipeline: Pipeline) -> None:
    docs = _docs(12)
    pipeline.add_documents(docs)
    by_tag = Selection(tags=frozenset({"science"}))
    want = {d.article_id for d in docs if "science" in d.tags}
    assert want and _allowed_articles(pipeline, by_tag) == want
    hits = pipeline.search("mayor exhibition visitors report", k=50, scope=by_tag)
    assert hits and {h.article_id for h in hits} <= want
    by_folder = Selection(folders=("/news/a",))
    hits = pipeline.search("mayor exhibition visitors report", k=50, scope=by_folder)
    assert hits and all(h.source.startswith("/news/a/") for h in hits)


def test_an_empty_scope_finds_nothing(pipeline: Pipeline) -> None:
    pipeline.add_documents(_docs(4))
    sel = Selection(tags=frozenset({"nothing-has-this"}))
    assert pipeline.search("mayor exhibition", scope=sel) == []
    ans = pipeline.ask("Who opened the exhibition in Town1?", scope=sel)
    assert ans.quote is None and ans.passages == []


def test_a_scope_follows_new_generations(pipeline: Pipeline) -> None:
    docs = _docs(4)
    pipeline.add_documents(docs)
    sel = Selection(tags=frozenset({"weather"}))
    assert pipeline.search("storm glacier", scope=sel) == []
    new = Document(
        "/news/w.txt", "Storm", "A storm hit the glacier village on Sunday.", tags=("weather",)
    )
    pipeline.add_documents([new])
    hits = pipeline.search("storm glacier", scope=sel)
    assert [h.article_id for h in hits] == [new.article_id]


def test_bm25_scores_inside_a_scope_are_the_unscoped_ones(pipeline: Pipeline) -> None:
    docs = _docs(10)
    pipeline.add_documents(docs)
    sel = Selection(tags=frozenset({"sport", "local"}))
    with pipeline.reading() as snap:
        allowed = pipeline._scopes.allowed(pipeline.store, snap.generation, sel)
        q = "mayor exhibition visitors festival"
        scoped = dict(snap.lexical.search(q, 1000, allowed))
        full = dict(snap.lexical.search(q, 1000))
    assert scoped and set(scoped) <= set(allowed.ids.tolist())
    assert scoped == {c: s for c, s in full.items() if c in scoped}
    assert {c for c in full if allowed.contains([c])[0]} == set(scoped)


def test_normalize_tags() -> None:
    assert normalize_tags(["Sport", " local news ", "sport"]) == ("local-news", "sport")
    for bad in ("", "-x", "a,b", "x" * 51, "#tag"):
        with pytest.raises(ValueError):
            normalize_tags([bad])


def test_an_index_from_before_tags_gains_them(settings: Settings, backend: str) -> None:
    if backend != "faiss":
        pytest.skip("the SQLite schema migration")
    p = Pipeline(settings, HashEmbedder())
    p.add_documents(_docs(3))
    p.close()
    db = sqlite3.connect(settings.data_dir / "newsdesk.db")
    db.execute("ALTER TABLE articles DROP COLUMN tags")
    db.commit()
    db.close()
    p = Pipeline(settings, HashEmbedder())
    try:
        assert all(r.tags == () for r in p.list_articles())
        new = Document("/news/t.txt", "T", "A tram line opened.", tags=("transport",))
        p.add_documents([new])
        assert p.get_article(new.article_id).tags == ("transport",)
        hits = p.search("tram", scope=Selection(tags=frozenset({"transport"})))
        assert [h.article_id for h in hits] == [new.article_id]
    finally:
        p.close()
