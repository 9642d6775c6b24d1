"""ONNX Runtime embedder: export, staleness, agreement with the torch embedder, batching."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from index.config import EmbeddingSettings
from index.embedding import onnx_export as ox
from index.embedding import onnx_runtime as oe
from index.embedding.onnx_export import export_onnx, is_fresh
from index.embedding.onnx_runtime import OnnxEmbedder
from index.embedding.sbert import SentenceTransformerEmbedder

SENTENCES = [
    "What did Ma say about Apple Pay?",
    "A volcano on the island of Tern erupted on Tuesday.",
    "Ash rose twelve kilometres into the sky and flights across the region were cancelled.",
    "Oxygen",
    "",
    "   padded   with   spaces   ",
    "Prime numbers: 2, 3, 5, 7, 11 and 13 — the first six. Ünïcödé too!",
    # longer than 256 tokens: exercises truncation (special tokens included in the 256)
    " ".join(["The committee met again to discuss the harbour budget."] * 40),
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


# -- no model run needed ----------------------------------------------------------------------
def test_names_and_shape_without_loading(tmp_path: Path) -> None:
    fp32 = OnnxEmbedder(EmbeddingSettings(), cache_dir=tmp_path)
    int8 = OnnxEmbedder(EmbeddingSettings(), quantize=True, cache_dir=tmp_path)
    torch_name = SentenceTransformerEmbedder(EmbeddingSettings()).name
    # fp32 is numerically the torch model, so an index built by either stays valid
    assert fp32.name == torch_name == "all-MiniLM-L6-v2"
    assert int8.name == "all-MiniLM-L6-v2+onnx-int8"
    for e in (fp32, int8):
        assert (e.dimension, e.max_seq_length) == (384, 256)
        assert (e.pooling, e.normalize) == ("mean", True)
        empty = e.embed([])
        assert empty.shape == (0, 384) and empty.dtype == np.float32
        vecs, sent = e.embed_passages([], [])
        assert vecs.shape == (0, 384) and sent == []
        assert not e.loaded  # nothing was exported for an empty input
    assert not any(tmp_path.iterdir())


def test_count_tokens_matches_torch_embedder(tmp_path: Path) -> None:
    e = OnnxEmbedder(EmbeddingSettings(), cache_dir=tmp_path)
    ref = SentenceTransformerEmbedder(EmbeddingSettings())
    assert e.count_tokens(SENTENCES) == ref.count_tokens(SENTENCES)
    assert not e.loaded


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert oe.default_cache_dir() == tmp_path / "cache" / "newsdesk" / "onnx"
    e = OnnxEmbedder(EmbeddingSettings())
    assert e.export_dir.parent == tmp_path / "cache" / "newsdesk" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert oe.default_cache_dir() == Path.home() / ".cache" / "newsdesk" / "onnx"


def test_pad_and_mean_pool_ignore_padding() -> None:
    class Enc:
        def __init__(self, ids: list[int]) -> None:
            self.ids = ids
            self.type_ids = [0] * len(ids)

    feeds = ox._pad([Enc([101, 7, 102]), Enc([101, 102])], pad_id=0)
    assert feeds["input_ids"].tolist() == [[101, 7, 102], [101, 102, 0]]
    assert feeds["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert all(a.dtype == np.int64 for a in feeds.values())
    hidden = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    hidden[1, 2] = 1e6  # a padded position must not count
    pooled = ox._pool(hidden, feeds["attention_mask"], "mean", normalize=False)
    np.testing.assert_allclose(pooled[0], hidden[0].mean(axis=0))
    np.testing.assert_allclose(pooled[1], hidden[1, :2].mean(axis=0))
    unit = ox._pool(hidden, feeds["attention_mask"], "mean", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    assert unit.dtype == np.float32


def test_stale_fp32_export_is_redone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The export decision, with the (slow) tracer replaced by a stand-in."""
    calls: list[Path] = []

    def fake_export(model_dir: Path, dest: Path) -> dict[str, Any]:
        calls.append(dest)
        dest.write_bytes(b"onnx" * 10)
        return {"optimized": True}

    monkeypatch.setattr(ox, "_export_fp32", fake_export)
    model_dir = oe.resolve_model_path("all-MiniLM-L6-v2")
    out = tmp_path / "onnx"
    path = export_onnx(model_dir, out, quantize=False)
    assert path == out / "model.onnx" and len(calls) == 1
    meta_file = out / "model.onnx.json"
    meta = json.loads(meta_file.read_text())
    assert meta["source"] == str(model_dir.resolve())
    assert meta["weights"] == "model.safetensors"
    weights = model_dir / "model.safetensors"
    assert meta["weights_size"] == weights.stat().st_size
    assert meta["weights_mtime_ns"] == weights.stat().st_mtime_ns
    assert meta["quantize"] is False and meta["torch"] and meta["onnxruntime"]
    assert meta["onnx_size"] == path.stat().st_size

    export_onnx(model_dir, out, quantize=False)
    assert len(calls) == 1  # fresh: reused

    meta["weights_mtime_ns"] -= 1  # the weights "changed" since the export
    meta_file.write_text(json.dumps(meta))
    export_onnx(model_dir, out, quantize=False)
    assert len(calls) == 2
    assert json.loads(meta_file.read_text())["weights_mtime_ns"] == weights.stat().st_mtime_ns

    path.write_bytes(b"trunc")  # a damaged file is stale too
    export_onnx(model_dir, out, quantize=False)
    assert len(calls) == 3

    meta_file.unlink()
    export_onnx(model_dir, out, quantize=False)
    assert len(calls) == 4
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_failed_export_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(model_dir: Path, dest: Path) -> dict[str, Any]:
        dest.write_bytes(b"half")
        raise RuntimeError("tracer exploded")

    monkeypatch.setattr(ox, "_export_fp32", broken)
    # int8 was asked for explicitly and has vectors of its own: a failure is an error
    e = OnnxEmbedder(EmbeddingSettings(), quantize=True, cache_dir=tmp_path)
    with pytest.raises(oe.ConfigError, match="tracer exploded"):
        e.embed(["hello"])
    assert sorted(p.name for p in e.export_dir.iterdir()) == [".export.lock"]


