"""Issue 6: vector index types and switching, the question path's speed-ups keep results
identical, nothing loads the model unless it must, and `newsdesk bench` end to end."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from pathlib import Path

import bm25s
import faiss
import numpy as np
import pytest
import Stemmer

from index import cli
from index.config import EmbeddingSettings, Settings, load_settings
from index.embedding.hashing import HashEmbedder
from index.embedding.onnx_runtime import OnnxEmbedder
from index.embedding.sbert import SentenceTransformerEmbedder
from index.models import Document
from index.pipeline import Pipeline
from index.storage.faiss_index import IndexPolicy, VectorIndex, ivf_nlist
from index.storage.lexical import LexicalIndex, tokenize

WORDS = [
    *[
        "volcano",
        "island",
        "ash",
        "flight",
        "chess",
        "champion",
        "title",
        "bakery",
        "bread",
        "prize",
        "lava",
        "sea",
    ],
    *[
        "observatory",
        "election",
        "senate",
        "vote",
        "budget",
        "river",
        "flood",
        "bridge",
        "museum",
        "painting",
    ],
    *[
        "storm",
        "harbour",
        "train",
        "strike",
        "court",
        "judge",
        "verdict",
        "rocket",
        "launch",
        "orbit",
        "vaccine",
    ],
    *[
        "trial",
        "hospital",
        "school",
        "teacher",
        "exam",
        "market",
        "price",
        "oil",
        "coffee",
        "harvest",
        "festival",
    ],
    *["music", "stadium", "goal", "league", "winter", "snow", "mountain", "glacier"],
]


def make_docs(n: int, seed: int = 0, prefix: str = "/news") -> list[Document]:
    """``n`` small articles of two paragraphs, deterministic, sharing a vocabulary."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        paras = []
        for _ in range(2):
            sents = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize() + "."
                for _ in range(3)
            ]
            paras.append(" ".join(sents))
        title = f"Story {i}: {rng.choice(WORDS)} and {rng.choice(WORDS)}"
        docs.append(Document(f"{prefix}/{i}.txt", title, "\n\n".join(paras)))
    return docs


QUESTIONS = [
    "What happened to the volcano and the flights?",
    "Who won the chess title?",
    "Which bakery won the bread prize?",
    "Was the bridge closed by the flood?",
    "When did the rocket launch into orbit?",
    "What did the judge say about the verdict?",
]


def _pipeline(settings: Settings, **retrieval: object) -> Pipeline:
    r = dataclasses.replace(settings.retrieval, **retrieval)  # type: ignore[arg-type]
    return Pipeline(dataclasses.replace(settings, retrieval=r), HashEmbedder())


def _answers(p: Pipeline) -> list[tuple[object, ...]]:
    out = []
    for q in QUESTIONS:
        ans = p.ask(q, k=5)
        quote = ans.quote.text if ans.quote else None
        hits = [(h.article_id, h.start, h.end, round(h.score, 5)) for h in ans.passages]
        out.append((quote, hits))
    return out


# -- vector index types ------------------------------------------------------------------------


@pytest.mark.faiss_only
@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_ann_index_with_exact_parameters_gives_the_flat_results(
    settings: Settings, tmp_path: Path, index_type: str
) -> None:
    docs = make_docs(60)
    results = {}
    for kind in ("flat", index_type):
        s = dataclasses.replace(settings, data_dir=tmp_path / kind)
        with _pipeline(
            s, index_type=kind, ivf_nprobe=65536, hnsw_ef_search=4096
        ) as p:  # probe every list / search the whole graph: exact
            p.add_documents(docs)
            assert p.snapshot().vectors.kind == kind
            assert p.stats().index_type == kind
            results[kind] = _answers(p)
    assert results[index_type] == results["flat"]


