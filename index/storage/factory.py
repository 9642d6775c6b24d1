"""The backend factory: ``[store] backend`` -> the :class:`~index.storage.base.Backend` to open.

The backends never import each other, and an optional backend's packages (pymilvus, milvus-lite)
load only in the processes configured for it: its entry in :data:`BACKENDS` is a function that
imports it on demand. A backend without optional packages is its class (``"name": TheBackend``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from index.errors import ConfigError

if TYPE_CHECKING:
    from index.config import Settings
    from index.storage.base import Backend

Opener = Callable[["Settings"], "Backend"]


def _milvus(settings: Settings) -> Backend:
    try:
        from index.storage.milvus import MilvusBackend
    except ImportError as e:  # pymilvus (or milvus-lite) not installed
        raise ConfigError(
            f'store.backend = "milvus" needs the optional Milvus packages ({e.name or e}): '
            'pip install "newsdesk[milvus]" (or `pip install pymilvus milvus-lite`)'
        ) from None
    return MilvusBackend(settings)


def _local(settings: Settings) -> Backend:
    from index.storage.local import LocalBackend

    return LocalBackend(settings)


# "faiss": SQLite + per-generation FAISS and BM25 files in the data dir (the default)
BACKENDS: dict[str, Opener] = {
    "faiss": _local,
    "milvus": _milvus,
}


def open_backend(settings: Settings) -> Backend:
    """The configured backend, opened (nothing is read or written until it is used)."""
    name = settings.store.backend
    if name not in BACKENDS:
        raise ConfigError(f"store.backend must be one of {', '.join(BACKENDS)} (got {name!r})")
    return BACKENDS[name](settings)
