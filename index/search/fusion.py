"""Fusion of ranked lists and merging of overlapping passages. Pure functions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from index.models import Hit

Ranked = Sequence[tuple[int, float]]  # (chunk id, retriever score), best first
Fused = list[tuple[int, float, dict[str, float]]]


def rrf(
    lists: Mapping[str, Ranked],
    weights: Mapping[str, float] | None = None,
    k: int = 60,
) -> Fused:
    """Weighted reciprocal-rank fusion: ``score(d) = sum_r w_r / (k + rank_r(d))``, rank from 1.

    Returns (chunk id, fused score, details) best first; details hold each retriever's rank and
    raw score (``dense_rank``, ``dense``, ``bm25_rank``, ``bm25``). Ties keep first-seen order.
    """
    weights = weights or {}
    scores: dict[int, float] = {}
    details: dict[int, dict[str, float]] = {}
    for name, ranked in lists.items():
        w = float(weights.get(name, 1.0))
        for rank, (cid, raw) in enumerate(ranked, start=1):
            scores[cid] = scores.get(cid, 0.0) + w / (k + rank)
            d = details.setdefault(cid, {})
            d[f"{name}_rank"] = float(rank)
            d[name] = float(raw)
    order = sorted(scores, key=lambda c: -scores[c])
    return [(cid, scores[cid], details[cid]) for cid in order]


def _minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-12:
        return np.ones_like(values) if hi > 0 else np.zeros_like(values)
    return (values - lo) / (hi - lo)


def relative_fusion(
    ids: Sequence[int],
    scores: Mapping[str, np.ndarray],
    weights: Mapping[str, float] | None = None,
) -> Fused:
    """Relative score fusion over a candidate set: min-max normalise each retriever's scores
    over the candidates, then take the weighted mean (weights normalised to sum 1).

    ``scores[name][i]`` is retriever ``name``'s exact score for candidate ``ids[i]`` (so every
    candidate has every score, not only those in that retriever's own top list). Details keep
    each raw score and the rank within each retriever.
    """
    weights = weights or {}
    if not len(ids):
        return []
    names = [n for n in scores if float(weights.get(n, 1.0)) > 0]
    total_w = sum(float(weights.get(n, 1.0)) for n in names) or 1.0
    fused = np.zeros(len(ids), dtype=np.float64)
    ranks: dict[str, np.ndarray] = {}
    for n in scores:
        s = np.asarray(scores[n], dtype=np.float64)
        ranks[n] = np.argsort(np.argsort(-s, kind="stable"), kind="stable") + 1
        if n in names:
            fused += float(weights.get(n, 1.0)) / total_w * _minmax(s)
    order = np.argsort(-fused, kind="stable").tolist()
    # plain Python lists: indexing numpy scalars one by one dominated this loop
    cols = [
        (n, f"{n}_rank", np.asarray(scores[n], dtype=np.float64).tolist(), ranks[n].tolist())
        for n in scores
    ]
    id_list = [int(i) for i in ids]
    fused_list = fused.tolist()
    out: Fused = []
    for i in order:
        d: dict[str, float] = {}
        for n, rank_key, vals, rk in cols:
            d[n] = vals[i]
            d[rank_key] = float(rk[i])
        out.append((id_list[i], fused_list[i], d))
    return out


def single(name: str, ranked: Ranked) -> Fused:
    """One retriever's list in the fused shape (score = raw retriever score)."""
    return [
        (cid, float(s), {f"{name}_rank": float(i), name: float(s)})
        for i, (cid, s) in enumerate(ranked, start=1)
    ]


def merge_overlapping(hits: Sequence[Hit], span_text: Callable[[str, int, int], str]) -> list[Hit]:
    """Merge hits of one article whose spans overlap or touch into one hit.

    The merged hit keeps the best rank position and score and covers the union of the spans;
    ``span_text(article_id, start, end)`` supplies the article text of the union.
    """
    out: list[Hit] = []
    for h in hits:
        for i, m in enumerate(out):
            if m.article_id == h.article_id and h.start <= m.end and m.start <= h.end:
                start, end = min(m.start, h.start), max(m.end, h.end)
                if (start, end) != (m.start, m.end):
                    text = span_text(m.article_id, start, end)
                    details = {**h.details, **m.details}
                    out[i] = Hit(
                        chunk_id=m.chunk_id,
                        article_id=m.article_id,
                        title=m.title,
                        source=m.source,
                        url=m.url,
                        text=text,
                        start=start,
                        end=end,
                        score=max(m.score, h.score),
                        published=m.published,
                        details=details,
                        parts=m.parts + h.parts,
                    )
                break
        else:
            out.append(h)
    return out


def _timestamp(published: str | None) -> float | None:
    """Seconds since the epoch for an ISO 8601 date or datetime (dates at 00:00 UTC)."""
    if not published:
        return None
    try:
        when = dt.datetime.fromisoformat(published.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(published.strip()[:10])
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def prefer_recent(hits: Sequence[Hit], weight: float) -> list[Hit]:
    """Re-rank ``hits`` so that newer articles win near-ties (``weight`` 0 = unchanged order).

    Freshness is the article's date min-max normalised over these hits (newest 1, oldest 0;
    undated 0). Each score gains ``weight * freshness * s`` where ``s`` is the largest absolute
    score, so the weight is relative to the best score whatever the retriever's scale. The
    sort is stable: hits that stay tied keep their order. ``details["recency"]`` holds the
    freshness.
    """
    if weight <= 0 or len(hits) < 2:
        return list(hits)
    stamps = [_timestamp(h.published) for h in hits]
    known = [t for t in stamps if t is not None]
    if not known:
        return list(hits)
    lo, hi = min(known), max(known)
    scale = max(abs(h.score) for h in hits) or 1.0
    out: list[Hit] = []
    for h, t in zip(hits, stamps, strict=True):
        fresh = 0.0 if t is None else (1.0 if hi <= lo else (t - lo) / (hi - lo))
        details = {**h.details, "recency": fresh}
        out.append(dataclasses.replace(h, score=h.score + weight * fresh * scale, details=details))
    return sorted(out, key=lambda h: -h.score)
