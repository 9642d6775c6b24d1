"""``make_embedder``: the one place that knows every embedder (none of them imports it)."""

from __future__ import annotations

import logging

from index.config import EmbeddingSettings
from index.embedding.base import Embedder, resolve_model_path
from index.embedding.hashing import HashEmbedder
from index.embedding.sbert import SentenceTransformerEmbedder
from index.errors import ConfigError

log = logging.getLogger(__name__)


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    if settings.model == "hash":  # test/dry-run embedder, documented in config.example.toml
        return HashEmbedder()
    backend = getattr(settings, "backend", "torch")
    # no model there is an error for every backend: say so, not "using torch instead" first
    resolve_model_path(settings.model)
    if backend in ("onnx", "onnx-int8"):
        from index.embedding.onnx_runtime import OnnxEmbedder

        try:
            return OnnxEmbedder(settings, quantize=backend == "onnx-int8")
        except ConfigError as e:
            if backend == "onnx-int8":
                raise
            # "onnx" is the torch model's exact numbers, so torch serves the same index
            log.warning("%s; using the torch backend instead", e)
    return SentenceTransformerEmbedder(settings)