@pytest.mark.model
def test_fp32_falls_back_to_torch_when_export_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, real_embedder: Any, caplog: Any
) -> None:
    """The default backend ("onnx") never stops newsdesk: the same vectors come from torch."""

    def broken(model_dir: Path, dest: Path) -> dict[str, Any]:
        raise RuntimeError("tracer exploded")

    monkeypatch.setattr(ox, "_export_fp32", broken)
    e = OnnxEmbedder(EmbeddingSettings(), cache_dir=tmp_path)
    with caplog.at_level("WARNING"):
        got = e.embed(SENTENCES[:3])
    assert "tracer exploded" in caplog.text and "torch backend instead" in caplog.text
    np.testing.assert_allclose(got, real_embedder.embed(SENTENCES[:3]), atol=1e-5)
    vecs, sent = e.embed_passages([SENTENCES[1]], [[(0, 10)]])
    assert vecs.shape == (1, 384) and sent[0].shape == (1, 384)
    assert e.loaded and e.name == real_embedder.name


def test_make_embedder_default_is_onnx_and_falls_back_on_unsupported_models(
    tmp_path: Path, caplog: Any
) -> None:
    from index.embedding import make_embedder
    from index.embedding.base import resolve_model_path

    assert EmbeddingSettings().backend == "onnx"
    assert isinstance(make_embedder(EmbeddingSettings()), OnnxEmbedder)
    # a model folder with a module the ONNX backend cannot run (here: a Dense layer)
    model = tmp_path / "model"
    shutil.copytree(resolve_model_path(EmbeddingSettings().model), model)
    modules = json.loads((model / "modules.json").read_text())
    dense = {"idx": 9, "name": "9", "path": "9_Dense", "type": "sentence_transformers.models.Dense"}
    modules.append(dense)
    (model / "modules.json").write_text(json.dumps(modules))
    with caplog.at_level("WARNING"):
        e = make_embedder(EmbeddingSettings(model=str(model)))
    assert isinstance(e, SentenceTransformerEmbedder) and not e.loaded
    assert "Dense" in caplog.text and "torch backend instead" in caplog.text
    with pytest.raises(oe.ConfigError, match="Dense"):
        make_embedder(EmbeddingSettings(model=str(model), backend="onnx-int8"))