@pytest.mark.faiss_only
def test_auto_switches_at_the_threshold_and_back(settings: Settings) -> None:
    settings.retrieval.ann_threshold = 40  # below the config's minimum, for a small test
    p = _pipeline(settings)
    first = make_docs(10, seed=1, prefix="/a")
    p.add_documents(first)
    n = len(p.snapshot().vectors)
    assert n < 40 and p.snapshot().vectors.kind == "flat"
    more = make_docs(30, seed=2, prefix="/b")
    p.add_documents(more)
    snap = p.snapshot()
    assert len(snap.vectors) >= 40
    assert snap.vectors.kind == "ivf" and p.stats().index_type == "ivf"
    assert set(snap.vectors.ids().tolist()) == set(p.store.chunk_ids())
    # a fresh process loads the same type, with the configured search parameters
    with _pipeline(settings, ivf_nprobe=3) as other:
        loaded = other.snapshot().vectors
        assert loaded.kind == "ivf" and loaded.index.nprobe == min(3, loaded.nlist)
    # removing articles: IVF keeps working in place while above 90% of the threshold ...
    p.remove(more[0].source)
    snap = p.snapshot()
    assert set(snap.vectors.ids().tolist()) == set(p.store.chunk_ids())
    # ... and goes back to exact search below it
    for d in more[1:]:
        p.remove(d.source)
        if len(p.snapshot().vectors) < 36:
            break
    assert p.snapshot().vectors.kind == "flat"
    assert set(p.snapshot().vectors.ids().tolist()) == set(p.store.chunk_ids())
    assert p.ask("Who won the chess title?").passages
    p.close()


