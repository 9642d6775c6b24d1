"""A question against one snapshot: retrieve, fuse, merge, and choose the quote to answer with.

The facade (:mod:`index.pipeline`) validates the question, holds a snapshot for its length,
corrects its spelling and embeds it; what it hands here is one :class:`Query` value. Everything
below reads that snapshot and the store's view of the same generation, and writes nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from index.config import RetrievalSettings, Settings
from index.errors import EmptyIndexError, InvalidQuestionError
from index.models import Answer, Hit, Quote
from index.search import answer as answer_mod
from index.search import rerank as rerank_mod
from index.search import smalltalk
from index.search.fusion import (
    Fused,
    merge_overlapping,
    prefer_recent,
    relative_fusion,
    rrf,
    single,
)
from index.search.rerank import Scorer
from index.storage.allowed import Allowed
from index.storage.base import Snapshot

if TYPE_CHECKING:
    from index.storage.base import StoreReader

# abstention threshold of the older scorer (answer.reranker = "none"), calibrated on squad-dev
LEGACY_MIN_CONFIDENCE = 0.42


@dataclass(frozen=True)
class Query:
    """One question as retrieval sees it (instead of seven arguments through every call)."""

    text: str  # misspellings corrected: what is searched
    vector: np.ndarray | None  # ``text`` embedded (None for a BM25-only search)
    mode: str  # "dense", "bm25" or "hybrid"
    k: int  # hits wanted
    asked: str = ""  # as the user wrote it, which the answer carries ("" = ``text``)
    exclude: frozenset[str] = frozenset()  # article ids to leave out (evaluation)
    started: float = 0.0  # time.perf_counter() when it was asked, for ``elapsed_ms``
    # a scope: only these passages are searched (filtered inside each search); None = all
    allowed: Allowed | None = None


@dataclass
class Scoring:
    """How a quote is chosen: the learned sentence scorer (None: the older score), its
    combiner, and the confidence below which the answer abstains."""

    scorer: Scorer | None
    combiner: answer_mod.Combiner | None
    min_confidence: float


def load_scorer(name: str) -> tuple[Scorer | None, answer_mod.Combiner | None]:
    """The learned answer-sentence scorer ``answer.reranker`` names (None for "none"; the
    shipped one for "bundled") and the combiner its model card carries."""
    name = name.strip()
    if name.lower() == "none":
        return None, None
    scorer = rerank_mod.load(None if name.lower() == "bundled" else name)
    info = getattr(scorer, "info", None)
    return scorer, answer_mod.Combiner.from_meta(info.extra) if info else None


def calibrated_threshold(scorer: Scorer | None) -> float:
    """The abstention threshold calibrated for ``scorer`` (used unless the config sets one)."""
    if isinstance(scorer, rerank_mod.OnnxReranker):
        return scorer.info.threshold
    return LEGACY_MIN_CONFIDENCE


def validate_question(question: str, limit: int, what: str = "question") -> str:
    """``question`` with its whitespace collapsed; empty or longer than ``limit`` is an error
    that names ``what`` was given ("question", or "query" for a search)."""
    q = " ".join((question or "").split())
    if not q:
        hint = "ask something about" if what == "question" else "give words to look for in"
        raise InvalidQuestionError(f"the {what} is empty: {hint} the articles")
    if len(q) > limit:
        raise InvalidQuestionError(
            f"the {what} is too long ({len(q):,} characters; the limit is {limit:,}): "
            f"{'ask' if what == 'question' else 'give'} something shorter"
        )
    return q


def searched_as(asked: str, spelt: str | None, snap: Snapshot) -> str | None:
    """``asked`` with its misspelt words corrected (``spelt`` when that is already it), for the
    answer to say what was searched; None when spelling changed nothing."""
    fixed = spelt if spelt is not None else snap.lexical.spell(asked)
    return fixed if fixed != asked else None


def require_content(snap: Snapshot) -> None:
    """Nothing indexed yet: an error that says to add articles, not an empty answer."""
    if len(snap.lexical) == 0 and len(snap.vectors) == 0:
        raise EmptyIndexError()


def fuse(r: RetrievalSettings, q: Query, snap: Snapshot, extra: int = 0) -> Fused:
    """Dense and/or BM25 candidates for ``q`` (``extra`` more, for excluded passages), fused
    by ``retrieval.fusion`` in hybrid mode."""
    n = max(r.candidates, r.k) + extra
    lists = {}
    if q.mode in ("dense", "hybrid") and q.vector is not None:
        lists["dense"] = snap.vectors.search(q.vector, n, q.allowed)
    if q.mode in ("bm25", "hybrid"):
        lists["bm25"] = snap.lexical.search(q.text, n, q.allowed)
    weights = {"dense": r.dense_weight, "bm25": r.bm25_weight}
    if q.mode == "hybrid" and r.fusion == "rrf":
        return rrf(lists, weights, k=r.rrf_k)
    if q.mode == "hybrid" and q.vector is not None:
        ids = list(dict.fromkeys([c for c, _ in lists["dense"]] + [c for c, _ in lists["bm25"]]))
        scores = {
            "dense": snap.vectors.scores_for(q.vector, ids),
            "bm25": snap.lexical.scores_for(q.text, ids),
        }
        return relative_fusion(ids, scores, weights)
    name = "dense" if q.mode == "dense" else "bm25"
    return single(name, lists.get(name, []))


def hits(
    store: StoreReader,
    r: RetrievalSettings,
    fused: Fused,
    k: int,
    exclude: frozenset[str] = frozenset(),
) -> list[Hit]:
    """The best ``k`` passages of ``fused`` as hits, overlapping ones merged, newer ones
    preferred by ``retrieval.recency_weight``."""
    # fetch a few more than k: merging overlapping passages can shrink the list
    want = k * 2
    pos = 0
    out: list[Hit] = []
    while pos < len(fused) and len(out) < want:
        part = store.hits(fused[pos : pos + want])
        pos += want
        out.extend(h for h in part if h.article_id not in exclude)
    merged = merge_overlapping(out, store.article_span)
    if r.recency_weight > 0:
        merged = prefer_recent(merged, r.recency_weight)
    return merged[:k]


def search_passages(
    store: StoreReader, r: RetrievalSettings, q: Query, snap: Snapshot
) -> list[Hit]:
    """The passages that match ``q`` best, without choosing a quote."""
    return hits(store, r, fuse(r, q, snap), q.k)


def answer_query(
    store: StoreReader,
    settings: Settings,
    q: Query,
    snap: Snapshot,
    scoring: Callable[[], Scoring],
) -> tuple[Answer, answer_mod.Reranked | None]:
    """The answer to ``q``, and the reranker's scored sentences when it chose the quote.

    ``scoring`` is called only for a question that is not small talk (the reranker loads on
    first use)."""
    asked = q.asked or q.text
    kind = smalltalk.classify(asked)
    if kind is not None:  # "help", "thanks", "42": never a random quote
        ans = Answer(asked, None, [], smalltalk=kind)
        ans.elapsed_ms = (time.perf_counter() - q.started) * 1000
        return ans, None
    assert q.vector is not None
    k = q.k
    extra = store.chunk_count(q.exclude) if q.exclude else 0
    sc = scoring()
    scorer = sc.scorer
    w = answer_mod.AnswerWeights()
    if scorer is not None:  # the reranker reads the best sentences of more passages
        w = dataclasses.replace(w, passages=settings.answer.rerank_passages)
    found = hits(
        store,
        settings.retrieval,
        fuse(settings.retrieval, q, snap, extra),
        max(k, w.passages),
        q.exclude,
    )
    also: list[Quote] = []
    reranked = None
    max_chars = settings.answer.max_chars
    if scorer is not None:
        top = found[: w.passages]
        cos = snap.vectors.scores_for(q.vector, [h.chunk_id for h in top]).tolist()
        reranked = answer_mod.rerank_select(
            q.text,
            found,
            q.vector,
            store.sentence_vectors,
            snap.lexical.idf,
            scorer,
            max_chars=max_chars,
            weights=w,
            k=settings.answer.rerank_candidates,
            passage_cos=cos,
            combiner=sc.combiner,
            pair_ratio=settings.answer.pair_ratio,
        )
        quote, confidence = reranked.quote, reranked.confidence
        if quote is not None and confidence >= sc.min_confidence:
            more = answer_mod.second_part(q.text, found, reranked, scorer, max_chars)
            also = [x for x, p in more if p >= sc.min_confidence]
        found = [found[i] for i in reranked.order]
    else:
        quote, _cand = answer_mod.select(
            q.text,
            found,
            q.vector,
            store.sentence_vectors,
            snap.lexical.idf,
            max_chars=max_chars,
            weights=w,
        )
        top = found[: w.conf_passages]
        cosines = snap.vectors.scores_for(q.vector, [h.chunk_id for h in top]).tolist()
        confidence = answer_mod.confidence(q.text, top, cosines, snap.lexical.idf, w)
    suggestions: list[str] = []
    if quote is None or confidence < sc.min_confidence:
        quote = None
        for h in found:
            if h.title not in suggestions:
                suggestions.append(h.title)
        suggestions = suggestions[:3]
    ans = Answer(asked, quote, found[:k], suggestions=suggestions, confidence=confidence, also=also)
    ans.query_vector = q.vector  # for the feedback log (index.community): never embedded twice
    ans.elapsed_ms = (time.perf_counter() - q.started) * 1000
    return ans, reranked
