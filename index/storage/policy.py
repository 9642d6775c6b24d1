"""Which vector index a backend builds for a given number of passages, from the config.

Shared by both backends (FAISS files and Milvus collections choose flat or ANN by the same
rule), so it lives apart from either: the backends do not import each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Family = Literal["flat", "ivf", "hnsw"]

HYSTERESIS = 0.9  # an auto ANN index goes back to flat below this share of the threshold
SQ_MIN_TRAIN = 1_000  # vectors needed to train 8-bit ranges; fewer: stay float


@dataclass(frozen=True)
class IndexPolicy:
    """Which index to build for a given size, and its search parameters (from the config)."""

    index_type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    ann_threshold: int = 20_000
    quantize: Literal["none", "sq8"] = "none"
    ivf_nprobe: int = 16
    hnsw_ef_search: int = 64
    hnsw_m: int = 32
    hnsw_ef_construction: int = 40

    @classmethod
    def from_settings(cls, r: Any) -> IndexPolicy:
        """From ``RetrievalSettings`` (any object with the same attribute names)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{n: getattr(r, n) for n in names if hasattr(r, n)})

    def family(self, n: int, current: str | None = None) -> Family:
        if self.index_type != "auto":
            return self.index_type
        if current in ("ivf", "hnsw") and n >= self.ann_threshold * HYSTERESIS:
            return current  # type: ignore[return-value]
        return "ivf" if n >= self.ann_threshold else "flat"

    def sq8(self, n: int) -> bool:
        return self.quantize == "sq8" and n >= SQ_MIN_TRAIN
