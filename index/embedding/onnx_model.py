"""The ONNX graph's contract and the small pieces both the exporter and the runtime need.

The model folder's description (``modules.json``, the Transformer module's folder), the
tokenizer, padding a batch, one ONNX Runtime session and pooling its last hidden state. The
exporter (``onnx_export``) runs these to probe a fresh export; the embedder (``onnx_runtime``)
runs them for every batch. Keeping them here lets the runtime import the exporter without a cycle.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ConfigError

log = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
SPIN = "0"  # onnxruntime's session.intra_op.allow_spinning


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
