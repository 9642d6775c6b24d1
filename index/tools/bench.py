"""`newsdesk bench`: how fast newsdesk indexes, answers and starts, measured in one run.

Every figure is compared with what the hardware allows, measured in the same run:

- **indexing**: the real pipeline (read files -> chunk -> embed -> store) on a corpus of real
  articles, against a bare ``SentenceTransformer.encode`` of the same passage texts with the same
  batch size (passages/s and their ratio);
- **questions**: ``Pipeline.ask`` (embed + dense and BM25 search + fusion + answer) against a
  bare single-question ``encode``, timed alternately, p50/p95/p99; on the real corpus and grown
  to each ``--sizes`` by *synthetic passages*: the real articles replicated under new sources
  (same text, so BM25 sees each term in proportionally more passages) with their real passage
  vectors perturbed (``v + 0.5 g / sqrt(d)``, renormalised: cosine ~0.89 to the original) and
  their real sentence vectors;
- **vector search alone** at each size: synthetic clustered unit vectors seeded from the real
  passage vectors (topics = real vectors plus noise; each vector a random mix of two topics plus
  noise, which gives nearest-neighbour cosines like the real corpus'; queries = vectors near
  random points), the index type ``retrieval.index_type`` picks for that size, recall@10
  against exact search, build time, single-query latency, memory (RSS growth of a fresh process
  loading the saved index) and bytes on disk; ``--full`` adds 1,000,000 vectors, float and 8-bit;
- **re-indexing**: ``newsdesk index`` again on the unchanged corpus (a fresh process; its log
  must not show a model load), and with 1% of the articles changed against the time to embed
  just those passages;
- **start-up**: a fresh ``newsdesk ask`` process until it has answered (model load reported
  apart), and the Discord bot until READY against the loopback fake Discord of
  ``tests/fakediscord.py``.

Results print as a table (or JSON with ``--json``) and are saved as JSON (``--out``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from index.chunking import all_sentences
from index.config import Settings
from index.embedding.base import BatchProgress, Embedder, Spans, make_embedder
from index.errors import SourceError
from index.models import Document
from index.storage.faiss_index import IndexPolicy, VectorIndex, single_thread
from index.storage.sentences import unpack_sentences

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)

ROOT = Path(__file__).resolve().parents[2]
SQUAD_REL = Path("shared") / "eval" / "squad-dev" / "articles"
FULL_SIZE = 1_000_000
INDEX_RUNS = 2  # pipeline and bare encode alternated this many times; the best of each counts
PERTURB = 0.5  # synthetic passage vector = normalise(v + PERTURB * g / sqrt(d))

# targets of issue 6 (docs/performance.md)
TARGET_INDEX_RATIO = 0.9
TARGET_ASK_RATIO = 1.5
TARGET_ASK_P50_MS = 120.0  # issue 16, with the answer reranker
TARGET_ASK_P95_MS = 250.0
TARGET_ASK_SIZE = 100_000
TARGET_UNCHANGED_S = 1.0
TARGET_CHANGED_RATIO = 1.2
TARGET_SEARCH_P99_MS = 10.0
TARGET_RECALL = 0.95
TARGET_BUILD_S = 600.0
TARGET_FLOAT_BYTES = 2048
TARGET_SQ8_BYTES = 0.8 * 1024
TARGET_INT8_RATIO = 2.0  # onnx-int8 indexing against bare torch encode
TARGET_BOT_EXTRA_S = 2.0  # bot READY minus its model load
TARGET_AUTOCOMPLETE_P95_MS = 50.0  # title autocomplete at AUTOCOMPLETE_TITLES (issue 15)
AUTOCOMPLETE_TITLES = 50_000
AUTOCOMPLETE_QUERIES = 300

# resident memory of the process, for the code bench runs in fresh processes
_RSS_FN = (
    "def rss():\n"
    "    with open('/proc/self/statm') as f:\n"
    "        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
)


@dataclass
class BenchOptions:
    sizes: list[int] = field(default_factory=lambda: [10_000, 100_000])
    full: bool = False
    corpus: Path | None = None
    # embedding.backend for the pipeline (default: the config's)
    backend: Literal["torch", "onnx", "onnx-int8"] | None = None
    questions: int = 300  # questions timed per size
    queries: int = 1000  # vector-search queries per size
    bot: bool = True  # time the Discord bot's start (needs discord.py and tests/fakediscord.py)
    seed: int = 0


# -- helpers ---------------------------------------------------------------------------------


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


def percentiles(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds (nearest rank)."""
    if not values_s:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    v = sorted(values_s)

    def rank(q: float) -> float:
        return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))] * 1000

    return {
        "p50": round(rank(0.50), 3),
        "p95": round(rank(0.95), 3),
        "p99": round(rank(0.99), 3),
        "mean": round(sum(v) / len(v) * 1000, 3),
    }


def rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def dir_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file():
                total += p.stat().st_size
    return total


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


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


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def settings_toml(settings: Settings) -> str:
    """The engine-related sections of ``settings`` as TOML (for the processes bench starts)."""
    lines = [f"log_level = {_toml_value(settings.log_level)}"]
    for section in ("embedding", "chunking", "retrieval", "answer"):
        lines.append(f"\n[{section}]")
        obj = getattr(settings, section)
        for f in dataclasses.fields(obj):
            if getattr(obj, f.name) is not None:  # TOML has no null: unset stays the default
                lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
    return "\n".join(lines) + "\n"


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


