"""ONNX Runtime backend for the sentence-transformers encoder (same vectors, less overhead).

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

Naming, i.e. the ``model`` recorded in the index meta (a name change forces a reindex):

* fp32 keeps the torch embedder's name (``all-MiniLM-L6-v2``). It is numerically the same
  model: on 620 SQuAD paragraphs the vectors differ from sentence-transformers' by at most
  ~3e-7 per component (min cosine 1.000000), well inside float32 noise, so an index built with
  torch stays valid with ONNX fp32 and vice versa. ``export_onnx`` checks this on a probe batch
  and refuses an export that differs by more than ``FP32_TOLERANCE``.
* int8 is a different (approximate) model and gets its own name,
  ``all-MiniLM-L6-v2+onnx-int8``, so switching to or from it asks for a reindex instead of
  silently mixing vector spaces.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from index.config import EmbeddingSettings
from index.embedding.base import BatchProgress, Spans, model_name, pool_spans, resolve_model_path
from index.errors import ConfigError

log = logging.getLogger(__name__)

# bump when the export or quantisation recipe changes: every cached export becomes stale
RECIPE_VERSION = 1
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
INT8_SUFFIX = "+onnx-int8"
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
SPIN = "0"  # onnxruntime's session.intra_op.allow_spinning
# batch size when batches run side by side (small batches balance the workers' loads)
BULK_BATCH = 16
_PROBE_TEXTS = (
    "What did Ma say about Apple Pay?",
    "A volcano on the island of Tern erupted on Tuesday; ash rose twelve kilometres into the "
    "sky and flights across the region were cancelled.",
    "Oxygen",
)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newsdesk" / "onnx"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _modules(model_dir: Path) -> list[dict[str, Any]]:
    data = _read_json(model_dir / "modules.json")
    if not isinstance(data, list):  # a bare transformers folder: mean pooling, no Normalize
        return [
            {"path": "", "type": "sentence_transformers.models.Transformer"},
            {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
    return [m for m in data if isinstance(m, dict)]


def _module_kind(module: dict[str, Any]) -> str:
    return str(module.get("type", "")).rsplit(".", 1)[-1]


def transformer_dir(model_dir: Path) -> Path:
    """The folder of the Transformer module (the model root for the bundled model)."""
    for m in _modules(model_dir):
        if _module_kind(m) == "Transformer":
            return model_dir / str(m.get("path") or "")
    return model_dir


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


def _load_tokenizer(model_dir: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tok_file = transformer_dir(model_dir) / "tokenizer.json"
    if not tok_file.is_file():
        raise ConfigError(f"embedding.model: the ONNX backend needs {tok_file}")
    tok = Tokenizer.from_file(str(tok_file))
    tok.enable_truncation(max_length=max_length, strategy="longest_first", direction="right")
    tok.no_padding()  # batches are padded by hand after sorting by length
    return tok


def _pad(encodings: Sequence[Any], pad_id: int) -> dict[str, np.ndarray]:
    """Right-pad a batch to its longest member; int64 arrays named like the ONNX inputs."""
    n = len(encodings)
    width = max(len(e.ids) for e in encodings)
    ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    types = np.zeros((n, width), dtype=np.int64)
    for i, e in enumerate(encodings):
        k = len(e.ids)
        ids[i, :k] = e.ids
        mask[i, :k] = 1
        types[i, :k] = e.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


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


def _session(path: Path, *, threads: int | None = None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "the ONNX embedding backend needs onnxruntime (pip install onnxruntime onnx)"
        ) from None
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # idle worker threads sleep instead of busy-waiting: on 2 cores shared with the bot, the
    # index writer or other processes, spinning threads steal the cycles the work needs
    # (measured under load: int8 14.1 passages/s without spinning, 10.8 with)
    so.add_session_config_entry("session.intra_op.allow_spinning", SPIN)
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str, normalize: bool) -> np.ndarray:
    m = mask.astype(np.float32)
    if mode == "mean":
        summed = np.matmul(m[:, None, :], hidden)[:, 0, :]
        vecs = summed / np.maximum(m.sum(axis=1, keepdims=True), 1e-9)
    elif mode == "cls":
        vecs = hidden[:, 0, :]
    else:  # max
        vecs = np.where(m[..., None] > 0, hidden, np.float32(-1e9)).max(axis=1)
    vecs = vecs.astype(np.float32, copy=False)
    if normalize:
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.maximum(norms, 1e-12)
    return vecs


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


def _slug(model_dir: Path) -> str:
    resolved = str(model_dir.resolve())
    digest = hashlib.sha1(resolved.encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", model_dir.resolve().name).strip("-") or "model"
    return f"{stem}-{digest}"


class OnnxEmbedder:
    """The sentence-transformers model run by ONNX Runtime; batched, L2-normalised float32.

    Same protocol as :class:`index.embedding.base.SentenceTransformerEmbedder` (``embed``,
    ``embed_query``, ``embed_passages`` with late-chunked span vectors, ``count_tokens``). The
    export happens on first use, or never when a fresh one is cached; ``load_seconds`` covers
    export (if any) plus session creation, ``export_seconds`` the export alone (None when the
    cache was fresh). A cached load does not import torch.

    Texts are tokenised with the model's ``tokenizer.json`` (truncated to ``max_seq_length``
    tokens, special tokens included), sorted by token count, cut into batches of
    ``batch_size`` padded to their longest member, and written back in the original order.
    Small inputs run on one session with ``os.cpu_count()`` intra-op threads; inputs of more
    than ``BULK_BATCH`` texts run batches of at most ``BULK_BATCH`` side by side, one per core,
    on a second, single-threaded session (``workers``; 1 turns this off).
    """

    def __init__(
        self,
        settings: EmbeddingSettings,
        *,
        quantize: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.quantize = quantize
        self.path = resolve_model_path(settings.model)
        base = model_name(settings.model)
        self.name = base + INT8_SUFFIX if quantize else base
        self.batch_size = settings.batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.export_dir = self.cache_dir / _slug(self.path)
        self.load_seconds: float | None = None
        self.export_seconds: float | None = None
        self.onnx_path: Path | None = None
        self._session: Any = None
        self._bulk: Any = None
        self.workers = os.cpu_count() or 1
        self._tokenizer: Any = None
        self._counter: Any = None
        self._lock = threading.Lock()
        # the torch embedder this one hands over to when an fp32 export is impossible (same
        # vectors and name, so an index built either way stays valid)
        self._fallback: Any = None
        self._read_modules()
        self.dimension = self._read_dimension()
        self.max_seq_length = self._read_max_seq_length()

    # -- model description -------------------------------------------------------------------
    def _json(self, rel: str) -> dict[str, Any]:
        data = _read_json(self.path / rel)
        return data if isinstance(data, dict) else {}

    def _read_modules(self) -> None:
        self.pooling = "mean"
        self.normalize = False
        self._pooling_dir = "1_Pooling"
        for m in _modules(self.path):
            kind = _module_kind(m)
            if kind == "Pooling":
                self._pooling_dir = str(m.get("path") or "1_Pooling")
                self.pooling = self._read_pooling_mode()
            elif kind == "Normalize":
                self.normalize = True
            elif kind != "Transformer":
                raise ConfigError(
                    f"embedding.model: the ONNX backend does not support the {kind} module "
                    f"of {self.path}; use the torch backend"
                )

    def _read_pooling_mode(self) -> str:
        cfg = self._json(f"{self._pooling_dir}/config.json")
        flags = {
            "pooling_mode_mean_tokens": "mean",
            "pooling_mode_cls_token": "cls",
            "pooling_mode_max_tokens": "max",
        }
        mode = cfg.get("pooling_mode")  # newer configs name the mode directly
        if isinstance(mode, str):
            modes = [mode]
        else:
            modes = [
                flags.get(k, k)
                for k, v in cfg.items()
                if k.startswith("pooling_mode") and v is True
            ]
        if not modes:
            return "mean"
        if len(modes) != 1 or modes[0] not in ("mean", "cls", "max"):
            raise ConfigError(
                f"embedding.model: the ONNX backend supports mean, cls or max pooling, not "
                f"{', '.join(modes)} ({self.path}); use the torch backend"
            )
        return modes[0]

    def _read_dimension(self) -> int:
        dim = self._json(f"{self._pooling_dir}/config.json").get("word_embedding_dimension")
        if isinstance(dim, int):
            return dim
        dim = self._json("config.json").get("hidden_size")
        if isinstance(dim, int):
            return dim
        raise ConfigError(f"embedding.model: cannot tell the vector size of {self.path}")

    def _read_max_seq_length(self) -> int:
        cfg = self._json("sentence_bert_config.json")
        self._lower = bool(cfg.get("do_lower_case", False))
        n = cfg.get("max_seq_length")
        return int(n) if isinstance(n, int) else 256

    # -- lazy loading --------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._session is not None or self._fallback is not None

    def _torch(self) -> Any:
        """The torch embedder when ONNX could not be used (fp32 only), else None."""
        if self._session is None and self._fallback is None:
            self.session  # noqa: B018 -- loads, or sets the fallback
        return self._fallback

    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None and self._fallback is None:
                    try:
                        self._session = self._load()
                    except ConfigError as e:
                        if self.quantize:
                            raise
                        # fp32 is numerically the torch model: run that instead of failing
                        from index.embedding.base import SentenceTransformerEmbedder

                        log.warning("%s; using the torch backend instead", e)
                        self._fallback = SentenceTransformerEmbedder(self.settings)
        return self._session

    def _load(self) -> Any:
        t0 = time.perf_counter()
        wanted = _wanted_meta(self.path, self.quantize)
        target = self.export_dir / _file_name(self.quantize)
        if not is_fresh(target, wanted):
            try:
                target = export_onnx(self.path, self.export_dir, quantize=self.quantize)
            except ConfigError:
                raise
            except Exception as e:  # any exporter failure becomes a message for a person
                raise ConfigError(
                    f"embedding: cannot export {self.path} to ONNX in {self.export_dir}: {e}"
                ) from e
            self.export_seconds = time.perf_counter() - t0
        self.onnx_path = target
        self._tokenizer = _load_tokenizer(self.path, self.max_seq_length)
        pad = self._tokenizer.token_to_id("[PAD]")
        self._pad_id = int(pad) if pad is not None else 0
        session = _session(target)
        self.load_seconds = time.perf_counter() - t0
        log.info("ONNX model %s ready in %.1fs", target, self.load_seconds)
        return session

    # -- protocol --------------------------------------------------------------------------
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._counter is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(transformer_dir(self.path) / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._counter = tok
        encs = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    @property
    def bulk_session(self) -> Any:
        """A single-threaded session for running ``workers`` batches side by side."""
        session = self.session  # exports and loads first if needed
        if self.workers <= 1:
            return session
        if self._bulk is None:
            with self._lock:
                if self._bulk is None:
                    self._bulk = _session(self.onnx_path or Path(), threads=1)
        return self._bulk

    def _run(
        self, session: Any, encs: Sequence[Any], spans: Sequence[Spans] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One batch: sentence vectors, plus per-span vectors when ``spans`` is given."""
        feeds = _pad(encs, self._pad_id)
        hidden = session.run([OUTPUT_NAME], feeds)[0]
        vecs = _pool(hidden, feeds["attention_mask"], self.pooling, self.normalize)
        if spans is None:
            return vecs, []
        # late chunking exactly as the torch embedder: token vectors = last hidden state,
        # tokens located by their character offsets (special tokens have end == start)
        sent = [
            pool_spans(
                hidden[j, : len(e.ids)], np.asarray(e.offsets, dtype=np.int64), spans[j], vecs[j]
            )
            for j, e in enumerate(encs)
        ]
        return vecs, sent

    def _encode(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans] | None,
        progress: BatchProgress | None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        session = self.session
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        sent: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        # tokenise a slice at a time, sort it by token count so each batch pads little, run
        # the batches, and write every vector back to its original row
        step = max(self.batch_size * 16, 1024)
        for start in range(0, len(texts), step):
            part = [str(t) for t in texts[start : start + step]]
            if self._lower:
                part = [t.lower() for t in part]
            encs = self._tokenizer.encode_batch(part)
            order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
            parallel = self.workers > 1 and len(order) > BULK_BATCH
            # several single-threaded batches at once beat one two-threaded batch at a time
            # (no per-operator barrier between the cores; +10-30% measured on 2 cores)
            bs = min(self.batch_size, BULK_BATCH) if parallel else self.batch_size
            batches = [order[b : b + bs] for b in range(0, len(order), bs)]
            groups = [[encs[i] for i in idx] for idx in batches]
            span_groups = [
                None if spans is None else [spans[start + i] for i in idx] for idx in batches
            ]
            if parallel:
                bulk = self.bulk_session
                with ThreadPoolExecutor(self.workers, thread_name_prefix="onnx-embed") as pool:
                    results: Iterator[tuple[np.ndarray, list[np.ndarray]]] = pool.map(
                        self._run, [bulk] * len(groups), groups, span_groups
                    )
                    self._collect(start, batches, results, out, sent, progress)
            else:
                results = (
                    self._run(session, g, sg) for g, sg in zip(groups, span_groups, strict=True)
                )
                self._collect(start, batches, results, out, sent, progress)
        return out, sent

    @staticmethod
    def _collect(
        start: int,
        batches: list[list[int]],
        results: Iterator[tuple[np.ndarray, list[np.ndarray]]],
        out: np.ndarray,
        sent: list[np.ndarray],
        progress: BatchProgress | None,
    ) -> None:
        for idx, (vecs, spans) in zip(batches, results, strict=True):
            out[[start + i for i in idx]] = vecs
            for i, v in zip(idx, spans, strict=False):  # spans is empty for plain embed()
                sent[start + i] = v
            if progress:
                progress(len(idx))

    def embed(self, texts: Sequence[str], *, progress: BatchProgress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if (torch := self._torch()) is not None:
            return torch.embed(texts, progress=progress)
        return self._encode(texts, None, progress)[0]

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        *,
        progress: BatchProgress | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus one vector per character span of each passage (its sentences),
        mean-pooled from the same forward pass's token vectors and normalised."""
        if len(spans) != len(texts):
            raise ValueError("embed_passages: one list of spans per text")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        if (torch := self._torch()) is not None:
            return torch.embed_passages(texts, spans, progress=progress)
        return self._encode(texts, spans, progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
