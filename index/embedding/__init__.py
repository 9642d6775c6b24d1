"""Text to unit vectors: the protocol and pooling (base), the factory, sentence-transformers
(sbert), ONNX Runtime (onnx_*) and the deterministic hash embedder of the tests (hashing).

``Embedder`` (the protocol) and ``make_embedder`` (the factory) are what the rest of the engine
needs; the implementations live in ``sbert``, ``hashing`` and ``onnx_runtime``.
"""

from index.embedding.base import BatchProgress, Embedder, Spans
from index.embedding.factory import make_embedder

__all__ = ["BatchProgress", "Embedder", "Spans", "make_embedder"]