# -- the benchmark ---------------------------------------------------------------------------


class Bench:
    def __init__(
        self, settings: Settings, opts: BenchOptions, progress: Progress | None = None
    ) -> None:
        self.opts = opts
        if opts.backend:
            settings = dataclasses.replace(
                settings,
                embedding=dataclasses.replace(settings.embedding, backend=opts.backend),
            )
        self.settings = settings
        self.progress = progress
        self.rng = np.random.default_rng(opts.seed)
        self.results: dict[str, Any] = {}
        self.notes: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="newsdesk-bench-"))
        self.data_dir = self.tmp / "data"
        self.corpus_src = find_corpus(opts.corpus)
        self.corpus = self.tmp / "corpus"
        self.cfg_path = self.tmp / "bench.toml"
        self.cfg_path.write_text(settings_toml(settings), encoding="utf-8")
        self.embedder: Embedder = make_embedder(settings.embedding)
        self.policy = IndexPolicy.from_settings(settings.retrieval)
        self._encode_model: Any = None
        self.baseline = "SentenceTransformer.encode"
        self.questions: list[str] = []
        self.seeds: np.ndarray | None = None
        n_sizes = len(set(opts.sizes))
        self._done = 0
        self._total = (
            6 + 2 * INDEX_RUNS + 3 * n_sizes + (1 if n_sizes else 0) + (2 if opts.full else 0)
        )  # fmt: skip
        self.lookup: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.real_articles: list[tuple[Document, int]] = []  # with their passage counts
        self._replica = 0

    # -- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _step(self, name: str) -> None:
        """One bar for the whole run (``bench``), advanced at each step; -v logs its name."""
        log.info("bench: %s", name)
        if self.progress:
            self.progress("bench", self._done, max(self._total, self._done + 1))
        self._done += 1

    def _settings_for(self, data_dir: Path) -> Settings:
        return dataclasses.replace(self.settings, data_dir=data_dir)

    def _pipeline(self, embedder: Any = None, data_dir: Path | None = None) -> Any:
        from index.pipeline import Pipeline

        settings = self._settings_for(data_dir or self.data_dir)
        return Pipeline(settings, embedder or self.embedder)

    def _env(self) -> dict[str, str]:
        """For the processes bench starts: this newsdesk and the bench's config only. (Where
        PYTHONDONTWRITEBYTECODE is set, each start also compiles newsdesk's own modules.)"""
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        for var in ("NEWSDESK_CONFIG", "NEWSDESK_DATA_DIR"):
            env.pop(var, None)
        return env

    def _cli(
        self, *args: str, timeout: float = 600
    ) -> tuple[float, subprocess.CompletedProcess[str]]:
        cmd = [sys.executable, "-m", "index.cli", *args]
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=self._env(), cwd=self.tmp
        )
        return time.perf_counter() - t0, proc

    def _python(self, code: str, *args: str, timeout: float = 600) -> tuple[float, str, str, int]:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
            cwd=self.tmp,
        )
        return time.perf_counter() - t0, proc.stdout, proc.stderr, proc.returncode

    @property
    def is_model(self) -> bool:
        return type(self.embedder).__name__ in ("SentenceTransformerEmbedder", "OnnxEmbedder")

    def encoder(self) -> Callable[[list[str]], np.ndarray]:
        """Bare ``SentenceTransformer.encode`` (the baseline); the embedder itself otherwise."""
        from index.embedding.base import SentenceTransformerEmbedder

        if self._encode_model is None:
            if isinstance(self.embedder, SentenceTransformerEmbedder):
                self._encode_model = self.embedder.model
            elif self.is_model:  # another backend: compare with torch all the same
                self._encode_model = SentenceTransformerEmbedder(self.settings.embedding).model
            else:
                self._encode_model = False
        model, bs = self._encode_model, self.settings.embedding.batch_size
        self.baseline = "SentenceTransformer.encode" if model is not False else "embedder.embed"
        if model is False:
            return lambda texts: self.embedder.embed(texts)
        return lambda texts: model.encode(
            texts,
            batch_size=bs,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    # -- steps -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        r = self.results
        r["machine"] = {
            "cpus": os.cpu_count(),
            "load_average_start": load_average(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "faiss": _version("faiss"),
            "torch": _version("torch"),
            "onnxruntime": _version("onnxruntime"),
        }
        r["config"] = {
            "model": self.embedder.name,
            "backend": getattr(self.settings.embedding, "backend", "torch"),
            "batch_size": self.settings.embedding.batch_size,
            "index_type": self.policy.index_type,
            "ann_threshold": self.policy.ann_threshold,
            "quantize": self.policy.quantize,
            "ivf_nprobe": self.policy.ivf_nprobe,
            "hnsw_ef_search": self.policy.hnsw_ef_search,
        }
        r["reranker"] = self.settings.answer.reranker
        shutil.copytree(self.corpus_src, self.corpus)
        self.index_real_corpus()
        self.reindex_unchanged()
        self.reindex_changed_small()
        self.query_latency(label="corpus")
        self.storage(label="corpus")
        sizes = sorted(set(self.opts.sizes))
        for size in sizes:
            self.grow(size)
            self.query_latency(label=str(size))
            self.storage(label=str(size))
        self.startup(label=str(sizes[-1]) if sizes else "corpus")  # at the largest index
        if sizes:
            self.reindex_changed_large()
        vs_sizes = [*sizes, FULL_SIZE] if self.opts.full else sizes
        for size in vs_sizes:
            self.vector_search(size, quantize=None)
        if self.opts.full:
            self.vector_search(FULL_SIZE, quantize="sq8")
        self._step(f"title autocomplete, {AUTOCOMPLETE_TITLES:,} titles")
        r["autocomplete"] = autocomplete_latency(
            self.tmp / "titles", AUTOCOMPLETE_TITLES, AUTOCOMPLETE_QUERIES, self.opts.seed
        )
        r["machine"]["load_average_end"] = load_average()
        if self.progress:
            self.progress("bench", self._total, self._total)
        r["targets"] = self.targets()
        r["notes"] = self.notes
        return r

    def index_real_corpus(self) -> None:
        """Pipeline throughput (model already loaded) against bare encode of the same texts,
        alternated ``INDEX_RUNS`` times (the second pipeline run into a scratch data dir); the
        best run of each is compared, as the machine may be shared."""
        self._step("loading the model")
        t0 = time.perf_counter()
        self.embedder.embed_query("warm up")
        load_s = time.perf_counter() - t0
        encode = self.encoder()
        encode(["warm up"])
        pipe_runs: list[float] = []
        enc_runs: list[float] = []
        for run in range(INDEX_RUNS):
            self._step(f"indexing the corpus (run {run + 1} of {INDEX_RUNS})")
            data_dir = self.data_dir if run == 0 else self.tmp / f"scratch-{run}"
            with self._pipeline(data_dir=data_dir) as pipe:
                t0 = time.perf_counter()
                report = pipe.add([str(self.corpus)], progress=self.progress)
                pipe_runs.append(time.perf_counter() - t0)
                if run == 0:
                    _ids, texts = pipe.store.passage_texts(pipe.store.conn)
                    articles, passages = pipe.store.counts()
                    self._capture_real(pipe)
            if run:
                shutil.rmtree(data_dir, ignore_errors=True)
            self._step(f"bare encode of the same passages (run {run + 1} of {INDEX_RUNS})")
            t0 = time.perf_counter()
            encode(list(texts))
            enc_runs.append(time.perf_counter() - t0)
        self.questions = find_questions(
            self.corpus_src,
            [p.read_text("utf-8", "replace") for p in self._corpus_files()],
            self.opts.questions,
        )
        self.results["corpus"] = {
            "path": str(self.corpus_src),
            "articles": articles,
            "passages": passages,
        }
        n = report.chunks_embedded
        pipe_s, enc_s = min(pipe_runs), min(enc_runs)
        self.results["indexing"] = {
            "passages": n,
            "model_load_s": round(load_s, 3),
            "pipeline_s": round(pipe_s, 3),
            "pipeline_passages_per_s": round(n / pipe_s, 2),
            "encode_s": round(enc_s, 3),
            "encode_passages_per_s": round(len(texts) / enc_s, 2),
            "baseline": self.baseline,
            "ratio": round((n / pipe_s) / (len(texts) / enc_s), 4),
            "runs": [
                {"pipeline_s": round(p, 3), "encode_s": round(e, 3)}
                for p, e in zip(pipe_runs, enc_runs, strict=True)
            ],
            "batch_size": self.settings.embedding.batch_size,
            "backend": self.results["config"]["backend"],
        }

    def _corpus_files(self) -> list[Path]:
        return sorted(
            p for p in self.corpus.rglob("*") if p.is_file() and not p.name.startswith(".")
        )

    def _capture_real(self, pipe: Any) -> None:
        """Real passage vectors and sentence vectors, by passage text (for synthetic growth)."""
        snap = pipe.snapshot()
        ids, vecs = snap.vectors.all_vectors()
        by_id = {int(i): v for i, v in zip(ids, vecs, strict=True)}
        self.lookup = {}
        rows = pipe.store.conn.execute(
            "SELECT c.id, substr(a.text, c.start + 1, c.end - c.start), c.sentences "
            "FROM chunks c JOIN articles a ON a.id = c.article_id"
        ).fetchall()
        for cid, text, blob in rows:
            sent = unpack_sentences(blob)[1] if blob else np.zeros((0, len(vecs[0])), np.float32)
            self.lookup[text] = (by_id[int(cid)], sent)
        self.seeds = np.ascontiguousarray(vecs, dtype=np.float32)
        counts = {row.id: row.chunk_count for row in pipe.list_articles()}
        self.real_articles = [
            (Document(a.source, a.title, a.text, a.url, a.published), counts.get(a.id, 1))
            for a in pipe.store.all_articles()
        ]

    def reindex_unchanged(self) -> None:
        self._step("re-index, unchanged corpus (fresh process)")
        runs = []
        for _ in range(2):  # the first run also warms the disk cache
            secs, proc = self._cli(
                "index", "-v", "--json", "--config", str(self.cfg_path),
                "--data-dir", str(self.data_dir), str(self.corpus),
            )  # fmt: skip
            runs.append(secs)
        secs = runs[-1]
        loaded = "loading embedding model" in proc.stderr or "ONNX model" in proc.stderr
        report: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            report = json.loads(proc.stdout.strip().splitlines()[-1])
        if proc.returncode != 0:
            self.notes.append(f"unchanged re-index failed: {proc.stderr.strip()[-300:]}")
        self.results["reindex_unchanged"] = {
            "seconds": round(secs, 3),
            "first_run_seconds": round(runs[0], 3),
            "model_loaded": loaded,
            "unchanged": report.get("unchanged"),
            "embedded": report.get("passages_embedded"),
            "exit_code": proc.returncode,
        }

    def _changed_docs(self, pipe: Any, share: float, synthetic_only: bool) -> list[Document]:
        rows = [a for a in pipe.store.all_articles()]
        if synthetic_only:
            rows = [a for a in rows if a.source.startswith("synthetic://")] or rows
        n = max(1, math.ceil(len(rows) * share))
        pick = [rows[int(i)] for i in self.rng.choice(len(rows), n, replace=False)]
        stamp = dt.datetime.now(dt.UTC).isoformat()
        return [
            Document(a.source, a.title, a.text + f"\n\nUpdated {stamp}.", a.url, a.published)
            for a in pick
        ]

    def _time_changed(self, docs: Sequence[Document], total_articles: int) -> dict[str, Any]:
        """The update of ``docs`` in a process with its index loaded, against embedding just
        their passages; alternated ``INDEX_RUNS`` times (each round changes the same articles
        again), the best of each counts, as the machine may be shared."""
        runs: list[tuple[float, float]] = []
        for run in range(INDEX_RUNS):
            if run:
                docs = [dataclasses.replace(d, text=d.text + f" Again ({run}).") for d in docs]
            with self._pipeline() as pipe:
                pipe.snapshot()  # a running process has its index loaded
                t0 = time.perf_counter()
                report = pipe.add_documents(docs)
                total_s = time.perf_counter() - t0
                texts: list[str] = []
                spans: list[list[tuple[int, int]]] = []
                for d in docs:
                    base = len(d.title) + 1
                    for c in pipe.plan_chunks(d):
                        texts.append(pipe.embed_text(d.title, c.text))
                        spans.append([(a + base, b + base) for a, b in all_sentences(c.text)])
            t0 = time.perf_counter()
            self.embedder.embed_passages(texts, spans)
            runs.append((total_s, time.perf_counter() - t0))
        total_s, embed_s = min(r[0] for r in runs), min(r[1] for r in runs)
        return {
            "articles_changed": len(docs),
            "articles_total": total_articles,
            "share": round(len(docs) / max(1, total_articles), 4),
            "passages": report.chunks_embedded,
            "seconds": round(total_s, 3),
            "embed_seconds": round(embed_s, 3),
            "ratio": round(total_s / embed_s, 3) if embed_s > 0 else None,
            "runs": [{"seconds": round(a, 3), "embed_seconds": round(b, 3)} for a, b in runs],
        }

    def reindex_changed_small(self) -> None:
        self._step("re-index, 1% of the articles changed (corpus)")
        with self._pipeline() as pipe:
            total = pipe.store.counts()[0]
            docs = self._changed_docs(pipe, 0.01, synthetic_only=False)
        self.results["reindex_changed"] = {"corpus": self._time_changed(docs, total)}

    def reindex_changed_large(self) -> None:
        self._step("re-index, 1% of the articles changed (largest size)")
        with self._pipeline() as pipe:
            total, passages = pipe.store.counts()
            docs = self._changed_docs(pipe, 0.01, synthetic_only=True)
        res = self._time_changed(docs, total)
        res["index_passages"] = passages
        self.results["reindex_changed"]["largest"] = res

    def grow(self, size: int) -> None:
        """Add replicated real articles with synthetic vectors until ``size`` passages."""
        with self._pipeline() as pipe:
            have = pipe.store.counts()[1]
        if have >= size:
            self.notes.append(f"size {size}: the corpus alone has {have} passages")
            return
        self._step(f"growing the index to {size:,} passages (synthetic)")
        docs: list[Document] = []
        count = have
        while count < size:
            self._replica += 1
            for a, passages in self.real_articles:
                source = f"synthetic://{self._replica}/{a.article_id}"
                docs.append(Document(source, a.title, a.text, None, a.published))
                count += max(1, passages)
                if count >= size:
                    break
        syn = SyntheticEmbedder(self.embedder, self.lookup, self.rng)
        t0 = time.perf_counter()
        with self._pipeline(syn) as pipe:
            pipe.add_documents(docs, progress=self.progress, keep_duplicates=True)
        self.results.setdefault("growth", []).append(
            {
                "size": size,
                "articles_added": len(docs),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        if syn.fallbacks:
            self.notes.append(f"size {size}: {syn.fallbacks} synthetic passages had no real twin")

    def query_latency(self, label: str) -> None:
        """``Pipeline.ask`` against a bare single-question encode by the model in use, timed
        back to back: ``SentenceTransformer.encode`` for torch, the ONNX session's own
        ``embed_query`` for the ONNX backends (alternating torch and ONNX Runtime calls in one
        process slows both: their thread pools contend)."""
        self._step(f"question latency ({label})")
        from index.embedding.base import SentenceTransformerEmbedder

        if isinstance(self.embedder, SentenceTransformerEmbedder) or not self.is_model:
            encode = self.encoder()
            baseline = self.baseline
        else:
            own = self.embedder

            def encode(texts: list[str]) -> np.ndarray:
                return own.embed_query(texts[0])

            baseline = f"{type(own).__name__}.embed_query"
        with self._pipeline() as pipe:
            snap = pipe.snapshot()
            passages = len(snap.vectors)
            kind = snap.vectors.kind
            for q in self.questions[:5]:  # warm-up: caches, first SQLite reads
                pipe.ask(q)
                encode([q])
            ask_t: list[float] = []
            enc_t: list[float] = []
            for i, q in enumerate(self.questions):
                t0 = time.perf_counter()
                pipe.ask(q)
                t1 = time.perf_counter()
                encode([q])
                t2 = time.perf_counter()
                ask_t.append(t1 - t0)
                enc_t.append(t2 - t1)
                if self.progress and i % 20 == 0:
                    self.progress(f"questions ({label})", i + 1, len(self.questions))
        ask, enc = percentiles(ask_t), percentiles(enc_t)
        self.results.setdefault("questions", []).append(
            {
                "label": label,
                "passages": passages,
                "index_type": kind,
                "questions": len(ask_t),
                "ask_ms": ask,
                "encode_ms": enc,
                "encode_baseline": baseline,
                "ratio_p50": round(ask["p50"] / enc["p50"], 3) if enc["p50"] else None,
                "ratio_p95": round(ask["p95"] / enc["p95"], 3) if enc["p95"] else None,
            }
        )

    def storage(self, label: str) -> None:
        """Bytes on disk per passage, and RSS growth of a fresh process loading the index."""
        code = (
            "import json, os, sys\n"
            "import bm25s, faiss\n"
            "from index.config import load_settings\n"
            "from index.pipeline import Pipeline\n"
            + _RSS_FN
            + "s = load_settings(sys.argv[1], sys.argv[2])\n"
            "p = Pipeline(s)\n"
            "p.stats()\n"
            "r0 = rss()\n"
            "snap = p.snapshot()\n"
            "print(json.dumps({'rss': rss() - r0, 'passages': len(snap.vectors)}))\n"
        )
        _secs, out, err, rc = self._python(code, str(self.cfg_path), str(self.data_dir))
        rss = None
        if rc == 0:
            with contextlib.suppress(ValueError, IndexError):
                rss = json.loads(out.strip().splitlines()[-1])["rss"]
        else:
            self.notes.append(f"storage ({label}): {err.strip()[-300:]}")
        with self._pipeline() as pipe:
            passages = pipe.store.counts()[1]
        disk = dir_bytes(self.data_dir)
        gens = self.data_dir / "generations"
        current = max((p for p in gens.iterdir() if p.name.isdigit()), default=None)
        index_disk = dir_bytes(current) if current else 0
        self.results.setdefault("storage", []).append(
            {
                "label": label,
                "passages": passages,
                "disk_bytes_per_passage": round(disk / max(1, passages)),
                "index_files_bytes_per_passage": round(index_disk / max(1, passages)),
                "rss_bytes_per_passage": round(rss / max(1, passages)) if rss else None,
            }
        )

    def startup(self, label: str) -> None:
        self._step(f"start-up to a first answer ({label})")
        q = self.questions[0] if self.questions else "What happened?"
        runs = []
        for _ in range(2):  # the first run also warms the disk cache (model, libraries)
            secs, proc = self._cli(
                "ask", "--json", "-v", "--config", str(self.cfg_path),
                "--data-dir", str(self.data_dir), q,
            )  # fmt: skip
            runs.append(secs)
        m = re.search(r"(?:model loaded|ready) in ([0-9.]+)s", proc.stderr)
        res: dict[str, Any] = {
            "label": label,
            "cli_ready_s": round(runs[-1], 3),
            "cli_first_run_s": round(runs[0], 3),
            "cli_model_load_s": float(m.group(1)) if m else None,
            "cli_exit_code": proc.returncode,
        }
        if proc.returncode != 0:
            self.notes.append(f"start-up ({label}): {proc.stderr.strip()[-300:]}")
        if self.opts.bot:
            res.update(self._bot_ready())
        self.results.setdefault("startup", []).append(res)

    def _bot_ready(self) -> dict[str, Any]:
        if not (ROOT / "tests" / "fakediscord.py").is_file():
            self.notes.append("bot start-up not measured: tests/fakediscord.py not found")
            return {}
        code = (
            "import asyncio, json, sys, time\n"
            "t0 = time.perf_counter()\n"
            "sys.path.insert(0, sys.argv[3])\n"
            "from index.config import load_settings\n"
            "from bot.client import NewsdeskBot\n"
            "from tests.fakediscord import FakeDiscord, run_bot\n"
            "async def main():\n"
            "    fake = FakeDiscord()\n"
            "    await fake.start()\n"
            "    g = fake.add_guild('Bench')\n"
            "    fake.add_channel(g, 'general')\n"
            "    bot = NewsdeskBot(load_settings(sys.argv[1], sys.argv[2]))\n"
            "    try:\n"
            "        async with run_bot(fake, bot, timeout=300):\n"
            "            e = bot.pipeline.embedder\n"
            "            print(json.dumps({'ready': time.perf_counter() - t0,\n"
            "                'setup_hook': bot.load_seconds,\n"
            "                'model': getattr(e, 'load_seconds', None)}), flush=True)\n"
            "    finally:\n"
            "        await fake.stop()\n"
            "asyncio.run(main())\n"
        )
        _secs, out, err, rc = self._python(
            code, str(self.cfg_path), str(self.data_dir), str(ROOT), timeout=900
        )
        if rc != 0:
            self.notes.append(f"bot start-up failed: {err.strip()[-300:]}")
            return {"bot_exit_code": rc}
        data = json.loads(out.strip().splitlines()[-1])
        return {
            "bot_ready_s": round(data["ready"], 3),
            "bot_setup_hook_s": round(data["setup_hook"], 3) if data["setup_hook"] else None,
            "bot_model_load_s": round(data["model"], 3) if data["model"] else None,
        }

    def vector_search(self, size: int, quantize: str | None) -> None:
        policy = self.policy
        if quantize is not None:
            policy = dataclasses.replace(policy, quantize=quantize)  # type: ignore[arg-type]
        family, sq8 = policy.family(size), policy.sq8(size)
        kind = family + ("-sq8" if sq8 else "")
        self._step(f"vector search alone, {size:,} synthetic vectors ({kind})")
        assert self.seeds is not None
        rng = np.random.default_rng(self.opts.seed + size)
        data = synthetic_vectors(size, self.seeds, rng)
        queries = synthetic_queries(data, self.opts.queries, rng)
        import faiss

        exact = faiss.IndexFlatIP(data.shape[1])
        exact.add(data)
        _, truth = exact.search(queries, 10)
        exact_t = []
        with single_thread():
            for q in queries[:100]:
                t0 = time.perf_counter()
                exact.search(q[None, :], 10)
                exact_t.append(time.perf_counter() - t0)
        del exact
        t0 = time.perf_counter()
        index = VectorIndex.build(
            family, sq8, np.arange(size, dtype=np.int64), data, policy, progress=self.progress
        )
        build_s = time.perf_counter() - t0
        del data
        times: list[float] = []
        found = 0
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            hits = index.search(q, 10)
            times.append(time.perf_counter() - t0)
            found += len({h for h, _ in hits} & set(truth[i].tolist()))
        path = self.tmp / f"vectors-{size}-{kind}.faiss"
        index.save(path)
        description = index.description
        del index
        disk = path.stat().st_size
        code = (
            "import json, os, sys\n"
            "import faiss\n" + _RSS_FN + "r0 = rss()\n"
            "index = faiss.read_index(sys.argv[1])\n"
            "print(json.dumps({'rss': rss() - r0}))\n"
        )
        _secs, out, _err, rc = self._python(code, str(path))
        rss = json.loads(out.strip().splitlines()[-1])["rss"] if rc == 0 else None
        path.unlink()
        self.results.setdefault("vector_search", []).append(
            {
                "size": size,
                "index_type": kind,
                "index": description,
                "build_s": round(build_s, 2),
                "recall_at_10": round(found / (10 * len(queries)), 4),
                "search_ms": percentiles(times),
                "exact_search_ms": percentiles(exact_t),
                "rss_bytes_per_vector": round(rss / size) if rss else None,
                "disk_bytes_per_vector": round(disk / size),
            }
        )

    # -- verdicts ----------------------------------------------------------------------------
    def targets(self) -> list[dict[str, Any]]:
        r = self.results
        out: list[dict[str, Any]] = []

        def add(name: str, target: str, measured: Any, met: bool | None) -> None:
            out.append({"target": name, "goal": target, "measured": measured, "met": met})

        ix = r.get("indexing", {})
        add(
            "indexing throughput vs bare encode",
            f">= {TARGET_INDEX_RATIO}",
            ix.get("ratio"),
            ix.get("ratio", 0) >= TARGET_INDEX_RATIO,
        )
        qs = [q for q in r.get("questions", []) if q["label"] != "corpus"] or r.get("questions", [])
        if qs:
            best = min(qs, key=lambda q: abs(q["passages"] - TARGET_ASK_SIZE))
            where = f"at {best['passages']:,} passages"
            if r.get("reranker", "none") == "none":  # retrieval and the older sentence score
                add(
                    f"ask p50 / encode p50 {where}",
                    f"<= {TARGET_ASK_RATIO}",
                    best["ratio_p50"],
                    (best["ratio_p50"] or 99) <= TARGET_ASK_RATIO,
                )
            # issue 16: the learned reranker reads ~10 sentences per question on top of that
            for pct, goal in (("p50", TARGET_ASK_P50_MS), ("p95", TARGET_ASK_P95_MS)):
                add(
                    f"ask {pct} {where} (reranker {r.get('reranker', '?')})",
                    f"<= {goal:.0f} ms",
                    best["ask_ms"][pct],
                    best["ask_ms"][pct] <= goal,
                )
        if ix.get("backend") == "onnx-int8" and ix.get("baseline") == "SentenceTransformer.encode":
            add(
                "onnx-int8 indexing throughput vs bare torch encode",
                f">= {TARGET_INT8_RATIO}",
                ix.get("ratio"),
                ix.get("ratio", 0) >= TARGET_INT8_RATIO,
            )
        un = r.get("reindex_unchanged", {})
        add(
            "unchanged re-index (fresh process), no model load",
            f"<= {TARGET_UNCHANGED_S} s",
            un.get("seconds"),
            un.get("seconds", 99) <= TARGET_UNCHANGED_S and not un.get("model_loaded"),
        )
        for key, ch in r.get("reindex_changed", {}).items():
            add(
                f"1% changed re-index / embed time ({key}, {ch['articles_changed']} of "
                f"{ch['articles_total']} articles)",
                f"<= {TARGET_CHANGED_RATIO}",
                ch.get("ratio"),
                (ch.get("ratio") or 99) <= TARGET_CHANGED_RATIO,
            )
        for st in r.get("startup", []):
            if st.get("bot_ready_s") is None:
                continue
            load = st.get("bot_model_load_s") or 0.0
            add(
                f"bot READY - model load ({st['label']})",
                f"<= {TARGET_BOT_EXTRA_S} s",
                round(st["bot_ready_s"] - load, 3),
                st["bot_ready_s"] - load <= TARGET_BOT_EXTRA_S,
            )
        ac = r.get("autocomplete")
        if ac:
            add(
                f"title autocomplete p95 at {ac['titles']:,} titles",
                f"<= {TARGET_AUTOCOMPLETE_P95_MS:.0f} ms",
                ac["ms"]["p95"],
                ac["ms"]["p95"] <= TARGET_AUTOCOMPLETE_P95_MS,
            )
        for vs in r.get("vector_search", []):
            if vs["size"] != FULL_SIZE:
                continue
            sq8 = vs["index_type"].endswith("sq8")
            add(
                f"1M search p99 ({vs['index_type']})",
                f"<= {TARGET_SEARCH_P99_MS} ms",
                vs["search_ms"]["p99"],
                vs["search_ms"]["p99"] <= TARGET_SEARCH_P99_MS,
            )
            add(
                f"1M recall@10 ({vs['index_type']})",
                f">= {TARGET_RECALL}",
                vs["recall_at_10"],
                vs["recall_at_10"] >= TARGET_RECALL,
            )
            add(
                f"1M build ({vs['index_type']})",
                f"<= {TARGET_BUILD_S:.0f} s",
                vs["build_s"],
                vs["build_s"] <= TARGET_BUILD_S,
            )
            limit = TARGET_SQ8_BYTES if sq8 else TARGET_FLOAT_BYTES
            add(
                f"1M memory per vector ({vs['index_type']})",
                f"<= {limit:.0f} B",
                vs["rss_bytes_per_vector"],
                vs["rss_bytes_per_vector"] is not None and vs["rss_bytes_per_vector"] <= limit,
            )
        return out


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


def autocomplete_latency(data_dir: Path, size: int, queries: int, seed: int = 0) -> dict[str, Any]:
    """Title autocomplete (``Store.match_titles``, 25 choices) over ``size`` synthetic
    titles in a fresh ``newsdesk.db``: latency percentiles of ``queries`` typed queries."""
    from index.storage.sqlite import Store, now_iso

    titles = synthetic_titles(size, seed)
    store = Store(data_dir)
    try:
        store.init_schema()
        when = now_iso()
        t0 = time.perf_counter()
        with store.transaction() as c:
            for i, title in enumerate(titles):
                Store.upsert_article(c, Document(f"bench://title/{i}", title, title), when)
        fill_s = time.perf_counter() - t0
        typed = autocomplete_queries(titles, queries, seed)
        times, empty = [], 0
        for q in typed:
            t0 = time.perf_counter()
            rows = store.match_titles(q, 25)
            times.append(time.perf_counter() - t0)
            empty += not rows
    finally:
        store.close()
    return {
        "titles": size,
        "queries": len(typed),
        "fill_s": round(fill_s, 2),
        "no_choices": empty,
        "ms": percentiles(times),
    }


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version({"faiss": "faiss-cpu"}.get(module, module))
    except Exception:
        return None


def run_bench(
    settings: Settings, opts: BenchOptions, progress: Progress | None = None
) -> dict[str, Any]:
    bench = Bench(settings, opts, progress)
    try:
        return bench.run()
    finally:
        bench.close()


# -- report ----------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown_report(r: dict[str, Any]) -> str:
    """The results as Markdown tables (what docs/performance.md shows)."""
    lines: list[str] = []
    m = r.get("machine", {})
    c = r.get("config", {})
    lines.append(
        f"Machine: {m.get('cpus')} CPUs, {m.get('platform')}, Python {m.get('python')}, "
        f"faiss {m.get('faiss')}, torch {m.get('torch')}; load average "
        f"{m.get('load_average_start')} at start, {m.get('load_average_end')} at end."
    )
    lines.append(
        f"Config: model {c.get('model')} ({c.get('backend')}), batch {c.get('batch_size')}, "
        f"index_type {c.get('index_type')} (ANN from {_fmt(c.get('ann_threshold'))} passages), "
        f"quantize {c.get('quantize')}, ivf_nprobe {c.get('ivf_nprobe')}."
    )
    co = r.get("corpus", {})
    lines.append(
        f"Corpus: {co.get('path')} ({co.get('articles')} articles, {co.get('passages')} passages)."
    )
    ix = r.get("indexing", {})
    lines += [
        "",
        "| indexing | passages | seconds | passages/s |",
        "|---|---:|---:|---:|",
        f"| pipeline (ingest, chunk, embed, store) | {_fmt(ix.get('passages'))} | "
        f"{_fmt(ix.get('pipeline_s'))} | {_fmt(ix.get('pipeline_passages_per_s'))} |",
        f"| bare {ix.get('baseline', 'encode')} | {_fmt(ix.get('passages'))} | "
        f"{_fmt(ix.get('encode_s'))} | {_fmt(ix.get('encode_passages_per_s'))} |",
        f"| **ratio** | | | **{_fmt(ix.get('ratio'))}** |",
        "",
        "| questions | passages | index | ask p50 / p95 / p99 ms | encode p50 / p95 / p99 ms "
        "| ratio p50 (p95) | baseline |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for q in r.get("questions", []):
        a, e = q["ask_ms"], q["encode_ms"]
        lines.append(
            f"| {q['label']} | {_fmt(q['passages'])} | {q['index_type']} | "
            f"{a['p50']:.1f} / {a['p95']:.1f} / {a['p99']:.1f} | "
            f"{e['p50']:.1f} / {e['p95']:.1f} / {e['p99']:.1f} | "
            f"{_fmt(q['ratio_p50'])} ({_fmt(q['ratio_p95'])}) | "
            f"{q.get('encode_baseline', '')} |"
        )
    lines += [
        "",
        "| vector search | index | build s | recall@10 | search p50 / p95 / p99 ms "
        "| exact p50 ms | RSS B/vector | disk B/vector |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v in r.get("vector_search", []):
        s = v["search_ms"]
        lines.append(
            f"| {_fmt(v['size'])} | {v['index']} | {_fmt(v['build_s'])} | "
            f"{v['recall_at_10']:.4f} | {s['p50']:.2f} / {s['p95']:.2f} / {s['p99']:.2f} | "
            f"{v['exact_search_ms']['p50']:.2f} | {_fmt(v['rss_bytes_per_vector'])} | "
            f"{_fmt(v['disk_bytes_per_vector'])} |"
        )
    lines += [
        "",
        "| storage | passages | disk B/passage (all) | index files B/passage | RSS B/passage |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in r.get("storage", []):
        lines.append(
            f"| {s['label']} | {_fmt(s['passages'])} | {_fmt(s['disk_bytes_per_passage'])} | "
            f"{_fmt(s['index_files_bytes_per_passage'])} | {_fmt(s['rss_bytes_per_passage'])} |"
        )
    un = r.get("reindex_unchanged", {})
    lines += [
        "",
        "| re-index | articles changed | passages | seconds | embed seconds | ratio |",
        "|---|---:|---:|---:|---:|---:|",
        f"| unchanged (fresh `newsdesk index`; model loaded: {_fmt(un.get('model_loaded'))}) "
        f"| 0 | 0 | {_fmt(un.get('seconds'))} | – | – |",
    ]
    for key, ch in r.get("reindex_changed", {}).items():
        where = key if key == "corpus" else f"{_fmt(ch.get('index_passages'))} passages"
        lines.append(
            f"| 1% changed ({where}) | {ch['articles_changed']} of {_fmt(ch['articles_total'])} "
            f"| {_fmt(ch['passages'])} | {_fmt(ch['seconds'])} | {_fmt(ch['embed_seconds'])} "
            f"| {_fmt(ch['ratio'])} |"
        )
    lines += [
        "",
        "| start-up | passages | CLI ready s | model load s | bot READY s | bot setup_hook s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    sizes = {s["label"]: s["passages"] for s in r.get("storage", [])}
    for s in r.get("startup", []):
        lines.append(
            f"| {s['label']} | {_fmt(sizes.get(s['label']))} | {_fmt(s.get('cli_ready_s'))} | "
            f"{_fmt(s.get('cli_model_load_s'))} | {_fmt(s.get('bot_ready_s'))} | "
            f"{_fmt(s.get('bot_setup_hook_s'))} |"
        )
    ac = r.get("autocomplete")
    if ac:
        a = ac["ms"]
        lines += [
            "",
            "| title autocomplete | titles | queries | p50 / p95 / p99 ms | no choices |",
            "|---|---:|---:|---:|---:|",
            f"| prefixes, substrings, misspellings | {_fmt(ac['titles'])} | "
            f"{_fmt(ac['queries'])} | {a['p50']:.1f} / {a['p95']:.1f} / {a['p99']:.1f} | "
            f"{_fmt(ac['no_choices'])} |",
        ]
    lines += ["", "| target | goal | measured | met |", "|---|---|---:|---|"]
    for t in r.get("targets", []):
        lines.append(f"| {t['target']} | {t['goal']} | {_fmt(t['measured'])} | {_fmt(t['met'])} |")
    for n in r.get("notes", []):
        lines.append(f"\nNote: {n}")
    return "\n".join(lines)
