"""`newsdesk bench`: question latency inside a channel scope beside the same questions over the
whole index (issue 20: a scope covering 1 % of the passages answers within 1.5x the unscoped
p50). The scope is a random set of articles (seeded) holding about ``SCOPE_FRACTION`` of the
passages; each question is asked over everything and in the scope, back to back, so both see
the same machine load. The scope is resolved once per generation (the warm-up pays it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from index.search.scope import Selection
from index.tools.bench_parts import percentiles

SCOPE_FRACTION = 0.01
TARGET_SCOPED_RATIO = 1.5


def one_percent_scope(pipe: Any, seed: int, fraction: float = SCOPE_FRACTION) -> Selection:
    """Random articles (seeded) until their passages reach ``fraction`` of the index."""
    rows = pipe.list_articles()
    total = sum(r.chunk_count for r in rows)
    rnd = random.Random(seed)
    rnd.shuffle(rows)
    want, have = max(1, round(total * fraction)), 0
    ids: set[str] = set()
    for r in rows:  # articles that fit, so that the scope stays near the fraction
        if have >= want:
            break
        if not ids or have + r.chunk_count <= want:
            ids.add(r.id)
            have += r.chunk_count
    return Selection(articles=frozenset(ids), name="bench 1%")


def scoped_latency(pipe: Any, questions: Sequence[str], seed: int) -> dict[str, Any]:
    """p50/p95/p99 of ``ask`` in a 1 % scope and over everything, alternately, and their ratio."""
    if not questions:
        return {}
    scope = one_percent_scope(pipe, seed)
    with pipe.reading() as snap:
        allowed = pipe._scopes.allowed(pipe.store, snap.generation, scope)
        passages = len(snap.vectors)
    for q in questions[:5]:  # warm-up: the scope's own vectors and BM25 positions
        pipe.ask(q, scope=scope)
    scoped: list[float] = []
    whole: list[float] = []
    for q in questions:
        t0 = time.perf_counter()
        pipe.ask(q)
        t1 = time.perf_counter()
        pipe.ask(q, scope=scope)
        t2 = time.perf_counter()
        whole.append(t1 - t0)
        scoped.append(t2 - t1)
    s, w = percentiles(scoped), percentiles(whole)
    return {
        "scope_passages": len(allowed),
        "passages": passages,
        "fraction": round(len(allowed) / passages, 4) if passages else None,
        "ask_ms": s,
        "unscoped_ms": w,
        "ratio_p50": round(s["p50"] / w["p50"], 3) if w["p50"] else None,
    }


def scoped_target(questions: Sequence[dict[str, Any]], size: int) -> dict[str, Any] | None:
    """The target row for the size nearest ``size`` that has a scoped figure."""
    rows = [q for q in questions if q.get("scoped")]
    if not rows:
        return None
    best = min(rows, key=lambda q: abs(q["passages"] - size))
    sc = best["scoped"]
    return {
        "target": f"ask p50 in a {sc['fraction']:.1%} scope / unscoped p50 at "
        f"{best['passages']:,} passages",
        "goal": f"<= {TARGET_SCOPED_RATIO}",
        "measured": sc["ratio_p50"],
        "met": (sc["ratio_p50"] or 99) <= TARGET_SCOPED_RATIO,
    }
