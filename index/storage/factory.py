"""The backend factory: ``[store] backend`` -> the :class:`~index.storage.base.Backend` to open.

Each backend is imported only when configured, so that an optional backend's packages (pymilvus,
milvus-lite) load only for the processes that use it, and the backends never import each other.
A new backend is one entry in :data:`BACKENDS` (a function that imports its class).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from index.errors import ConfigError

if TYPE_CHECKING:
    from index.config import Settings
    from index.storage.base import Backend

Opener = Callable[["Settings"], "Backend"]


def _milvus() -> Opener:
    try:
        from index.storage.milvus import MilvusBackend
    except ImportError as e:  # pymilvus (or milvus-lite) not installed
        raise ConfigError(
            f'store.backend = "milvus" needs the optional Milvus packages ({e.name or e}): '
            'pip install "newsdesk[milvus]" (or `pip install pymilvus milvus-lite`)'
        ) from None
    return MilvusBackend


# name -> a function importing its backend class. "faiss" is None for now: the pipeline itself
# runs the SQLite + FAISS files of the data dir (open_backend returns None for it).
BACKENDS: dict[str, Callable[[], Opener] | None] = {
    "faiss": None,
    "milvus": _milvus,
}


def open_backend(settings: Settings) -> Backend | None:
    """The configured backend; ``None`` for the built-in FAISS one (the pipeline's own files)."""
    name = settings.store.backend
    if name not in BACKENDS:
        raise ConfigError(f"store.backend must be one of {', '.join(BACKENDS)} (got {name!r})")
    load = BACKENDS[name]
    return None if load is None else load()(settings)
