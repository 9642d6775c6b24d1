"""``newsdesk migrate --to milvus``: copy a FAISS index into Milvus without re-embedding.

The passage vectors are read back from the current generation's FAISS index
(``IndexIDMap2``/IVF ``reconstruct``), the article text, passage offsets and sentence vectors
from SQLite; passage ids are kept, so the migrated index gives the same answers with the same
passage ids. The embedding model is never loaded.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.config import Settings
from index.errors import ConfigError, EmptyIndexError, IndexCorruptError, NewsdeskError
from index.models import Chunk, Document
from index.storage.sqlite import Store

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

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
    """Copy the FAISS index in ``settings.data_dir`` to the ``to`` backend at ``uri``."""
    from index.pipeline import GEN_DIR, manifest_problems
    from index.storage.faiss_index import VectorIndex
    from index.storage.milvus import MilvusBackend

    t0 = time.perf_counter()
    if settings.store.backend != "faiss":
        raise ConfigError(
            "newsdesk migrate copies the FAISS index of the data dir: run it with "
            '[store] backend = "faiss" (the target is --to and --uri)'
        )
    target = target_settings(settings, to, uri)
    source = Store(Path(settings.data_dir))
    if not source.exists():
        raise EmptyIndexError(f"there is no index to migrate in {settings.data_dir}")
    try:
        with source.read():
            meta = source.meta()
            gen = source.generation()
            if not gen or not meta.get("dimension"):
                raise EmptyIndexError(f"there is no index to migrate in {settings.data_dir}")
            gen_dir = Path(settings.data_dir) / GEN_DIR / f"{gen:08d}"
            damaged = manifest_problems(gen_dir)
            if damaged:
                raise IndexCorruptError(
                    f"files of the index in {gen_dir} are damaged ({'; '.join(damaged[:3])}); "
                    "run `newsdesk reindex` before migrating"
                )
            dim = int(meta["dimension"])
            vectors = VectorIndex.load(gen_dir / "vectors.faiss", dim)
            if vectors.quantized:
                log.warning("the FAISS index is 8-bit: migrating its decoded vectors")
            if progress:
                progress("reading vectors", 0, 1)
            vec_ids, vecs = vectors.all_vectors()
            if progress:
                progress("reading vectors", 1, 1)
            by_id = {int(i): k for k, i in enumerate(vec_ids.tolist())}
            rows = source.conn.execute(
                "SELECT id, article_id, ordinal, start, end, sentences FROM chunks "
                "ORDER BY article_id, ordinal"
            ).fetchall()
            articles = list(source.all_articles())
    finally:
        source.close()
    if len(rows) != len(by_id) or any(r[0] not in by_id for r in rows):
        raise IndexCorruptError(
            f"the FAISS index in {gen_dir} does not match the database ({len(by_id)} vectors, "
            f"{len(rows)} passages); run `newsdesk check`"
        )
    chunks_of: dict[str, list[tuple[int, Chunk, bytes]]] = {}
    for cid, aid, ordinal, start, end, blob in rows:
        chunks_of.setdefault(aid, []).append(
            (int(cid), Chunk(aid, int(ordinal), int(start), int(end), ""), blob or b"")
        )
    planned: list[tuple[Document, list[Chunk]]] = []
    ids: list[int] = []
    sentences: list[bytes] = []
    texts: list[str] = []
    order: list[int] = []
    for a in articles:
        doc = Document(a.source, a.title, a.text, a.url, a.published)  # same id and hash
        chunks = []
        for cid, ch, blob in chunks_of.get(a.id, []):
            ch = dataclasses.replace(ch, text=a.text[ch.start : ch.end])
            chunks.append(ch)
            ids.append(cid)
            sentences.append(blob)
            texts.append(f"{a.title}\n{ch.text}")
            order.append(by_id[cid])
        planned.append((doc, chunks))
    vec_rows = vecs[np.asarray(order, dtype=np.int64)] if order else vecs[:0]

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
                planned=planned,
                vectors=vec_rows,
                sentences=sentences,
                texts=texts,
                full=True,
                delete_articles=False,
                meta={k: meta[k] for k in META_KEYS if k in meta},
                previous=None,
                progress=progress,
                ids=ids,
            )
            where = backend.where
    finally:
        backend.close()
    return MigrateReport(len(articles), len(ids), where, time.perf_counter() - t0)
