"""The articles `newsdesk bench` measures on, and the synthetic data that grows them.

Real articles (``--corpus``, the project's evaluation set, or the bundled ``samples/``) and their
questions; synthetic clustered vectors seeded from real passage vectors (for vector search
alone); :class:`SyntheticEmbedder`, which grows the index with replicated articles and perturbed
real vectors without running the model; and headline-like titles with what people type into
autocomplete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.chunking import all_sentences
from index.embedding.base import BatchProgress, Embedder, Spans
from index.errors import SourceError
from index.models import Document

ROOT = Path(__file__).resolve().parents[2]
SQUAD_REL = Path("shared") / "eval" / "squad-dev" / "articles"
PERTURB = 0.5  # synthetic passage vector = normalise(v + PERTURB * g / sqrt(d))


def find_corpus(explicit: Path | None = None) -> Path:
    """``--corpus``, else the squad-dev articles beside the project or the working directory,
    else the bundled ``samples/``."""
    if explicit is not None:
        if not explicit.is_dir():
            raise SourceError(str(explicit), "no such folder")
        return explicit
    cwd = Path.cwd()
    for base in (ROOT.parent, cwd.parent, cwd):
        if (base / SQUAD_REL).is_dir():
            return base / SQUAD_REL
    for cand in (ROOT / "samples", cwd / "samples"):
        if cand.is_dir():
            return cand
    raise SourceError("--corpus", "no corpus found: give a folder of articles with --corpus")


def find_questions(corpus: Path, texts: Sequence[str], n: int) -> list[str]:
    """Questions from a ``qa.jsonl`` beside the corpus, else the openings of its sentences."""
    qa = corpus.parent / "qa.jsonl"
    out: list[str] = []
    if qa.is_file():
        with qa.open(encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    out.append(str(json.loads(line)["question"]))
                if len(out) >= n:
                    break
    if not out:
        for t in texts:
            for a, b in all_sentences(t):
                words = t[a:b].split()
                if len(words) >= 6:
                    out.append(" ".join(words[:10]).rstrip(".,;:") + "?")
            if len(out) >= n:
                break
    if not out:
        out = ["What happened?"]
    while len(out) < n:
        out.extend(out[: n - len(out)])
    return out[:n]


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def synthetic_vectors(
    n: int,
    seeds: np.ndarray,
    rng: np.random.Generator,
    *,
    per_topic: int = 32,
    topic_noise: float = 1.0,
    noise: float = 0.6,
    min_weight: float = 0.4,
) -> np.ndarray:
    """``n`` clustered unit vectors: topics are the seed vectors plus noise, and each vector is a
    random mix of two topics (weight of the first in [min_weight, 1]) plus noise. Seeded with
    real passage vectors this gives nearest-neighbour cosines like a real corpus (~0.6 for the
    nearest, ~0.55 for the 10th) rather than the near-orthogonal vectors of uniform noise."""
    d = int(seeds.shape[1])
    n_topics = max(2, n // per_topic)
    topics = _normalise(
        seeds[rng.integers(0, len(seeds), n_topics)]
        + topic_noise * rng.standard_normal((n_topics, d), dtype=np.float32) / math.sqrt(d)
    )
    out = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        w = rng.uniform(min_weight, 1.0, (m, 1)).astype(np.float32)
        v = (
            w * topics[rng.integers(0, n_topics, m)]
            + (1 - w) * topics[rng.integers(0, n_topics, m)]
        )
        v += noise * rng.standard_normal((m, d), dtype=np.float32) / math.sqrt(d)
        out[i : i + m] = _normalise(v)
    return out


def synthetic_queries(
    data: np.ndarray, m: int, rng: np.random.Generator, noise: float = 0.8
) -> np.ndarray:
    """Queries near random data points (cosine ~0.78 to their point), like real questions."""
    d = int(data.shape[1])
    base = data[rng.integers(0, len(data), m)]
    return _normalise(base + noise * rng.standard_normal((m, d), dtype=np.float32) / math.sqrt(d))


class SyntheticEmbedder:
    """Stands in for the real model when growing the index with replicated articles: passage
    vectors are the real ones (looked up by passage text) perturbed; sentence vectors are the
    real ones. Name, dimension and token counts are the real embedder's, so the index meta
    matches and the real model can query it."""

    def __init__(
        self,
        base: Embedder,
        lookup: dict[str, tuple[np.ndarray, np.ndarray]],
        rng: np.random.Generator,
    ) -> None:
        self.base = base
        self.name = base.name
        self.dimension = base.dimension
        self.max_seq_length = base.max_seq_length
        self.lookup = lookup
        self.rng = rng
        self._counts: dict[str, int] = {}
        self.fallbacks = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._counts]
        if missing:
            self._counts.update(zip(missing, self.base.count_tokens(missing), strict=True))
        return [self._counts[t] for t in texts]

    def embed(self, texts: Sequence[str], *, progress: BatchProgress | None = None) -> np.ndarray:
        return self.base.embed(texts, progress=progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.base.embed_query(text)

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        *,
        progress: BatchProgress | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        d = self.dimension
        vecs = np.empty((len(texts), d), dtype=np.float32)
        sents: list[np.ndarray] = []
        keys = list(self.lookup)
        for i, (t, sp) in enumerate(zip(texts, spans, strict=True)):
            found = self.lookup.get(t.split("\n", 1)[-1])
            if found is None or len(found[1]) != len(sp):
                self.fallbacks += 1
                found = self.lookup[keys[int(self.rng.integers(0, len(keys)))]]
                sent = np.repeat(found[0][None, :], len(sp), axis=0)
            else:
                sent = found[1]
            vecs[i] = found[0]
            sents.append(sent)
        vecs += PERTURB * self.rng.standard_normal(vecs.shape, dtype=np.float32) / math.sqrt(d)
        vecs = _normalise(vecs)
        if progress:
            progress(len(texts))
        return vecs, sents


_TITLE_WORDS = [
    "harbour",
    "cranes",
    "owner",
    "port",
    "authority",
    "valmare",
    "council",
    "budget",
    "vote",
    "bridge",
    "library",
    "reopens",
    "market",
    "sunday",
    "ferry",
    "timetable",
    "volcano",
    "erupts",
    "island",
    "chess",
    "champion",
    "title",
    "bakery",
    "bread",
    "prize",
    "storm",
    "warning",
    "coast",
    "school",
    "strike",
    "teachers",
    "rail",
    "line",
    "delayed",
    "election",
    "results",
    "mayor",
    "resigns",
    "hospital",
    "wing",
    "opens",
    "river",
    "flood",
    "defences",
    "museum",
    "exhibit",
    "stolen",
    "painting",
    "football",
    "club",
    "stadium",
    "plans",
    "airport",
    "runway",
    "noise",
    "farmers",
    "protest",
    "water",
    "prices",
    "energy",
    "grid",
    "solar",
    "wind",
    "turbine",
    "court",
    "ruling",
    "housing",
    "rents",
    "students",
    "tuition",
    "fees",
    "festival",
    "music",
    "police",
    "arrest",
    "fraud",
    "bank",
    "merger",
    "shares",
    "fall",
    "tech",
    "startup",
    "funding",
    "space",
    "launch",
    "satellite",
    "weather",
    "heatwave",
    "drought",
    "wildfire",
    "forest",
    "rescue",
    "mountain",
    "climbers",
    "tourism",
    "record",
    "summer",
]


def synthetic_titles(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct headline-like titles (5-9 words and a number), reproducibly."""
    rng = np.random.default_rng(seed)
    words = np.array(_TITLE_WORDS)
    out = []
    for i in range(n):
        k = int(rng.integers(5, 10))
        picked = rng.choice(words, size=k, replace=False)
        out.append(" ".join(picked).capitalize() + f" {i}")
    return out


