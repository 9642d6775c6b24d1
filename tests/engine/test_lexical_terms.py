"""BM25 from already tokenised passages (the terms the Milvus backend keeps in its rows) is the
index built from their texts, to the bit: both backends give the same keyword scores."""

from __future__ import annotations

import random

import numpy as np
import pytest

from index.storage.lexical import LexicalIndex, Tokens, tokenize

WORDS = [
    "volcano",
    "island",
    "ash",
    "eruption",
    "lava",
    "sea",
    "chess",
    "champion",
    "title",
    "game",
    "bakery",
    "bread",
    "prize",
    "sourdough",
    "ferry",
    "harbour",
    "storm",
    "river",
    "bridge",
    "council",
    "vote",
    "school",
    "teacher",
    "running",
    "runners",
]


def texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [
        f"Title {i}\n" + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 30)))
        for i in range(n)
    ]


QUERIES = ["volcano eruption", "the chess champion", "bread prize sourdough", "ferry storm"]


def scores(lex: LexicalIndex, ids: list[int]) -> list[np.ndarray]:
    return [lex.scores_for(q, ids) for q in QUERIES]


def same(a: LexicalIndex, b: LexicalIndex) -> None:
    assert a.ids.tolist() == b.ids.tolist()
    assert a.df == b.df
    ids = [*a.ids.tolist(), 10_000]  # and an unknown id
    for x, y in zip(scores(a, ids), scores(b, ids), strict=True):
        assert np.array_equal(x, y)  # bit for bit, not approximately
    for q in QUERIES:
        assert a.search(q, 10) == b.search(q, 10)


def test_tokens_of_terms_is_tokens_of() -> None:
    corpus = texts(40, seed=1)
    vocab = ["zzz", "volcano"]
    a, b = Tokens.of(corpus, vocab), Tokens.of_terms(tokenize(corpus), vocab)
    assert a.vocab == b.vocab and vocab == ["zzz", "volcano"]  # the given vocab is not touched
    assert np.array_equal(a.flat, b.flat) and np.array_equal(a.offsets, b.offsets)


def test_updated_terms_is_updated_and_a_rebuild() -> None:
    first, more = texts(30, seed=2), texts(12, seed=3)
    base = LexicalIndex.build(list(range(1, 31)), first)
    removed = [3, 4, 17]
    new_ids = list(range(31, 43))
    by_texts = base.updated(removed, new_ids, more)
    by_terms = base.updated_terms(removed, new_ids, tokenize(more))
    assert by_texts is not None and by_terms is not None
    same(by_terms, by_texts)
    kept = [(i, t) for i, t in zip(range(1, 31), first, strict=True) if i not in removed]
    rebuilt = LexicalIndex.build([i for i, _ in kept] + new_ids, [t for _, t in kept] + more)
    same(by_terms, rebuilt)
    assert base.updated_terms(removed, [5], [["volcano"]]) is None  # would break the id order


def test_milvus_bm25_from_stored_terms_is_the_faiss_one() -> None:
    """Rows come back from Milvus in any order: the index is the one built from the texts."""
    pytest.importorskip("pymilvus")
    from index.storage.milvus.backend import lexical_delta, lexical_from_terms

    first, more = texts(25, seed=4), texts(9, seed=5)
    ids = list(range(1, 26))
    order = list(range(25))
    random.Random(6).shuffle(order)
    terms = tokenize(first)
    built = lexical_from_terms([ids[i] for i in order], [terms[i] for i in order])
    same(built, LexicalIndex.build(ids, first))
    new_ids = [40 - k for k in range(9)]  # descending, as a scan may return them
    updated = lexical_delta(built, [2, 7], new_ids, tokenize(more))
    assert updated is not None
    want = built.updated([2, 7], sorted(new_ids), [more[new_ids.index(i)] for i in sorted(new_ids)])
    assert want is not None
    same(updated, want)
