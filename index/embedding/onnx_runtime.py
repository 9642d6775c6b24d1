"""The ONNX Runtime embedder: the sentence-transformers encoder with less overhead.

The export itself (recipe, cache, freshness, int8 quantisation) is ``onnx_export``.

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

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from index.config import EmbeddingSettings
from index.embedding.base import BatchProgress, Spans, model_name, pool_spans, resolve_model_path
from index.embedding.onnx_export import (
    _file_name,
    _wanted_meta,
    export_onnx,
    is_fresh,
)
from index.embedding.onnx_model import (
    OUTPUT_NAME,
    _load_tokenizer,
    _module_kind,
    _modules,
    _pad,
    _pool,
    _read_json,
    _session,
    transformer_dir,
)
from index.embedding.sbert import SentenceTransformerEmbedder
from index.errors import ConfigError

log = logging.getLogger(__name__)

INT8_SUFFIX = "+onnx-int8"
# batch size when batches run side by side (small batches balance the workers' loads)
BULK_BATCH = 16


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newsdesk" / "onnx"


def _slug(model_dir: Path) -> str:
    resolved = str(model_dir.resolve())
    digest = hashlib.sha1(resolved.encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", model_dir.resolve().name).strip("-") or "model"
    return f"{stem}-{digest}"


class OnnxEmbedder:
    """The sentence-transformers model run by ONNX Runtime; batched, L2-normalised float32.

    Same protocol as :class:`index.embedding.sbert.SentenceTransformerEmbedder` (``embed``,
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
