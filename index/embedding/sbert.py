"""The sentence-transformers embedder: the real model, loaded lazily on first use.

Token counting (for chunking) uses the model's ``tokenizer.json`` and never loads torch.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from index.config import EmbeddingSettings
from index.embedding.base import (
    BatchProgress,
    Spans,
    model_name,
    pool_spans,
    resolve_model_path,
)
from index.errors import ConfigError

log = logging.getLogger(__name__)


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