# -- real exports ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One fp32 and one int8 export for the whole module (about 15 s)."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    for quantize in (False, True):
        e = OnnxEmbedder(EmbeddingSettings(), quantize=quantize, cache_dir=cache)
        e.embed(["warm up"])
        assert e.export_seconds is not None
    yield cache


@pytest.mark.model
def test_fp32_matches_torch(onnx_cache: Path, real_embedder: Any) -> None:
    e = OnnxEmbedder(EmbeddingSettings(), cache_dir=onnx_cache)
    got = e.embed(SENTENCES)
    ref = real_embedder.embed(SENTENCES)
    assert e.export_seconds is None  # reused the module's export
    assert e.load_seconds is not None
    assert got.shape == (len(SENTENCES), 384) and got.dtype == np.float32
    assert _cos(got, ref).min() >= 0.9999
    assert np.abs(got - ref).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    q = e.embed_query(SENTENCES[0])
    assert q.shape == (384,) and float(q @ ref[0]) >= 0.9999


@pytest.mark.model
def test_int8_close_to_torch(onnx_cache: Path, real_embedder: Any) -> None:
    e = OnnxEmbedder(EmbeddingSettings(), quantize=True, cache_dir=onnx_cache)
    got = e.embed(SENTENCES)
    ref = real_embedder.embed(SENTENCES)
    # measured: min 0.984 over 620 SQuAD paragraphs, 0.986 over 3055 questions
    assert _cos(got, ref).min() >= 0.97
    assert got.dtype == np.float32
    # the nearest torch vector of each int8 vector is its own sentence
    assert (np.argmax(got @ ref.T, axis=1) == np.arange(len(SENTENCES))).all()
    meta = json.loads((e.export_dir / "model-int8.onnx.json").read_text())
    assert meta["quantize"] is True and meta["quant_options"]["per_channel"] is True
    assert (e.export_dir / "model-int8.onnx").stat().st_size < (
        e.export_dir / "model.onnx"
    ).stat().st_size


@pytest.mark.model
@pytest.mark.parametrize("quantize", [False, True])
def test_embed_passages_matches_torch(onnx_cache: Path, real_embedder: Any, quantize: bool) -> None:
    first, second = SENTENCES[1], SENTENCES[2]
    texts = [f"{first} {second}", SENTENCES[7], "Oxygen", SENTENCES[6]]
    spans = [
        [(0, len(first)), (len(first) + 1, len(texts[0]))],
        [(0, 55), (56, 111), (5000, 5100)],  # the last one lies past the 256-token cut
        [],
        [(0, 39), (40, len(SENTENCES[6]))],
    ]
    e = OnnxEmbedder(EmbeddingSettings(), quantize=quantize, cache_dir=onnx_cache)
    seen: list[int] = []
    vecs, sent = e.embed_passages(texts, spans, progress=seen.append)
    ref_vecs, ref_sent = real_embedder.embed_passages(texts, spans)
    assert sum(seen) == len(texts)
    floor = 0.97 if quantize else 0.9999
    assert _cos(vecs, ref_vecs).min() >= floor
    np.testing.assert_allclose(vecs, e.embed(texts), atol=1e-6)
    for got, ref, sp in zip(sent, ref_sent, spans, strict=True):
        assert got.shape == ref.shape == (len(sp), 384) and got.dtype == np.float32
        if len(sp):
            assert _cos(got, ref).min() >= floor
    np.testing.assert_allclose(sent[1][2], vecs[1], atol=1e-6)  # truncated span: text vector
    with pytest.raises(ValueError):
        e.embed_passages(texts, spans[:2])


