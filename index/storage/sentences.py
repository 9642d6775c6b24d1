"""Sentence vectors of a passage, packed into one blob: its sentences' spans and 8-bit
unit vectors (8 + dim bytes a sentence), stored beside the passage by every backend. The
answer step reads them to score sentences without re-embedding; a damaged blob is found
(:func:`sentence_problem`) and skipped, never a crash deep in numpy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)

SentenceVectors = tuple[np.ndarray, np.ndarray]  # spans (n, 2) int32, vectors (n, dim) float32


def pack_sentences(spans: Sequence[tuple[int, int]], vectors: np.ndarray) -> bytes:
    """Sentence spans + unit vectors, 8-bit quantised: 8 + dim bytes per sentence."""
    n = len(spans)
    dim = int(vectors.shape[1]) if n else 0
    head = np.asarray([n, dim], dtype=np.int32).tobytes()
    sp = np.asarray(spans, dtype=np.int32).reshape(n, 2).tobytes()
    q = np.clip(np.rint(np.asarray(vectors, np.float32) * 127.0), -127, 127).astype(np.int8)
    return head + sp + q.tobytes()


class BadSentences(ValueError):
    """A stored sentence-vector blob that is not what :func:`pack_sentences` writes."""


def sentence_problem(blob: bytes, dim: int | None = None, length: int | None = None) -> str | None:
    """What is wrong with a sentence-vector blob (None: nothing): its size must match its
    header, its vectors the index's ``dim``, its spans lie inside a passage of ``length``."""
    if len(blob) < 8:
        return f"{len(blob)} bytes, shorter than its header"
    n, d = (int(x) for x in np.frombuffer(blob[:8], dtype=np.int32))
    if n < 0 or d < 0 or (n and d == 0):
        return f"header says {n} sentences of dimension {d}"
    if len(blob) != 8 + 8 * n + n * d:
        return f"{len(blob)} bytes for {n} sentences of dimension {d}"
    if n and dim is not None and d != dim:
        return f"dimension {d}, expected {dim}"
    sp = np.frombuffer(blob[8 : 8 + 8 * n], dtype=np.int32).reshape(n, 2)
    if n and ((sp[:, 0] < 0).any() or (sp[:, 1] <= sp[:, 0]).any()):
        return "sentence offsets out of order"
    if n and length is not None and int(sp[:, 1].max()) > length:
        return "sentence offsets past the end of the passage"
    return None


def unpack_sentences(blob: bytes) -> SentenceVectors:
    """The spans and unit vectors of :func:`pack_sentences`; :class:`BadSentences` (a
    ValueError) for a damaged blob, never a reshape error deep in numpy."""
    bad = sentence_problem(blob)
    if bad is not None:
        raise BadSentences(bad)
    n, dim = (int(x) for x in np.frombuffer(blob[:8], dtype=np.int32))
    sp = np.frombuffer(blob[8 : 8 + 8 * n], dtype=np.int32).reshape(n, 2)
    q = np.frombuffer(blob[8 + 8 * n : 8 + 8 * n + n * dim], dtype=np.int8).reshape(n, dim)
    vecs = q.astype(np.float32) / 127.0
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return sp, vecs / np.maximum(norms, 1e-9)


def usable_sentences(
    rows: Iterable[tuple[int, bytes]], dim: int | None, where: str
) -> dict[int, SentenceVectors]:
    """Sentence vectors by chunk id; a damaged blob is left out (the answer then splits that
    passage itself, lexical scores only) and logged: `newsdesk check` reports it."""
    out: dict[int, SentenceVectors] = {}
    for cid, blob in rows:
        bad = (
            sentence_problem(blob, dim)
            if isinstance(blob, bytes)
            else f"a {type(blob).__name__}, not bytes"
        )
        if bad is not None:
            log.warning(
                "the sentence vectors of passage %s in %s are damaged (%s); skipped them "
                "(`newsdesk reindex` rebuilds them)",
                cid,
                where,
                bad,
            )
            continue
        out[cid] = unpack_sentences(blob)
    return out