@pytest.mark.faiss_only
def test_explicit_types_and_sq8_through_the_pipeline(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("index.storage.policy.SQ_MIN_TRAIN", 20)
    docs = make_docs(30)
    for kind in ("flat", "ivf", "hnsw"):
        s = dataclasses.replace(settings, data_dir=tmp_path / kind)
        with _pipeline(s, index_type=kind, quantize="sq8", ivf_nprobe=65536) as p:
            p.add_documents(docs)
            assert p.snapshot().vectors.kind == f"{kind}-sq8"
            ans = p.ask("Who won the chess title?")
            assert ans.passages
            # update one article and remove another: ids stay those of the database
            changed = dataclasses.replace(docs[3], text=docs[3].text + "\n\nA late change.")
            p.add_documents([changed])
            p.remove(docs[5].source)
            assert set(p.snapshot().vectors.ids().tolist()) == set(p.store.chunk_ids())
            assert p.stats().index_type == f"{kind}-sq8"


@pytest.fixture
def vectors() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2500, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    yield np.arange(100, 2600, dtype=np.int64), x


@pytest.mark.parametrize("family", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("sq8", [False, True])
def test_vector_index_build_remove_save_load(
    vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path, family: str, sq8: bool
) -> None:
    ids, x = vectors
    policy = IndexPolicy(index_type=family, ivf_nprobe=65536, hnsw_ef_search=4096)  # type: ignore[arg-type]
    index = VectorIndex.build(family, sq8, ids, x, policy)  # type: ignore[arg-type]
    assert index.kind == family + ("-sq8" if sq8 else "") and len(index) == len(ids)
    exact = VectorIndex.empty(32)
    exact.add(ids, x)
    q = x[7] + 0.05
    want = [i for i, _ in exact.search(q, 10)]
    got = [i for i, _ in index.search(q, 10)]
    if sq8:  # 8-bit vectors: nearly the same neighbours
        assert len(set(want) & set(got)) >= 8
    else:
        assert got == want
    tol = 0.02 if sq8 else 1e-5
    assert np.allclose(index.scores_for(q, want[:5]), exact.scores_for(q, want[:5]), atol=tol)
    copy = index.copy()
    assert copy.remove(np.array([want[0], 101, 999_999])) == 2
    assert len(copy) == len(ids) - 2 and len(index) == len(ids)
    copy.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", 32, policy)
    assert loaded.kind == index.kind
    assert set(loaded.ids().tolist()) == set(ids.tolist()) - {want[0], 101}
    assert want[0] not in [i for i, _ in loaded.search(q, 10)]
    loaded.add(np.array([5000]), x[:1])
    assert loaded.search(x[0], 3)[0][0] in (100, 5000)


def test_policy_choices() -> None:
    auto = IndexPolicy(ann_threshold=1000)
    assert auto.family(999) == "flat" and auto.family(1000) == "ivf"
    assert auto.family(950, current="ivf") == "ivf"  # hysteresis
    assert auto.family(899, current="ivf") == "flat"
    assert IndexPolicy(index_type="hnsw").family(10) == "hnsw"
    assert not IndexPolicy(quantize="sq8").sq8(10) and IndexPolicy(quantize="sq8").sq8(5000)
    assert ivf_nlist(10) == 1 and ivf_nlist(1_000_000) == 1024 and ivf_nlist(20_000) == 128
    flat = VectorIndex.empty(8)
    assert flat.wanted(auto) is None  # empty: stays flat


def test_single_query_search_restores_openmp_threads() -> None:
    before = faiss.omp_get_max_threads()
    index = VectorIndex.empty(4)
    index.add(np.array([1, 2]), np.eye(4, dtype=np.float32)[:2])
    assert index.search(np.array([1, 0, 0, 0], np.float32), 1)[0][0] == 1
    assert faiss.omp_get_max_threads() == before


def test_index_settings_are_validated(tmp_path: Path) -> None:
    from index.errors import ConfigError

    for body, key in (
        ('[retrieval]\nindex_type = "annoy"\n', "retrieval.index_type"),
        ("[retrieval]\nann_threshold = 10\n", "retrieval.ann_threshold"),
        ('[retrieval]\nquantize = "pq"\n', "retrieval.quantize"),
        ("[retrieval]\nivf_nprobe = 0\n", "retrieval.ivf_nprobe"),
        ('[embedding]\nbackend = "tensorflow"\n', "embedding.backend"),
    ):
        p = tmp_path / "c.toml"
        p.write_text(body)
        with pytest.raises(ConfigError, match=key):
            load_settings(p)


# -- the question path keeps its results -----------------------------------------------------


def test_tokenize_is_bm25s_tokenize() -> None:
    texts = [
        "The Tern Observatory said the eruption was the largest since 1982.",
        "Dr. Ana Ruiz said lava reached the sea within hours; ÉCOLE naïve façade 東京 x",
        "",
        "a an the of",
        "Running runners ran: they're running!",
    ] + [" ".join(random.Random(i).choice(WORDS) for _ in range(40)) for i in range(20)]
    want = bm25s.tokenize(
        texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False,
        show_progress=False,
    )  # fmt: skip
    assert tokenize(texts) == [list(t) for t in want]
    assert tokenize(texts) == [list(t) for t in want]  # cached: the same, and copies
    tokenize(texts)[0].append("x")
    assert tokenize(texts)[0] == list(want[0])


def test_lexical_search_is_bm25s_retrieve() -> None:
    docs = make_docs(40)
    texts = [f"{d.title}\n{d.text}" for d in docs]
    lex = LexicalIndex.build(list(range(10, 50)), texts)
    for q in QUESTIONS:
        terms = [t for t in tokenize([q])[0] if t in lex.retriever.vocab_dict]
        docs_, scores = lex.retriever.retrieve([terms], k=15, show_progress=False, n_threads=1)
        want = [(int(d) + 10, float(s)) for d, s in zip(docs_[0], scores[0], strict=True) if s > 0]
        assert lex.search(q, 15) == want
        all_scores = lex.retriever.get_scores(terms)
        assert lex.scores_for(q, [10, 12, 49, 7]).tolist() == [
            float(np.float32(all_scores[0])),
            float(np.float32(all_scores[2])),
            float(np.float32(all_scores[39])),
            0.0,
        ]


# -- nothing loads the model unless it must --------------------------------------------------


class _ModelShaped(HashEmbedder):
    """A hash embedder under the bundled model's name and size, so an index it builds is one
    the real embedder opens (same meta) without a model."""

    def __init__(self) -> None:
        real = SentenceTransformerEmbedder(EmbeddingSettings())
        super().__init__(dimension=real.dimension, name=real.name)
        self.max_seq_length = real.max_seq_length


def test_unchanged_index_stats_remove_and_articles_never_load_the_model(
    settings: Settings, corpus_dir: Path
) -> None:
    with Pipeline(settings, _ModelShaped()) as p:
        p.add([str(corpus_dir)])
    real = SentenceTransformerEmbedder(EmbeddingSettings())
    with Pipeline(settings, real) as p:
        report = p.add([str(corpus_dir)])
        assert (report.unchanged, report.chunks_embedded) == (3, 0)
        assert p.stats().articles == 3
        rows = p.list_articles()
        assert p.get_article(rows[0].id).title == rows[0].title
        assert p.match_titles("chess")
        p.remove(rows[0].id)
        assert p.stats().articles == 2
        assert (p.check() == []) if hasattr(p, "check") else True
    assert real.loaded is False


@pytest.mark.faiss_only
def test_cli_unchanged_index_stats_remove_never_load_the_model(
    settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Pipeline(settings, _ModelShaped()) as p:
        p.add([str(corpus_dir)])

    def refuse(self: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(SentenceTransformerEmbedder, "_load", refuse)
    monkeypatch.setattr(OnnxEmbedder, "_load", refuse)  # the default backend
    d = ["--data-dir", str(settings.data_dir)]
    for argv in (
        ["index", "-q", *d, str(corpus_dir)],
        ["stats", *d],
        ["articles", *d],
        ["article", *d, "Chess champion keeps her title"],
        ["remove", *d, "Chess champion keeps her title"],
        ["index", "-q", *d, str(corpus_dir / "volcano.txt")],
    ):
        assert cli.main(argv) == 0, argv


# -- newsdesk bench ----------------------------------------------------------------------------


def test_bench_runs_end_to_end_and_reports_every_figure(
    hash_config: Path, corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    argv = [
        "bench", "-q", "--config", str(hash_config), "--corpus", str(corpus_dir),
        "--sizes", "2000", "--questions", "12", "--json", "--out", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(out.read_text())
    assert printed["indexing"] == saved["indexing"]
    r = saved
    ix = r["indexing"]
    assert ix["pipeline_passages_per_s"] > 0 and ix["encode_passages_per_s"] > 0
    assert ix["ratio"] is not None
    assert [q["label"] for q in r["questions"]] == ["corpus", "2000"]
    big = r["questions"][-1]
    assert big["passages"] >= 2000
    for key in ("p50", "p95", "p99"):
        assert big["ask_ms"][key] > 0 and big["encode_ms"][key] > 0
    assert big["ratio_p50"] > 0
    (vs,) = r["vector_search"]
    assert vs["size"] == 2000 and vs["index_type"] == "flat" and vs["recall_at_10"] == 1.0
    assert vs["build_s"] >= 0 and vs["search_ms"]["p99"] > 0 and vs["disk_bytes_per_vector"] > 0
    assert vs["rss_bytes_per_vector"] is not None
    assert [s["label"] for s in r["storage"]] == ["corpus", "2000"]
    assert all(s["disk_bytes_per_passage"] > 0 for s in r["storage"])
    un = r["reindex_unchanged"]
    assert un["exit_code"] == 0 and un["model_loaded"] is False and un["unchanged"] == 3
    assert un["seconds"] > 0
    ch = r["reindex_changed"]
    assert ch["corpus"]["articles_changed"] == 1 and ch["corpus"]["ratio"] > 0
    assert ch["largest"]["index_passages"] >= 2000
    (st,) = r["startup"]
    assert st["cli_exit_code"] == 0 and st["cli_ready_s"] > 0
    assert not any(key.startswith("bot_") for key in st)  # tests/perf/bot_startup.py has it
    names = [t["target"] for t in r["targets"]]
    assert any("indexing throughput" in n for n in names)
    assert any("unchanged re-index" in n for n in names)
    assert not any(n.startswith("bot READY") for n in names)
    assert r["notes"] == []
    text = cli_markdown(r)
    assert "| target |" in text and "vector search" in text
    assert "measured by tests/perf/bot_startup.py" in text  # where the bot's start-up went


def test_bot_startup_script_times_the_bot_until_ready_on_a_grown_index(
    hash_config: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    """`make bench`'s second half: the bot's start-up, moved out of the engine's bench."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = ROOT / "tests" / "perf" / "bot_startup.py"
    argv = [sys.executable, str(script), "--config", str(hash_config), "--corpus"]
    argv += [str(corpus_dir), "--size", "300", "--json"]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert res["label"] == "300" and res["passages"] >= 300
    assert res["bot_ready_s"] > 0 and res["bot_setup_hook_s"] is not None
    assert res["bot_model_load_s"] is None  # the hash embedder loads nothing
    goal = res["target"]
    assert goal["target"] == "bot READY - model load (300)" and goal["goal"] == "<= 2.0 s"
    assert goal["measured"] == res["bot_ready_s"] and goal["met"] is (goal["measured"] <= 2.0)


def cli_markdown(results: dict[str, object]) -> str:
    from index.tools.bench_report import markdown_report

    return markdown_report(results)  # type: ignore[arg-type]
