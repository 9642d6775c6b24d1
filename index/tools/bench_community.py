"""`newsdesk bench`'s figure for the feedback log: ``gaps`` over 10,000 logged questions.

The questions are logged through :class:`~index.community.feedback.FeedbackStore` as the bot
logs them (abstentions, each with a question vector), in a fresh ``community.sqlite3``; the
vectors are synthetic: ``topics`` random unit directions, each question one of them plus noise
(cosine ~0.9 to its topic, ~0.8 between two questions of one topic), so there is real grouping
to do. Timed: reading the rows back and
grouping them (:func:`~index.community.gaps.group_questions`), what ``newsdesk gaps`` and
``/gaps`` do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

GAPS_QUESTIONS = 10_000
TARGET_GAPS_S = 5.0


def gaps_latency(
    data_dir: Path, n: int = GAPS_QUESTIONS, dim: int = 384, seed: int = 0, topics: int = 1000
) -> dict[str, Any]:
    """Log ``n`` abstentions with ``dim``-dimensional question vectors, then time ``gaps``."""
    from index.community.feedback import FeedbackStore
    from index.community.gaps import group_questions
    from index.config import PrivacySettings
    from index.models import Answer

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((topics, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    topic = rng.integers(topics, size=n)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * (0.5 / np.sqrt(dim))
    vecs = centers[topic] + noise
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = FeedbackStore(data_dir, PrivacySettings(retention_days=0))
    try:
        t0 = time.perf_counter()
        for i in range(n):
            ans = Answer(f"question {i} about topic {topic[i]}?", None, [], confidence=0.1)
            ans.query_vector = vecs[i]
            store.log_answer(ans, channel_id=int(topic[i] % 7) + 1, guild_id=1)
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = store.gap_rows()
        groups = group_questions(rows, limit=10)
        seconds = time.perf_counter() - t0
        full = group_questions(rows)
    finally:
        store.close()
    return {
        "questions": n,
        "dimension": dim,
        "topics": topics,
        "groups": len(full),
        "largest": groups[0].count if groups else 0,
        "fill_s": round(fill_s, 2),
        "seconds": round(seconds, 3),
    }
