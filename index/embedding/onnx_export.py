"""Exporting the sentence-transformers encoder to ONNX (fp32 and int8), cached on disk.

The bundled all-MiniLM-L6-v2 (or any local BERT-style sentence-transformers folder whose modules
are Transformer -> Pooling [-> Normalize]) is exported once, locally, with the TorchScript-based
``torch.onnx.export`` (``dynamo=False``: deterministic, needs no onnxscript) and fused with
onnxruntime's own transformer optimizer (Attention, EmbedLayerNormalization, SkipLayerNorm,
BiasGelu). The int8 variant is ``quantize_dynamic`` over that graph: per-channel QInt8 weights
with ``reduce_range`` on the MatMul nodes only; the fused attention and the embedding tables stay
float32, which is what kept retrieval quality (see ``QUANT_OPTIONS``).

Exports live in ``cache_dir`` (default ``$XDG_CACHE_HOME/newsdesk/onnx``, else
``~/.cache/newsdesk/onnx``), one folder per source model, each ``.onnx`` with a ``.json`` beside
it recording the source folder, size and mtime of its weights file, library versions, the
quantize flag and the recipe version. Any mismatch (or a missing or truncated file) means stale:
the model is exported again, written to a temp file and moved into place with ``os.replace``
under a file lock, so concurrent processes never see half a file.

The names these exports are recorded under are explained in ``onnx_runtime``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding.onnx_model import (
    INPUT_NAMES,
    OUTPUT_NAME,
    _load_tokenizer,
    _pad,
    _pool,
    _read_json,
    _session,
    transformer_dir,
)
from index.errors import ConfigError

log = logging.getLogger(__name__)

# bump when the export or quantisation recipe changes: every cached export becomes stale
RECIPE_VERSION = 1
OPSET = 17
# largest |difference| allowed between torch and the exported fp32 graph on the probe batch
FP32_TOLERANCE = 1e-4
# smallest cosine allowed between fp32 and int8 sentence vectors on the probe batch
INT8_MIN_COSINE = 0.95
# measured on SQuAD dev (620 paragraphs, 3055 questions) against torch: per-channel weights
# are essential (per-tensor: min cosine 0.83), reduce_range helps on AVX2 without VNNI, and
# leaving Attention and the embedding Gather in float32 lifts the mean cosine from 0.9934 to
# 0.9952 (min 0.984) and dense recall@1 from 0.645 to 0.647-0.650 (torch: 0.652) at about
# the same speed
QUANT_OPTIONS: dict[str, Any] = {
    "per_channel": True,
    "reduce_range": True,
    "op_types_to_quantize": ["MatMul"],
}
_PROBE_TEXTS = (
    "What did Ma say about Apple Pay?",
    "A volcano on the island of Tern erupted on Tuesday; ash rose twelve kilometres into the "
    "sky and flights across the region were cancelled.",
    "Oxygen",
)


def _weights_file(tdir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (tdir / name).is_file():
            return tdir / name
    raise ConfigError(f"embedding.model: no model.safetensors in {tdir}")


def _versions() -> dict[str, str]:
    """Versions from package metadata: checking freshness must not import torch (~2 s)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("torch", "onnxruntime"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def _wanted_meta(model_dir: Path, quantize: bool) -> dict[str, Any]:
    """The fields that must match for a cached export to be reused."""
    tdir = transformer_dir(model_dir)
    weights = _weights_file(tdir)
    st = weights.stat()
    return {
        "recipe": RECIPE_VERSION,
        "source": str(model_dir.resolve()),
        "weights": weights.name,
        "weights_size": st.st_size,
        "weights_mtime_ns": st.st_mtime_ns,
        **_versions(),
        "opset": OPSET,
        "quantize": quantize,
        "quant_options": QUANT_OPTIONS if quantize else None,
    }


def _file_name(quantize: bool) -> str:
    return "model-int8.onnx" if quantize else "model.onnx"


def _meta_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")


def is_fresh(onnx_path: Path, wanted: dict[str, Any]) -> bool:
    """True when ``onnx_path`` exists, is complete and was exported from ``wanted``."""
    meta = _read_json(_meta_path(onnx_path))
    if not isinstance(meta, dict):
        return False
    try:
        size = onnx_path.stat().st_size
    except OSError:
        return False
    if meta.get("onnx_size") != size:
        return False
    return all(meta.get(k) == v for k, v in wanted.items())


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _temp_path(out_dir: Path, name: str) -> Iterator[Path]:
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=name + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class _OrtChatter(logging.Filter):
    """Drops onnxruntime's own records below ERROR (by the file that logged them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


_ORT_LOGGER_PREFIXES = ("fusion", "onnx_model", "onnxruntime", "optimizer", "shape_infer")


@contextlib.contextmanager
def _quiet_onnx_logs() -> Iterator[None]:
    """Hide the chatter of onnxruntime's optimizer and quantiser (hundreds of lines).

    Their module loggers get ERROR for the duration; the quantiser logs with ``logging.info``
    and ``logging.warning`` on the root logger, so a filter on the root logger drops those
    (a logger's filters see only records logged at it, not ones propagated from ours).
    """
    quiet = _OrtChatter()
    saved: list[tuple[logging.Logger, int]] = []
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(_ORT_LOGGER_PREFIXES):
            lg = logging.getLogger(name)
            saved.append((lg, lg.level))
            lg.setLevel(logging.ERROR)
    logging.root.addFilter(quiet)
    try:
        yield
    finally:
        logging.root.removeFilter(quiet)
        for lg, level in saved:
            lg.setLevel(level)


def _export_fp32(model_dir: Path, dest: Path) -> dict[str, Any]:
    """Trace the transformer to ONNX at ``dest``, fuse it, and check it against torch."""
    import torch
    import transformers
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    tdir = transformer_dir(model_dir)
    # eager attention: the classic additive-mask graph, which the fusion below recognises and
    # which has no data-dependent mask shortcuts for the tracer to freeze
    model = AutoModel.from_pretrained(str(tdir), local_files_only=True, attn_implementation="eager")
    model.eval()
    cfg = model.config

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            out = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            )
            return out.last_hidden_state

    wrapper = LastHidden(model).eval()
    # a padded dummy batch, so no "all ones" mask shortcut can be traced in
    dummy_ids = torch.full((2, 16), 1000, dtype=torch.long)
    dummy_mask = torch.ones_like(dummy_ids)
    dummy_mask[1, 9:] = 0
    dummy = (dummy_ids, dummy_mask, torch.zeros_like(dummy_ids))
    raw = dest.with_name(dest.name + ".raw")
    try:
        _trace(wrapper, dummy, raw)
        model.eval()  # the exporter restores the wrapper's mode; keep the reference in eval
        optimized = _optimize(raw, dest, cfg)
        if not optimized:
            os.replace(raw, dest)
    finally:
        with contextlib.suppress(OSError):
            raw.unlink()

    tok = _load_tokenizer(model_dir, 256)
    feeds = _pad(tok.encode_batch(list(_PROBE_TEXTS)), 0)
    with torch.no_grad():
        ref = wrapper(*(torch.from_numpy(feeds[k]) for k in INPUT_NAMES)).numpy()
    got = _session(dest, threads=1).run([OUTPUT_NAME], feeds)[0]
    valid = feeds["attention_mask"][..., None].astype(bool)
    diff = float(np.abs(np.where(valid, got - ref, 0.0)).max())
    if diff > FP32_TOLERANCE and optimized:  # a fusion went wrong: fall back to the plain graph
        log.warning("fused ONNX graph differs from torch by %.2e; using the unfused graph", diff)
        _trace(wrapper, dummy, dest)
        optimized = False
        got = _session(dest, threads=1).run([OUTPUT_NAME], feeds)[0]
        diff = float(np.abs(np.where(valid, got - ref, 0.0)).max())
    if diff > FP32_TOLERANCE:
        raise RuntimeError(f"ONNX export differs from torch by {diff:.2e}")
    return {"optimized": optimized, "probe_max_abs_diff": diff}


def _trace(wrapper: Any, dummy: tuple[Any, ...], path: Path) -> None:
    """TorchScript-based export (``dynamo=False``) with dynamic batch and sequence axes."""
    import torch

    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning / legacy-exporter deprecation noise
        torch.onnx.export(
            wrapper,
            dummy,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _optimize(src: Path, dest: Path, cfg: Any) -> bool:
    """Fuse the BERT graph with onnxruntime's transformer optimizer; False if unavailable."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:  # pragma: no cover - part of the onnxruntime wheel
        log.info("onnxruntime.transformers is unavailable; keeping the unfused graph")
        return False
    if getattr(cfg, "model_type", None) != "bert":  # the fusions below are for BERT graphs
        return False
    try:
        with warnings.catch_warnings(), _quiet_onnx_logs():
            warnings.simplefilter("ignore")
            opt = optimize_model(
                str(src),
                model_type="bert",
                num_heads=int(cfg.num_attention_heads),
                hidden_size=int(cfg.hidden_size),
            )
            log.debug("fused operators: %s", opt.get_fused_operator_statistics())
            opt.save_model_to_file(str(dest))
    except Exception as e:  # the plain graph is still correct, just slower
        log.warning("ONNX graph optimisation failed (%s); keeping the unfused graph", e)
        return False
    return True


def _quantize(src: Path, dest: Path, op_types: list[str] | None = None) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings(), _quiet_onnx_logs():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(src),
            str(dest),
            weight_type=QuantType.QInt8,
            per_channel=QUANT_OPTIONS["per_channel"],
            reduce_range=QUANT_OPTIONS["reduce_range"],
            op_types_to_quantize=op_types or list(QUANT_OPTIONS["op_types_to_quantize"]),
            # fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def export_onnx(model_dir: Path, out_dir: Path, *, quantize: bool) -> Path:
    """Export the model at ``model_dir`` to ``out_dir`` unless a fresh export is already there.

    Returns the path of ``model.onnx`` (fp32) or ``model-int8.onnx``. The int8 model is
    quantised from the (cached or new) fp32 export, which therefore stays beside it. A file
    lock in ``out_dir`` makes concurrent callers wait for one export instead of racing.
    """
    from filelock import FileLock

    model_dir = Path(model_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / _file_name(quantize)
    if is_fresh(dest, _wanted_meta(model_dir, quantize)):
        return dest
    with FileLock(str(out_dir / ".export.lock")):
        # under the lock nobody else is writing here: temp files are leftovers of a crash
        for junk in out_dir.glob("*.tmp*"):
            with contextlib.suppress(OSError):
                junk.unlink()
        return _export_locked(model_dir, out_dir, quantize)


def _export_locked(model_dir: Path, out_dir: Path, quantize: bool) -> Path:
    dest = out_dir / _file_name(quantize)
    wanted = _wanted_meta(model_dir, quantize)
    if is_fresh(dest, wanted):  # another process exported it while we waited
        return dest
    t0 = time.perf_counter()
    extra: dict[str, Any]
    if quantize:
        fp32 = _export_locked(model_dir, out_dir, False)
        t0 = time.perf_counter()
        log.info("quantising %s to int8", fp32)
        with _temp_path(out_dir, dest.name) as tmp:
            _quantize(fp32, tmp)
            cos = _probe_cosine(model_dir, fp32, tmp)
            if cos < INT8_MIN_COSINE:
                raise RuntimeError(f"int8 export is too far from fp32 (cosine {cos:.4f})")
            os.replace(tmp, dest)
        extra = {"probe_min_cosine_vs_fp32": round(cos, 6)}
    else:
        log.info("exporting %s to ONNX in %s", model_dir, out_dir)
        with _temp_path(out_dir, dest.name) as tmp:
            extra = _export_fp32(model_dir, tmp)
            os.replace(tmp, dest)
    meta = {
        **wanted,
        **extra,
        "onnx_size": dest.stat().st_size,
        "export_seconds": round(time.perf_counter() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _atomic_write_text(_meta_path(dest), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("ONNX export %s written in %.1fs", dest, meta["export_seconds"])
    return dest


def _probe_cosine(model_dir: Path, a: Path, b: Path) -> float:
    tok = _load_tokenizer(model_dir, 256)
    feeds = _pad(tok.encode_batch(list(_PROBE_TEXTS)), 0)
    va = _pool(
        _session(a, threads=1).run([OUTPUT_NAME], feeds)[0], feeds["attention_mask"], "mean", True
    )
    vb = _pool(
        _session(b, threads=1).run([OUTPUT_NAME], feeds)[0], feeds["attention_mask"], "mean", True
    )
    return float((va * vb).sum(axis=1).min())
