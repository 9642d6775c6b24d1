"""The learned answer-sentence scorer: a small cross-encoder that reads (question, sentence) and
says how likely the sentence contains the answer. Shipped as int8 ONNX inside the package
(``index/data/reranker/``), run with ONNX Runtime and the fast tokenizer: no torch, no download.

Why a cross-encoder: retrieval finds the right passage for ~96 % of news questions, but the
old sentence score (cosine + idf coverage) picked the answering sentence only about half the
time. A cross-encoder sees the question and the sentence together (answer type: "when" wants a
date, "who" a name), and its output is a probability that does not depend on what else is
indexed, so abstention built on it gives the same verdict for an article indexed alone or among
thousands. The model is trained by ``newsdesk train-reranker`` (index/tools/train_reranker.py); its
card is ``index/data/reranker/MODEL_CARD.md``.

Input, the same at training and at question time (:func:`pair_text`): the question, then
``title | sentence | previous sentence`` truncated to ``max_len`` tokens from the end (the
context goes first when space runs out).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).parent.parent / "data" / "reranker"
MODEL_FILE = "model.onnx"
META_FILE = "reranker.json"
TOKENIZER_FILE = "tokenizer.json"


def pair_text(title: str, sentence: str, context: str = "") -> str:
    """The second segment the cross-encoder reads for one candidate sentence."""
    title = " ".join(title.split())[:200]
    sentence = " ".join(sentence.split())
    context = " ".join(context.split())
    out = f"{title} | {sentence}" if title else sentence
    return f"{out} | {context}" if context else out


class Scorer(Protocol):
    """Scores candidate sentences for a question: logits, higher = more likely an answer."""

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray: ...


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass(frozen=True)
class RerankerInfo:
    max_len: int
    layers: int
    threshold: float  # abstain when sigmoid(best logit) is below this (calibrated on DEV)
    version: str
    extra: dict[str, Any]


def read_info(model_dir: Path) -> RerankerInfo:
    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    return RerankerInfo(
        max_len=int(meta.get("max_len", 96)),
        layers=int(meta.get("layers", 0)),
        threshold=float(meta.get("threshold", 0.5)),
        version=str(meta.get("version", "?")),
        extra=meta,
    )


class OnnxReranker:
    """The shipped cross-encoder on ONNX Runtime (thread-safe; sessions are)."""

    def __init__(self, model_dir: Path | str | None = None, threads: int = 0) -> None:
        self.dir = Path(model_dir) if model_dir else DEFAULT_DIR
        missing = [
            f for f in (MODEL_FILE, META_FILE, TOKENIZER_FILE) if not (self.dir / f).is_file()
        ]
        if missing:
            raise ConfigError(
                f"answer.reranker_path: {self.dir} has no {', '.join(missing)} "
                '(run `newsdesk train-reranker --out DIR`, or set answer.reranker = "none")'
            )
        self.info = read_info(self.dir)
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._threads = threads

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(self.dir / TOKENIZER_FILE))
                tok.enable_truncation(self.info.max_len, strategy="only_second")
                tok.enable_padding(pad_id=0, pad_token="[PAD]")
                opts = ort.SessionOptions()
                opts.log_severity_level = 3
                if self._threads:
                    opts.intra_op_num_threads = self._threads
                sess = ort.InferenceSession(
                    str(self.dir / MODEL_FILE), opts, providers=["CPUExecutionProvider"]
                )
                self._inputs = {i.name for i in sess.get_inputs()}
                self._tokenizer, self._session = tok, sess
        return self._session, self._tokenizer

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        sess, tok = self._load()
        encs = tok.encode_batch([(question, t) for t in texts])
        feed = {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }
        feed = {k: v for k, v in feed.items() if k in self._inputs}
        (logits,) = sess.run(None, feed)
        return np.asarray(logits, dtype=np.float32).reshape(-1)


_CACHE: dict[tuple[str, int], OnnxReranker] = {}
_CACHE_LOCK = threading.Lock()


def load(model_dir: Path | str | None = None, threads: int = 0) -> OnnxReranker:
    """One shared reranker per model folder (loading the session costs ~0.1 s)."""
    key = (str(Path(model_dir) if model_dir else DEFAULT_DIR), threads)
    with _CACHE_LOCK:
        r = _CACHE.get(key)
        if r is None:
            r = _CACHE[key] = OnnxReranker(model_dir, threads)
        return r