@pytest.mark.model
def test_order_preserved_across_sorted_batches(onnx_cache: Path) -> None:
    e = OnnxEmbedder(EmbeddingSettings(batch_size=3), cache_dir=onnx_cache)
    texts = [SENTENCES[i] for i in (7, 3, 0, 5, 1, 7, 4, 2, 6)]  # lengths out of order, repeats
    seen: list[int] = []
    vecs = e.embed(texts, progress=seen.append)
    assert sum(seen) == len(texts) and max(seen) <= 3
    singles = np.vstack([e.embed_query(t) for t in texts])
    np.testing.assert_allclose(vecs, singles, atol=1e-5)
    np.testing.assert_allclose(vecs[0], vecs[5], atol=1e-6)
    assert not np.allclose(vecs[0], vecs[1], atol=1e-3)


@pytest.mark.model
@pytest.mark.parametrize("quantize", [False, True])
def test_parallel_batches_keep_order(onnx_cache: Path, quantize: bool) -> None:
    e = OnnxEmbedder(EmbeddingSettings(batch_size=4), quantize=quantize, cache_dir=onnx_cache)
    e.workers = 2  # batches run side by side on the single-threaded session
    texts = [f"{i} " + SENTENCES[(i * 5) % len(SENTENCES)] for i in range(41)]
    seen: list[int] = []
    vecs = e.embed(texts, progress=seen.append)
    assert e._bulk is not None and sum(seen) == len(texts) and max(seen) <= 4
    spans = [[(0, 3), (3, len(t))] for t in texts]
    pvecs, sent = e.embed_passages(texts, spans)
    np.testing.assert_allclose(pvecs, vecs, atol=1e-6)
    assert [len(x) for x in sent] == [2] * len(texts)
    e.workers = 1
    sequential = e.embed(texts)
    cos = _cos(vecs, sequential)
    # int8 scales activations per batch, so batch-mates move a vector a little
    assert cos.min() >= (0.995 if quantize else 0.99999)
    assert (np.argmax(vecs @ sequential.T, axis=1) == np.arange(len(texts))).all()


@pytest.mark.model
def test_stale_int8_export_is_redone(onnx_cache: Path, tmp_path: Path) -> None:
    src = OnnxEmbedder(EmbeddingSettings(), cache_dir=onnx_cache).export_dir
    out = tmp_path / src.name  # where an embedder with cache_dir=tmp_path looks
    out.mkdir()
    for name in ("model.onnx", "model.onnx.json", "model-int8.onnx", "model-int8.onnx.json"):
        shutil.copy2(src / name, out / name)
    model_dir = oe.resolve_model_path("all-MiniLM-L6-v2")
    int8 = out / "model-int8.onnx"
    before = int8.stat().st_ino, int8.stat().st_mtime_ns
    assert export_onnx(model_dir, out, quantize=True) == int8
    assert (int8.stat().st_ino, int8.stat().st_mtime_ns) == before  # fresh: untouched

    meta_file = out / "model-int8.onnx.json"
    meta = json.loads(meta_file.read_text())
    meta["weights_mtime_ns"] += 1_000_000_000
    meta_file.write_text(json.dumps(meta))
    assert not is_fresh(int8, ox._wanted_meta(model_dir, True))
    fp32_before = (out / "model.onnx").stat().st_ino
    export_onnx(model_dir, out, quantize=True)
    assert int8.stat().st_ino != before[0]  # replaced by a new file
    assert (out / "model.onnx").stat().st_ino == fp32_before  # the fresh fp32 was reused
    assert is_fresh(int8, ox._wanted_meta(model_dir, True))
    e = OnnxEmbedder(EmbeddingSettings(), quantize=True, cache_dir=tmp_path)
    a = e.embed(SENTENCES[:3])
    assert e.onnx_path == int8 and e.export_seconds is None
    b = OnnxEmbedder(EmbeddingSettings(), quantize=True, cache_dir=onnx_cache).embed(SENTENCES[:3])
    np.testing.assert_allclose(a, b, atol=1e-6)  # the export is deterministic
