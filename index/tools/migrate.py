"""``newsdesk migrate --to milvus``: copy a FAISS index into Milvus without re-embedding.

The source backend exports the index as stored (``LocalBackend.export``: the passage vectors
read back from the current generation's FAISS index, the article text, passage offsets and
sentence vectors from SQLite) and the target publishes it as one generation. Passage ids are
kept, so the migrated index gives the same answers with the same passage ids. The embedding
model is never loaded.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path

from index.config import Settings
from index.errors import ConfigError, NewsdeskError
from index.models import Progress

log = logging.getLogger(__name__)

META_KEYS = (
    "schema_version",
    "model",
    "dimension",
    "chunk_max_tokens",
    "chunk_overlap",
    "chunker_version",
)


@dataclasses.dataclass
class MigrateReport:
    articles: int
    passages: int
    target: str
    seconds: float
    embedded: int = 0  # texts embedded: always 0, the vectors are copied

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def target_settings(settings: Settings, to: str, uri: str | None) -> Settings:
    """The settings of the migration target: the same, with ``[store]`` switched to ``to``.

    One rule for a relative Milvus Lite path, here as in the config file: it is inside the
    data dir. ``--uri milvus.db`` then names the same file as ``uri = "milvus.db"`` -- were
    it read from the current directory, the config would open another, empty store."""
    if to != "milvus":
        raise ConfigError(f"newsdesk migrate can copy to milvus only (got {to!r})")
    out = copy.deepcopy(settings)
    out.store.backend = "milvus"
    if uri is not None:
        uri = uri.strip()
        if uri.endswith(".db"):  # relative: inside the data dir, as store.uri in the config
            uri = str((Path(settings.data_dir) / Path(uri).expanduser()).resolve())
        elif uri.split("://")[0] not in ("http", "https", "tcp"):
            raise ConfigError(
                f"--uri must be a local path ending in .db (Milvus Lite) or http://host:19530 "
                f"(got {uri!r})"
            )
        out.store.uri = uri
    return out


def migrate(
    settings: Settings, to: str, uri: str | None = None, progress: Progress | None = None
) -> MigrateReport:
    """Copy the FAISS index in ``settings.data_dir`` to the ``to`` backend at ``uri``: the
    source backend's export, published by the target as one full generation."""
    from index.storage.local import LocalBackend
    from index.storage.milvus import MilvusBackend

    t0 = time.perf_counter()
    if settings.store.backend != "faiss":
        raise ConfigError(
            "newsdesk migrate copies the FAISS index of the data dir: run it with "
            '[store] backend = "faiss" (the target is --to and --uri)'
        )
    target = target_settings(settings, to, uri)
    source = LocalBackend(settings)
    try:
        data = source.export(progress)
    finally:
        source.close()

    backend = MilvusBackend(target)
    try:
        with backend.writer():
            if backend.read_state().get("generation"):
                raise NewsdeskError(
                    f"{backend.where} already holds a newsdesk index (collections "
                    f"{target.store.collection_prefix}_*): migrate into an empty one, or set "
                    "another store.collection_prefix"
                )
            backend.publish(
                replace=[],
                planned=data.planned,
                vectors=data.vectors,
                sentences=data.sentences,
                texts=data.texts,
                full=True,
                delete_articles=False,
                meta={k: data.meta[k] for k in META_KEYS if k in data.meta},
                previous=None,
                progress=progress,
                ids=data.ids,
            )
            where = backend.where
    finally:
        backend.close()
    return MigrateReport(len(data.planned), len(data.ids), where, time.perf_counter() - t0)
