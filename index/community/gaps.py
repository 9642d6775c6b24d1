"""``gaps``: the questions the articles do not answer, grouped by meaning and ranked by count.

The rows are every abstention and every answer rated 👎 (:meth:`FeedbackStore.gap_rows`), each
with the embedding retrieval computed when it was asked. No LLM, no model: questions that read
the same after case and spacing are one entry first; then the entries' unit vectors are
compared in blocks (one matrix product per block of 2,048 against all: ~10,000 x 10,000 x 384
in about a second on one core) and every pair with a cosine of at least ``threshold`` is a
neighbour. Leaders are taken greedily, the entry with the most (weighted) neighbours first,
each claiming its neighbours that no earlier leader claimed: a group is one question and those
close to it, so a chain of slightly different questions does not merge unrelated ones (as
connected components would). The leader, the most central question, represents its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.community.feedback import GapRow

DEFAULT_THRESHOLD = 0.75
_BLOCK = 2048


@dataclass
class Gap:
    """One group of similar unanswered (or 👎-rated) questions."""

    question: str  # the representative: the group's most central question
    count: int  # times asked in the period
    last_asked: float
    channels: list[int] = field(default_factory=list)
    abstained: int = 0  # of ``count``, abstentions
    downvoted: int = 0  # of ``count``, answers rated 👎
    examples: list[str] = field(default_factory=list)  # other wordings (≤ 3)

    def to_json(self) -> dict[str, Any]:
        from index.community.periods import iso

        return {
            "question": self.question,
            "count": self.count,
            "last_asked": iso(self.last_asked),
            "channels": self.channels,
            "abstained": self.abstained,
            "downvoted": self.downvoted,
            "examples": self.examples,
        }


def _text_key(question: str) -> str:
    return " ".join(question.lower().split()).rstrip(" ?!.")


def _neighbours(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j) with ``x[i] · x[j] >= threshold`` (i == j included), sorted by i.

    Similarity is symmetric: each block is compared with itself and the rows after it only
    (half the products), and every pair found is added both ways."""
    found_rows: list[np.ndarray] = []
    found_cols: list[np.ndarray] = []
    for b in range(0, len(x), _BLOCK):
        sims = x[b : b + _BLOCK] @ x[b:].T
        r, c = np.nonzero(sims >= threshold)
        r, c = r.astype(np.int64) + b, c.astype(np.int64) + b
        upper = c >= r  # the block against itself is a square: each pair once
        r, c = r[upper], c[upper]
        found_rows += [r, c[c != r]]
        found_cols += [c, r[c != r]]
    r, c = np.concatenate(found_rows), np.concatenate(found_cols)
    order = np.argsort(r, kind="stable")
    return r[order], c[order]


def group_questions(
    rows: Sequence[GapRow], threshold: float = DEFAULT_THRESHOLD, limit: int | None = None
) -> list[Gap]:
    """``rows`` grouped by similar meaning, the most asked group first (then the latest)."""
    if not rows:
        return []
    # 1. the same words, once: one entry per distinct question
    keys: dict[str, int] = {}
    members: list[list[int]] = []
    for i, r in enumerate(rows):
        k = keys.setdefault(_text_key(r.question), len(keys))
        if k == len(members):
            members.append([])
        members[k].append(i)
    n = len(members)
    weight = np.array([len(m) for m in members], dtype=np.float64)
    last = np.array([max(rows[i].asked_at for i in m) for m in members])
    # 2. one unit vector per entry (entries without one, or of another model's dimension,
    # stay alone)
    dims = [r.vector.shape[0] for r in rows if r.vector is not None]
    dim = dims[-1] if dims else 0
    entry = np.zeros(len(rows), dtype=np.int64)
    for k, m in enumerate(members):
        entry[m] = k
    usable = [i for i, r in enumerate(rows) if r.vector is not None and r.vector.shape[0] == dim]
    x = np.zeros((n, max(dim, 1)), dtype=np.float32)
    if usable:
        np.add.at(x, entry[usable], np.stack([rows[i].vector for i in usable]))  # type: ignore[misc]
    norms = np.linalg.norm(x, axis=1)
    has = norms > 0
    x[has] /= norms[has, None]
    # 3. neighbours above the threshold, leaders by weighted degree
    idx = np.flatnonzero(has)
    starts = np.zeros(n + 1, dtype=np.int64)
    nbr = np.zeros(0, dtype=np.int64)
    degree = weight.copy()
    if len(idx):
        src, dst = _neighbours(x[idx], threshold)
        src, dst = idx[src], idx[dst]
        nbr = dst
        starts[1:] = np.cumsum(np.bincount(src, minlength=n))
        degree = np.where(has, np.bincount(src, weights=weight[dst], minlength=n), weight)
    order = np.lexsort((-last, -weight, -degree))  # most neighbours, most asked, latest
    leader = np.full(n, -1, dtype=np.int64)
    for k in order.tolist():
        if leader[k] >= 0:
            continue
        leader[k] = k
        if has[k]:
            near = nbr[starts[k] : starts[k + 1]]
            near = near[leader[near] < 0]
            leader[near] = k
    # 4. the groups
    groups: dict[int, list[int]] = {}
    for k in range(n):
        groups.setdefault(int(leader[k]), []).append(k)
    out: list[Gap] = []
    for head, entries in groups.items():
        asked = [i for k in entries for i in members[k]]
        lead_rows = [rows[i] for i in members[head]]
        channels = sorted({c for i in asked if (c := rows[i].channel_id) is not None})
        others = sorted((k for k in entries if k != head), key=lambda k: (-weight[k], -last[k]))
        out.append(
            Gap(
                question=max(lead_rows, key=lambda g: g.asked_at).question,
                count=len(asked),
                last_asked=max(rows[i].asked_at for i in asked),
                channels=channels,
                abstained=sum(rows[i].abstained for i in asked),
                downvoted=sum(1 for i in asked if rows[i].down > 0),
                examples=[rows[members[k][-1]].question for k in others[:3]],
            )
        )
    out.sort(key=lambda g: (-g.count, -g.last_asked))
    return out[:limit] if limit is not None else out
