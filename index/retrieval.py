"""Fusion of ranked lists and merging of overlapping passages. Pure functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .models import Hit

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
                    )
                break
        else:
            out.append(h)
    return out
