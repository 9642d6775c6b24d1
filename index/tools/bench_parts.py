"""What `newsdesk bench` measures outside the pipeline -- the vector index alone, title
autocomplete -- and the instruments every step uses: percentiles, resident memory, bytes on disk,
load average, package versions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.config import Settings
from index.models import Document, Progress
from index.storage.faiss_index import IndexPolicy, VectorIndex, single_thread
from index.tools.bench_corpus import (
    autocomplete_queries,
    synthetic_queries,
    synthetic_titles,
    synthetic_vectors,
)

RunPython = Callable[..., tuple[float, str, str, int]]  # (code, *args) -> (s, out, err, rc)

FULL_SIZE = 1_000_000
AUTOCOMPLETE_TITLES = 50_000
AUTOCOMPLETE_QUERIES = 300

# resident memory of the process, for the code bench runs in fresh processes
RSS_FN = (
    "def rss():\n"
    "    with open('/proc/self/statm') as f:\n"
    "        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
)


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


def package_version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version({"faiss": "faiss-cpu"}.get(module, module))
    except Exception:
        return None


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


def machine_info() -> dict[str, Any]:
    """The machine and the library versions the figures were measured with."""
    return {
        "cpus": os.cpu_count(),
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "faiss": package_version("faiss"),
        "torch": package_version("torch"),
        "onnxruntime": package_version("onnxruntime"),
    }


def vector_search(
    size: int,
    policy: IndexPolicy,
    seeds: np.ndarray,
    queries: int,
    seed: int,
    workdir: Path,
    run_python: RunPython,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Vector search alone on ``size`` synthetic clustered vectors seeded from ``seeds`` (real
    passage vectors), with the index type ``policy`` picks for that size: recall@10 against
    exact search, build time, single-query latency, RSS growth of a fresh process loading the
    saved index (``run_python``) and bytes on disk."""
    family, sq8 = policy.family(size), policy.sq8(size)
    kind = family + ("-sq8" if sq8 else "")
    rng = np.random.default_rng(seed)
    data = synthetic_vectors(size, seeds, rng)
    qs = synthetic_queries(data, queries, rng)
    import faiss

    exact = faiss.IndexFlatIP(data.shape[1])
    exact.add(data)
    _, truth = exact.search(qs, 10)
    exact_t = []
    with single_thread():
        for q in qs[:100]:
            t0 = time.perf_counter()
            exact.search(q[None, :], 10)
            exact_t.append(time.perf_counter() - t0)
    del exact
    t0 = time.perf_counter()
    index = VectorIndex.build(
        family, sq8, np.arange(size, dtype=np.int64), data, policy, progress=progress
    )
    build_s = time.perf_counter() - t0
    del data
    times: list[float] = []
    found = 0
    for i, q in enumerate(qs):
        t0 = time.perf_counter()
        hits = index.search(q, 10)
        times.append(time.perf_counter() - t0)
        found += len({h for h, _ in hits} & set(truth[i].tolist()))
    path = workdir / f"vectors-{size}-{kind}.faiss"
    index.save(path)
    description = index.description
    del index
    disk = path.stat().st_size
    code = (
        "import json, os, sys\n"
        "import faiss\n" + RSS_FN + "r0 = rss()\n"
        "index = faiss.read_index(sys.argv[1])\n"
        "print(json.dumps({'rss': rss() - r0}))\n"
    )
    _secs, out, _err, rc = run_python(code, str(path))
    rss = json.loads(out.strip().splitlines()[-1])["rss"] if rc == 0 else None
    path.unlink()
    return {
        "size": size,
        "index_type": kind,
        "index": description,
        "build_s": round(build_s, 2),
        "recall_at_10": round(found / (10 * len(qs)), 4),
        "search_ms": percentiles(times),
        "exact_search_ms": percentiles(exact_t),
        "rss_bytes_per_vector": round(rss / size) if rss else None,
        "disk_bytes_per_vector": round(disk / size),
    }


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
