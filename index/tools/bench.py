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
  their real sentence vectors; also inside a scope of 1 % of the passages (``bench_scopes``);
- **vector search alone** at each size: synthetic clustered unit vectors seeded from the real
  passage vectors (topics = real vectors plus noise; each vector a random mix of two topics plus
  noise, which gives nearest-neighbour cosines like the real corpus'; queries = vectors near
  random points), the index type ``retrieval.index_type`` picks for that size, recall@10
  against exact search, build time, single-query latency, memory (RSS growth of a fresh process
  loading the saved index) and bytes on disk; ``--full`` adds 1,000,000 vectors, float and 8-bit;
- **re-indexing**: ``newsdesk index`` again on the unchanged corpus (a fresh process; its log
  must not show a model load), and with 1% of the articles changed against the time to embed
  just those passages;
- **start-up**: a fresh ``newsdesk ask`` process until it has answered (model load apart); the
  bot's (READY on the loopback fake Discord) is ``tests/perf/bot_startup.py``, run by ``make
  bench`` after this (the engine never imports the bot or the tests, not even from a string).
Results print as a table (or JSON with ``--json``) and are saved as JSON (``--out``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
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
from index.embedding import Embedder, make_embedder
from index.models import Document, Progress
from index.storage.policy import IndexPolicy
from index.storage.sentences import unpack_sentences
from index.tools.bench_community import GAPS_QUESTIONS, gaps_latency
from index.tools.bench_corpus import (
    ROOT,
    SyntheticEmbedder,
    changed_copies,
    find_corpus,
    find_questions,
    replicas,
)
from index.tools.bench_parts import (
    AUTOCOMPLETE_QUERIES,
    AUTOCOMPLETE_TITLES,
    FULL_SIZE,
    RSS_FN,
    autocomplete_latency,
    dir_bytes,
    load_average,
    machine_info,
    percentiles,
    settings_toml,
    vector_search,
)
from index.tools.bench_report import targets
from index.tools.bench_scopes import scoped_latency

log = logging.getLogger(__name__)


INDEX_RUNS = 2  # pipeline and bare encode alternated this many times; the best of each counts


@dataclass
class BenchOptions:
    sizes: list[int] = field(default_factory=lambda: [10_000, 100_000])
    full: bool = False
    corpus: Path | None = None
    # embedding.backend for the pipeline (default: the config's)
    backend: Literal["torch", "onnx", "onnx-int8"] | None = None
    questions: int = 300  # questions timed per size
    queries: int = 1000  # vector-search queries per size
    seed: int = 0


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
            7 + 2 * INDEX_RUNS + 3 * n_sizes + (1 if n_sizes else 0) + (2 if opts.full else 0)
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
        from index.embedding.sbert import SentenceTransformerEmbedder

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
        r["machine"] = machine_info()
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
        self._step(f"gaps over {GAPS_QUESTIONS:,} logged questions")
        r["gaps"] = gaps_latency(
            self.tmp / "gaps", dim=self.embedder.dimension, seed=self.opts.seed
        )
        r["machine"]["load_average_end"] = load_average()
        if self.progress:
            self.progress("bench", self._total, self._total)
        r["targets"] = targets(r)
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

    def build_index(self, size: int = 0) -> Path:
        """The corpus indexed into this bench's data dir and grown to ``size`` passages with
        synthetic ones, untimed: the index the figures at that size are measured on (for a
        measurement made elsewhere: tests/perf/bot_startup.py starts the bot on it)."""
        shutil.copytree(self.corpus_src, self.corpus)
        with self._pipeline() as pipe:
            pipe.add([str(self.corpus)], progress=self.progress)
            self._capture_real(pipe)
        if size:
            self.grow(size)
        return self.data_dir

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
            docs = changed_copies(pipe.store.all_articles(), 0.01, self.rng, synthetic_only=False)
        self.results["reindex_changed"] = {"corpus": self._time_changed(docs, total)}

    def reindex_changed_large(self) -> None:
        self._step("re-index, 1% of the articles changed (largest size)")
        with self._pipeline() as pipe:
            total, passages = pipe.store.counts()
            docs = changed_copies(pipe.store.all_articles(), 0.01, self.rng, synthetic_only=True)
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
        docs, self._replica = replicas(self.real_articles, have, size, self._replica)
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
        from index.embedding.sbert import SentenceTransformerEmbedder

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
            scoped = scoped_latency(pipe, self.questions, self.opts.seed)  # issue 20
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
                "scoped": scoped,
            }
        )

    def storage(self, label: str) -> None:
        """Bytes on disk per passage, and RSS growth of a fresh process loading the index."""
        code = (
            "import json, os, sys\n"
            "import bm25s, faiss\n"
            "from index.config import load_settings\n"
            "from index.pipeline import Pipeline\n"
            + RSS_FN
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
        self.results.setdefault("startup", []).append(res)

    def vector_search(self, size: int, quantize: str | None) -> None:
        policy = self.policy
        if quantize is not None:
            policy = dataclasses.replace(policy, quantize=quantize)  # type: ignore[arg-type]
        kind = policy.family(size) + ("-sq8" if policy.sq8(size) else "")
        self._step(f"vector search alone, {size:,} synthetic vectors ({kind})")
        assert self.seeds is not None
        res = vector_search(
            size,
            policy,
            self.seeds,
            self.opts.queries,
            self.opts.seed + size,
            self.tmp,
            self._python,
            self.progress,
        )
        self.results.setdefault("vector_search", []).append(res)


def run_bench(
    settings: Settings, opts: BenchOptions, progress: Progress | None = None
) -> dict[str, Any]:
    bench = Bench(settings, opts, progress)
    try:
        return bench.run()
    finally:
        bench.close()
