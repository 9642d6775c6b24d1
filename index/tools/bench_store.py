"""`newsdesk bench --backend milvus`: the vector stores side by side on this machine.

The same synthetic corpus (articles of generated sentences, about ten passages each) is indexed
into the FAISS backend and into Milvus Lite (embedded, in the data dir), with the deterministic
hash embedder (384 dimensions) on both so that embedding costs the same and the figures are the
stores'. Measured per backend: indexing (passages/s, embedding included), question latency
p50/p95 (hybrid: embed + dense + BM25 + fusion + answer), a fresh reader's first question (index
load), one more article (write) and the reader's next question (it picks up the new generation),
bytes on disk, and whether the answers are the same as FAISS's. Milvus also with an IVF_FLAT
index. Results go to docs/performance.md ("Milvus backend").
"""

from __future__ import annotations

import copy
import logging
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.config import Settings
from index.embedding.hashing import HashEmbedder
from index.models import Document, Progress

log = logging.getLogger(__name__)


PASSAGES_PER_ARTICLE = 10
DIMENSION = 384


def corpus(passages: int, seed: int = 7) -> list[Document]:
    """Articles of ~10 paragraphs of ~100 generated words; a paragraph is one passage."""
    rnd = random.Random(seed)
    vocab = [
        f"{a}{b}"
        for a in ("ka", "lo", "mi", "ne", "pu", "ra", "si", "to")
        for b in (f"{c}{d}" for c in "bdfgklmnprstvz" for d in "aeiou")
    ]
    docs = []
    for i in range(max(1, passages // PASSAGES_PER_ARTICLE)):
        paras = []
        for p in range(PASSAGES_PER_ARTICLE):
            sents = [
                " ".join(rnd.choice(vocab) for _ in range(rnd.randint(8, 14))).capitalize() + "."
                for _ in range(8)
            ]
            if p == 0:
                sents[0] = f"The mayor of Town{i} opened the {vocab[i % len(vocab)]} exhibition."
            paras.append(" ".join(sents))
        docs.append(Document(f"/bench/a{i:06d}.txt", f"Article {i}", "\n\n".join(paras)))
    return docs


def _pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if xs else 0.0


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _answers(pipe: Any, questions: Sequence[str]) -> tuple[list[Any], list[float]]:
    keys, times = [], []
    for q in questions:
        t0 = time.perf_counter()
        a = pipe.ask(q)
        times.append((time.perf_counter() - t0) * 1000)
        keys.append((a.quote.text if a.quote else None, [h.chunk_id for h in a.passages]))
    return keys, times


def bench_backend(
    settings: Settings,
    docs: Sequence[Document],
    questions: Sequence[str],
    progress: Progress | None,
) -> dict[str, Any]:
    from index.pipeline import Pipeline

    out: dict[str, Any] = {"backend": settings.store.backend}
    with Pipeline(settings, HashEmbedder(DIMENSION)) as pipe:
        t0 = time.perf_counter()
        for i in range(0, len(docs), 1000):
            pipe.add_documents(docs[i : i + 1000], keep_duplicates=True)
            if progress:
                progress(
                    f"indexing ({settings.store.backend})", min(i + 1000, len(docs)), len(docs)
                )
        out["index_s"] = time.perf_counter() - t0
        out["passages"] = pipe.stats().chunks
        out["passages_per_s"] = out["passages"] / out["index_s"]
        keys, times = _answers(pipe, questions)
        out["ask_p50_ms"], out["ask_p95_ms"] = _pct(times, 50), _pct(times, 95)
        out["answers"] = keys
    with Pipeline(settings, HashEmbedder(DIMENSION)) as reader:
        t0 = time.perf_counter()
        reader.ask(questions[0])
        out["reader_first_question_s"] = time.perf_counter() - t0
        with Pipeline(settings, HashEmbedder(DIMENSION)) as writer:
            extra = corpus(PASSAGES_PER_ARTICLE, seed=99)[0]
            extra = Document("/bench/extra.txt", "Extra", extra.text)
            t0 = time.perf_counter()
            writer.add_documents([extra], keep_duplicates=True)
            out["add_one_article_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        reader.ask(questions[1])
        out["reader_next_generation_s"] = time.perf_counter() - t0
    out["bytes_on_disk"] = _bytes(Path(settings.data_dir))
    return out


def milvus_ivf_search(settings: Settings, questions: Sequence[str]) -> dict[str, Any]:
    """The same Milvus collection re-indexed as IVF_FLAT (nlist 1024, nprobe 16)."""
    from index.pipeline import Pipeline

    s = copy.deepcopy(settings)
    s.retrieval.index_type = "ivf"
    with Pipeline(s, HashEmbedder(DIMENSION)) as pipe:
        backend = pipe.backend
        assert backend is not None
        client = backend.client  # type: ignore[attr-defined]
        name = backend.read_state()["passages_collection"]  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        client.release_collection(name)
        client.drop_index(name, "vector")
        ip = client.prepare_index_params()
        ip.add_index(
            field_name="vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": 1024}
        )
        client.create_index(name, ip)
        client.load_collection(name)
        build = time.perf_counter() - t0
        q_vecs = pipe.embedder.embed(list(questions))
        with pipe.reading() as snap:
            times = []
            for v in q_vecs:
                t1 = time.perf_counter()
                snap.vectors.search(v, 50)
                times.append((time.perf_counter() - t1) * 1000)
            exact = [set(i for i, _ in snap.vectors.search(v, 10)) for v in q_vecs[:20]]
        keys, ask_times = _answers(pipe, questions)
    return {
        "ivf_build_s": build,
        "ivf_search_p50_ms": _pct(times, 50),
        "ivf_ask_p50_ms": _pct(ask_times, 50),
        "ivf_ask_p95_ms": _pct(ask_times, 95),
        "ivf_answers": keys,
        "_ivf_top10": [sorted(e) for e in exact],
    }


def run_store_bench(
    settings: Settings,
    sizes: Sequence[int],
    questions: int = 100,
    progress: Progress | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": {}}
    for n in sizes:
        docs = corpus(n)
        rnd = random.Random(1)
        qs = [
            f"Who opened the exhibition in Town{rnd.randrange(len(docs))}?"
            for _ in range(max(2, questions))
        ]
        row: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="newsdesk-bench-store-") as tmp:
            for backend in ("faiss", "milvus"):
                s = copy.deepcopy(settings)
                s.data_dir = Path(tmp) / backend
                s.store.backend = backend
                s.store.uri = ""
                s.embedding.model = "hash"
                s.retrieval.index_type = "flat"
                s.chunking.max_tokens = 160
                row[backend] = bench_backend(s, docs, qs, progress)
                if backend == "milvus":
                    row[backend].update(milvus_ivf_search(s, qs))
        f, m = row["faiss"], row["milvus"]
        row["same_answers"] = sum(a == b for a, b in zip(f["answers"], m["answers"], strict=True))
        row["same_answers_ivf"] = sum(
            a == b for a, b in zip(f["answers"], m["ivf_answers"], strict=True)
        )
        row["questions"] = len(qs)
        for b in ("faiss", "milvus"):
            row[b].pop("answers", None)
        row["milvus"].pop("ivf_answers", None)
        row["milvus"].pop("_ivf_top10", None)
        results["sizes"][str(n)] = row
    return results


def markdown_store_report(results: dict[str, Any]) -> str:
    lines = [
        "| passages | backend | index (passages/s) | ask p50 / p95 (ms) "
        "| reader's 1st question (s) | +1 article (s) | next question, new generation (s) "
        "| disk (MB) | same answers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, row in results["sizes"].items():
        for b in ("faiss", "milvus"):
            r = row[b]
            same = "—" if b == "faiss" else f"{row['same_answers']}/{row['questions']}"
            lines.append(
                f"| {int(n):,} | {b} | {r['passages_per_s']:.0f} | {r['ask_p50_ms']:.0f} / "
                f"{r['ask_p95_ms']:.0f} | {r['reader_first_question_s']:.1f} | "
                f"{r['add_one_article_s']:.1f} | {r['reader_next_generation_s']:.1f} | "
                f"{r['bytes_on_disk'] / 1e6:.0f} | {same} |"
            )
        m = row["milvus"]
        lines.append(
            f"| {int(n):,} | milvus IVF_FLAT | build {m['ivf_build_s']:.1f} s | "
            f"{m['ivf_ask_p50_ms']:.0f} / {m['ivf_ask_p95_ms']:.0f} | | | | | "
            f"{row['same_answers_ivf']}/{row['questions']} |"
        )
    return "\n".join(lines)
