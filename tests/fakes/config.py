"""The deterministic, model-free configuration of the unit tests: the hash embedder.

Shared by conftest's fixtures and the helpers in tests/fakes/ (which never import conftest).
"""

from __future__ import annotations

HASH_MIN_CONFIDENCE = 0.15
# unit tests: the hash embedder with the older sentence score (deterministic, model-free); the
# learned reranker has its own tests (tests/engine/test_rerank.py) and runs in the real-model ones
HASH_RERANKER = "none"
HASH_CONFIG = (
    f'[embedding]\nmodel = "hash"\n[answer]\nmin_confidence = {HASH_MIN_CONFIDENCE}\n'
    f'reranker = "{HASH_RERANKER}"\n'
)