def autocomplete_queries(titles: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """What people type: title prefixes (1-20 chars), inner substrings, and misspelt prefixes."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for i in range(n):
        t = titles[int(rng.integers(len(titles)))]
        kind = i % 3
        if kind == 0:
            out.append(t[: int(rng.integers(1, 21))])
        elif kind == 1:
            start = int(rng.integers(0, max(1, len(t) - 10)))
            out.append(t[start : start + int(rng.integers(4, 11))])
        else:
            q = list(t[: int(rng.integers(8, 16))])
            j = int(rng.integers(1, len(q)))
            q[j - 1], q[j] = q[j], q[j - 1]  # two letters swapped
            out.append("".join(q))
    return out


def replicas(
    articles: Sequence[tuple[Document, int]], have: int, size: int, start: int
) -> tuple[list[Document], int]:
    """Copies of the real ``(article, passage count)`` under new sources, round after round
    (``synthetic://ROUND/…``, from round ``start + 1``), until an index of ``have`` passages
    holds ``size``; returns them and the last round."""
    docs: list[Document] = []
    count = have
    while count < size:
        start += 1
        for a, passages in articles:
            source = f"synthetic://{start}/{a.article_id}"
            docs.append(Document(source, a.title, a.text, None, a.published))
            count += max(1, passages)
            if count >= size:
                break
    return docs, start


def changed_copies(
    articles: Sequence[Any], share: float, rng: np.random.Generator, synthetic_only: bool
) -> list[Document]:
    """``share`` of the stored ``articles`` (at least one; only the synthetic ones when asked
    and there are any), picked at random, each with a line appended: an edit to re-index."""
    rows = list(articles)
    if synthetic_only:
        rows = [a for a in rows if a.source.startswith("synthetic://")] or rows
    n = max(1, math.ceil(len(rows) * share))
    pick = [rows[int(i)] for i in rng.choice(len(rows), n, replace=False)]
    stamp = dt.datetime.now(dt.UTC).isoformat()
    return [
        Document(a.source, a.title, a.text + f"\n\nUpdated {stamp}.", a.url, a.published)
        for a in pick
    ]
