"""Property: a scoped question never returns a passage outside its scope, whatever the scope
(random articles, tags and folders), the retrieval mode, the FAISS index type (flat, IVF) and
the way FAISS filters (the scope's own vectors, or a selector inside the index's search)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.config import load_settings
from index.embedding.hashing import HashEmbedder
from index.models import Document
from index.pipeline import Pipeline
from index.search.scope import Selection
from index.storage import faiss_index
from tests.conftest import milvus_available
from tests.fakes.config import HASH_MIN_CONFIDENCE, HASH_RERANKER
from tests.fakes.corpus import WORDS, article_text

N = 90
TAGS = ("sport", "politics", "science", "local", "weather", "arts")
FOLDERS = ("/p/a", "/p/b", "/p/c")


def _corpus() -> list[Document]:
    rnd = random.Random(11)
    return [
        Document(
            f"{FOLDERS[i % 3]}/n{i}.txt",
            f"Story {i}",
            article_text(i, paragraphs=3),
            tags=tuple(sorted(rnd.sample(TAGS, rnd.randint(0, 2)))),
        )
        for i in range(N)
    ]


DOCS = _corpus()
KINDS = ["flat", "ivf"] + (["milvus"] if milvus_available() else [])


@pytest.fixture(scope="module", params=KINDS)
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    kind = request.param
    tmp: Path = tmp_path_factory.mktemp(f"scopes-{kind}")
    s = load_settings(data_dir=tmp / "data")
    s.answer.min_confidence = HASH_MIN_CONFIDENCE
    s.answer.reranker = HASH_RERANKER
    if kind == "milvus":
        s.store.backend = "milvus"
    else:
        s.retrieval.index_type = kind
    p = Pipeline(s, HashEmbedder())
    p.add_documents(DOCS)
    if kind != "milvus":
        assert p.snapshot().vectors.kind == kind
    yield p
    p.close()


selections = st.builds(
    lambda arts, tags, folders: Selection(
        articles=frozenset(DOCS[i].article_id for i in arts),
        tags=frozenset(tags),
        folders=tuple(folders),
    ),
    st.sets(st.integers(0, N - 1), max_size=6),
    st.sets(st.sampled_from(TAGS), max_size=2),
    st.lists(st.sampled_from(FOLDERS), max_size=1, unique=True),
)
questions = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(
    lambda ws: "Who reported the " + " and ".join(ws) + " visitors?"
)


def _allowed(sel: Selection) -> set[str]:
    return {d.article_id for d in DOCS if sel.selects(d.article_id, d.source, d.tags)}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sel=selections,
    question=questions,
    mode=st.sampled_from(["dense", "bm25", "hybrid"]),
    exact_max=st.sampled_from([0, faiss_index.SCOPE_EXACT_MAX]),
)
def test_a_scoped_question_stays_in_its_scope(
    built: Pipeline, sel: Selection, question: str, mode: str, exact_max: int
) -> None:
    allowed = _allowed(sel)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(faiss_index, "SCOPE_EXACT_MAX", exact_max)  # 0: FAISS's selector
        hits = built.search(question, k=10, mode=mode, scope=sel)
        ans = built.ask(question, mode=mode, scope=sel)
    assert {h.article_id for h in hits} <= allowed
    assert {h.article_id for h in ans.passages} <= allowed
    quotes = ([ans.quote] if ans.quote else []) + list(ans.also)
    assert {q.article_id for q in quotes} <= allowed
    if not allowed:
        assert hits == [] and ans.quote is None
    elif mode != "dense" or exact_max:
        # exact search (or BM25) inside a non-empty scope finds something
        assert hits or mode == "bm25"
