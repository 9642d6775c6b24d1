"""The built-in backend (``[store] backend = "faiss"``): SQLite + per-generation FAISS/BM25 files.

Storage layout in the data dir::

    newsdesk.db                 SQLite (WAL): meta, articles (full text), chunks (offsets)
    generations/00000007/       vectors.faiss + lexical/ + manifest.json for generation 7
    write.lock                  the single-writer file lock

A write builds the next generation's files beside the current ones, then commits the SQLite
changes together with ``meta.generation``: that commit is the atomic switch. Readers (this
process or others) keep answering from the generation they loaded and pick up the new one on
their next question. One machine; one writer through the file lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from filelock import FileLock
from filelock import Timeout as LockTimeout

from index.errors import (
    ConfigError,
    DiskFullError,
    EmptyIndexError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    NewsdeskError,
)
from index.models import Chunk, Document, Progress
from index.sqlite_util import disk_full_reason
from index.storage.base import Snapshot, StoreReader
from index.storage.faiss_index import VectorIndex
from index.storage.lexical import LexicalIndex
from index.storage.manifest import fsync_dir, fsync_tree, manifest_problems, write_manifest
from index.storage.policy import IndexPolicy
from index.storage.sqlite import (
    DB_ADVICE,
    SCHEMA_VERSION,
    Store,
    database_error,
    now_iso,
)
from index.text import first_line

if TYPE_CHECKING:
    from index.config import Settings

log = logging.getLogger(__name__)

GEN_DIR = "generations"


class GenerationGone(IndexCorruptError):
    """The generation's folder is missing (damaged, or a writer elsewhere replaced it twice)."""


def check_meta(meta: dict[str, str], expected: Callable[[], dict[str, str]], where: Path) -> None:
    """An index built with other settings (model, chunking, storage format) is refused with a
    message that says to re-index: vectors of two models are never mixed. ``expected`` is only
    called for an index that has a model (a new, empty one matches anything)."""
    if not meta.get("model"):
        return  # a new, empty index
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise IndexMismatchError(
            f"the index in {where} uses storage format "
            f"{meta.get('schema_version')}, this newsdesk uses {SCHEMA_VERSION}: "
            "run `newsdesk reindex`"
        )
    diffs = [
        f"{k} {meta.get(k)!r} -> {v!r}"
        for k, v in expected().items()
        if k != "schema_version" and meta.get(k) != v
    ]
    if diffs:
        raise IndexMismatchError(
            f"the index in {where} was built with other settings ("
            + "; ".join(diffs)
            + "): run `newsdesk reindex` to rebuild it from the stored articles"
        )


def indexed_articles(data_dir: Path) -> int:
    """Articles of a FAISS index in ``data_dir`` (0 when there is none, or none usable)."""
    local = Store(data_dir)
    try:
        return local.counts()[0] if local.exists() and local.generation() else 0
    except (NewsdeskError, sqlite3.Error):  # not a usable FAISS index: nothing expected
        return 0
    finally:
        local.close()


def expect_index(store: StoreReader, data_dir: Path, where: str) -> None:
    """``[store]`` names a backend (``store``, at ``where``) that holds no index while the
    data dir holds a FAISS one: store.uri almost certainly points elsewhere than meant (Milvus
    Lite would make a new, empty file there). An error, before anything reads or writes it."""
    articles = indexed_articles(data_dir)
    if articles and not store.generation():
        raise ConfigError(
            f"store.uri: {where} holds no newsdesk index, but the data dir {data_dir} "
            f"has a FAISS index of {articles:,} article{'s' if articles != 1 else ''}: "
            "copy it with `newsdesk migrate --to milvus`, or correct store.uri (a relative "
            ".db path is inside the data dir)"
        )


@dataclass
class Export:
    """Everything an index holds, ready for another backend's ``publish`` (``newsdesk migrate``):
    passage ids, vectors and sentence vectors as stored, so nothing is re-embedded."""

    meta: dict[str, str]
    planned: list[tuple[Document, list[Chunk]]]
    ids: list[int]
    vectors: np.ndarray  # one row per id, in the order of ``ids``
    sentences: list[bytes]
    texts: list[str]


class LocalBackend:
    """SQLite rows + FAISS/BM25 files per generation in the data dir, behind the same
    interface as the Milvus backend (:class:`index.storage.base.Backend`)."""

    name = "faiss"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self._store = Store(self.data_dir)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def where(self) -> str:
        return str(self.data_dir)

    @property
    def index_policy(self) -> IndexPolicy:
        """Vector index type by size and its search parameters (``[retrieval]`` settings)."""
        return IndexPolicy.from_settings(self.settings.retrieval)

    def close(self) -> None:
        self._store.close()

    def gen_path(self, gen: int) -> Path:
        return self.data_dir / GEN_DIR / f"{gen:08d}"

    # -- snapshots ---------------------------------------------------------------------------
    def load_snapshot(self, generation: int, dimension: int, previous: Snapshot | None) -> Snapshot:
        """Generation ``generation``'s files, checked against their manifest and the database
        (the caller has checked the meta)."""
        gen = generation
        if gen == 0:
            return Snapshot(0, VectorIndex.empty(dimension), LexicalIndex.build([], []))
        path = self.gen_path(gen)
        if not path.is_dir():
            raise GenerationGone(
                f"generation {gen} of the index is missing from {path.parent}; "
                "run `newsdesk reindex` to rebuild it from the stored articles"
            )
        damaged = manifest_problems(path)
        if damaged:
            raise IndexCorruptError(
                f"files of the index in {path} are damaged ({'; '.join(damaged[:3])}); "
                "run `newsdesk reindex` to rebuild them from the stored articles"
            )
        vectors = VectorIndex.load(path / "vectors.faiss", dimension, self.index_policy)
        try:
            lexical = LexicalIndex.load(path / "lexical")
        except Exception as e:
            raise IndexCorruptError(
                f"the keyword index in {path} is unreadable ({first_line(e, 160)}); "
                "run `newsdesk reindex`"
            ) from e
        passages = self._store.counts()[1]
        if not len(vectors) == len(lexical) == passages or not np.array_equal(
            np.sort(vectors.ids()), np.sort(lexical.ids)
        ):
            raise IndexCorruptError(
                f"the index in {path} does not match the database ({len(vectors)} vectors, "
                f"{len(lexical)} keyword entries, {passages} passages); run `newsdesk reindex`"
            )
        log.info("loaded generation %d: %d vectors", gen, len(vectors))
        return Snapshot(gen, vectors, lexical)

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, wait: float | None = None) -> Iterator[None]:
        """One process on this data dir: the file lock ``write.lock`` (waiting ``wait`` seconds,
        default ``NEWSDESK_LOCK_TIMEOUT`` or 600), then the schema and clean-up of old files."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.data_dir / "write.lock"))
        timeout = float(os.environ.get("NEWSDESK_LOCK_TIMEOUT", "600")) if wait is None else wait
        try:
            try:
                lock.acquire(timeout=0)
            except LockTimeout:
                log.warning("another newsdesk process is updating %s; waiting", self.data_dir)
                try:
                    lock.acquire(timeout=timeout)
                except LockTimeout:
                    raise IndexBusyError(
                        f"another newsdesk process is updating {self.data_dir}; "
                        "try again when it finishes"
                    ) from None
        except OSError as e:  # creating write.lock on a full disk
            full_reason = disk_full_reason(e, self.data_dir)
            if full_reason is None:
                raise
            raise DiskFullError(str(self.data_dir / "write.lock"), full_reason) from e
        try:
            self._store.init_schema()
            self._cleanup_generations()
            yield
        finally:
            lock.release()

    def _generation_to_replace(self, full: bool) -> int:
        """The current generation; for a full re-index of an index whose ``meta.generation``
        is damaged, the newest generation folder instead (the re-index repairs the meta)."""
        try:
            return self._store.generation()
        except IndexCorruptError:
            if not full:
                raise
            root = self.data_dir / GEN_DIR
            names = [p.name for p in root.iterdir()] if root.is_dir() else []
            return max((int(n) for n in names if n.isdigit()), default=0)

    def _committed_generation(self) -> int | None:
        """``meta.generation`` as committed, read afresh (None when it cannot be read)."""
        try:
            return self._store.generation()
        except (NewsdeskError, sqlite3.Error):
            return None

    def _cleanup_generations(self, keep: int | None = None) -> None:
        root = self.data_dir / GEN_DIR
        if not root.is_dir():
            return
        try:
            current = self._store.generation() if keep is None else keep
        except IndexCorruptError:
            return  # a damaged meta.generation: nothing is removed until a re-index
        for p in root.iterdir():
            name = p.name.split(".")[0]
            if p.name.endswith(".tmp") or not name.isdigit() or int(name) < current - 1:
                shutil.rmtree(p, ignore_errors=True)

    def publish(
        self,
        *,
        replace: Sequence[str],
        planned: Sequence[tuple[Document, Sequence[Chunk]]],
        vectors: np.ndarray,
        sentences: Sequence[bytes],
        texts: Sequence[str],
        full: bool,
        delete_articles: bool,
        meta: dict[str, str],
        previous: Snapshot | None,
        progress: Progress | None = None,
    ) -> Snapshot:
        """Write the changes and the next generation; the SQLite commit switches atomically.

        ``previous``: the current snapshot (None for a full re-index), whose vectors and BM25
        tokens are updated rather than rebuilt; ``texts``: "title\\npassage" of each new chunk.
        """
        store = self._store
        old_gen = self._generation_to_replace(full)
        base = (
            VectorIndex.empty(int(meta["dimension"]))
            if previous is None
            else cast(VectorIndex, previous.vectors).copy()
        )
        removed: list[int] = []
        new_gen = old_gen + 1
        final = self.gen_path(new_gen)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        when = now_iso()
        try:
            with store.transaction() as c:
                if full:
                    c.execute("DELETE FROM chunks")
                elif replace:
                    old_ids = store.chunk_ids_of(c, list(replace))
                    removed = old_ids
                    base.remove(np.asarray(old_ids, dtype=np.int64))
                    c.executemany("DELETE FROM chunks WHERE article_id=?", [(a,) for a in replace])
                    if delete_articles:
                        c.executemany("DELETE FROM articles WHERE id=?", [(a,) for a in replace])
                all_chunks: list[Chunk] = []
                for doc, chunks in planned:
                    store.upsert_article(c, doc, when)
                    all_chunks.extend(chunks)
                ids = store.insert_chunks(c, all_chunks, sentences)
                if ids:
                    base.add(np.asarray(ids, dtype=np.int64), vectors)
                # flat / IVF / HNSW by size (retrieval.index_type): a rebuild when a threshold is
                # crossed, else the same index
                base = base.adapt(self.index_policy, progress)
                if progress:
                    progress("keyword index", 0, 1)
                # BM25: the previous generation's tokens, minus the removed passages, plus the new
                # ones tokenised (the same index as one built from all the texts, faster)
                lexical = None
                if previous is not None:
                    lexical = previous.lexical.updated(removed, ids, list(texts))
                    db_ids = np.fromiter(
                        (r[0] for r in c.execute("SELECT id FROM chunks ORDER BY id")), np.int64
                    )
                    if lexical is not None and not np.array_equal(lexical.ids, db_ids):
                        log.warning("keyword index out of step with the database; rebuilding it")
                        lexical = None
                if lexical is None:
                    lex_ids, lex_texts = store.passage_texts(c)
                    lexical = LexicalIndex.build(lex_ids, lex_texts)
                if len(base) != len(lexical):
                    raise IndexCorruptError(
                        f"internal error: {len(base)} vectors for {len(lexical)} passages; "
                        "run `newsdesk reindex`"
                    )
                tmp.mkdir(parents=True)
                base.save(tmp / "vectors.faiss")
                lexical.save(tmp / "lexical")
                write_manifest(tmp)
                fsync_tree(tmp)
                os.replace(tmp, final)
                fsync_dir(final.parent)
                values: dict[str, object] = {**meta, "generation": new_gen, "updated_at": when}
                values["index_type"] = base.kind
                store.set_meta(c, values)
        except BaseException as e:
            # nothing was committed: the old generation stays current; drop what was written
            shutil.rmtree(tmp, ignore_errors=True)
            if final.exists() and self._committed_generation() != new_gen:
                shutil.rmtree(final, ignore_errors=True)
            full_reason = disk_full_reason(e, self.data_dir)
            if full_reason is not None:
                raise DiskFullError(str(self.data_dir), full_reason) from e
            raise
        snap = Snapshot(new_gen, base, lexical)
        self._cleanup_generations(keep=new_gen)
        if progress:
            progress("keyword index", 1, 1)
        return snap

    # -- export (newsdesk migrate) -----------------------------------------------------------
    def export(self, progress: Progress | None = None) -> Export:
        """The current generation as stored: vectors read back from FAISS (``reconstruct``),
        article text, passage offsets and sentence vectors from SQLite. Never embeds."""
        store = self._store
        if not store.exists():
            raise EmptyIndexError(f"there is no index to migrate in {self.data_dir}")
        with store.read():
            meta = store.meta()
            gen = store.generation()
            if not gen or not meta.get("dimension"):
                raise EmptyIndexError(f"there is no index to migrate in {self.data_dir}")
            gen_dir = self.gen_path(gen)
            damaged = manifest_problems(gen_dir)
            if damaged:
                raise IndexCorruptError(
                    f"files of the index in {gen_dir} are damaged ({'; '.join(damaged[:3])}); "
                    "run `newsdesk reindex` before migrating"
                )
            vectors = VectorIndex.load(gen_dir / "vectors.faiss", int(meta["dimension"]))
            if vectors.quantized:
                log.warning("the FAISS index is 8-bit: migrating its decoded vectors")
            if progress:
                progress("reading vectors", 0, 1)
            vec_ids, vecs = vectors.all_vectors()
            if progress:
                progress("reading vectors", 1, 1)
            by_id = {int(i): k for k, i in enumerate(vec_ids.tolist())}
            rows = store.conn.execute(
                "SELECT id, article_id, ordinal, start, end, sentences FROM chunks "
                "ORDER BY article_id, ordinal"
            ).fetchall()
            articles = list(store.all_articles())
        if len(rows) != len(by_id) or any(r[0] not in by_id for r in rows):
            raise IndexCorruptError(
                f"the FAISS index in {gen_dir} does not match the database ({len(by_id)} "
                f"vectors, {len(rows)} passages); run `newsdesk check`"
            )
        chunks_of: dict[str, list[tuple[int, Chunk, bytes]]] = {}
        for cid, aid, ordinal, start, end, blob in rows:
            chunks_of.setdefault(aid, []).append(
                (int(cid), Chunk(aid, int(ordinal), int(start), int(end), ""), blob or b"")
            )
        out = Export(meta, [], [], vecs[:0], [], [])
        order: list[int] = []
        for a in articles:
            doc = Document(a.source, a.title, a.text, a.url, a.published, tags=a.tags)  # same hash
            chunks = []
            for cid, ch, blob in chunks_of.get(a.id, []):
                ch = dataclasses.replace(ch, text=a.text[ch.start : ch.end])
                chunks.append(ch)
                out.ids.append(cid)
                out.sentences.append(blob)
                out.texts.append(f"{a.title}\n{ch.text}")
                order.append(by_id[cid])
            out.planned.append((doc, chunks))
        if order:
            out.vectors = vecs[np.asarray(order, dtype=np.int64)]
        return out

    # -- verification ------------------------------------------------------------------------
    def check(self, expected_meta: Callable[[], dict[str, str]]) -> list[str]:
        """Verify the whole index: one line per problem, for a person ([] when all is well).

        SQLite's integrity check; the meta (present, same model and chunking as configured);
        the current generation's folder, file checksums, FAISS and BM25 readable with ids equal
        to the passage ids; every passage's offsets inside its article's text; no passage
        without its article. Reads one consistent view; never loads the embedding model.
        """
        store = self._store
        if not store.exists():
            return []
        try:
            errors = store.integrity_errors(full=True)
            if errors:
                more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
                found = "; ".join(" ".join(e.split())[:160] for e in errors[:3])
                return [f"the database {store.path} is damaged: {found}{more}; {DB_ADVICE}"]
            with store.read():
                return self._check_contents(expected_meta)
        except NewsdeskError as e:
            return [str(e)]
        except sqlite3.DatabaseError as e:
            return [str(database_error(store.path, e))]

    def _check_contents(self, expected_meta: Callable[[], dict[str, str]]) -> list[str]:
        store, problems = self._store, []
        meta = store.meta()
        articles, chunks = store.counts()
        if not meta.get("model"):
            if articles or chunks:
                problems.append(
                    f"the index in {self.data_dir} holds {articles} articles but no metadata "
                    "(model, chunking): run `newsdesk reindex`"
                )
        else:
            try:
                check_meta(meta, expected_meta, self.data_dir)
            except IndexMismatchError as e:
                problems.append(str(e))
        gen = store.generation()
        if gen:
            problems += self._check_generation(gen, int(expected_meta()["dimension"]))
        elif chunks:
            problems.append(
                f"{chunks} passages are stored but no index generation is recorded: "
                "run `newsdesk reindex`"
            )
        bad, first, why = store.damaged_sentences()
        if bad:
            problems.append(
                f"{bad} passages have damaged sentence vectors (first: passage {first}, {why}): "
                "run `newsdesk reindex`"
            )
        c = store.conn
        bad, first = c.execute(
            "SELECT count(*), min(c.id) FROM chunks c JOIN articles a ON a.id = c.article_id "
            "WHERE c.start < 0 OR c.end < c.start OR c.end > length(a.text)"
        ).fetchone()
        if bad:
            problems.append(
                f"{bad} passages have offsets outside their article's text (first: passage "
                f"{first}): run `newsdesk reindex`"
            )
        bad, first = c.execute(
            "SELECT count(*), min(id) FROM chunks WHERE article_id NOT IN (SELECT id FROM articles)"
        ).fetchone()
        if bad:
            problems.append(
                f"{bad} passages belong to no article (first: passage {first}): "
                "run `newsdesk reindex`"
            )
        return problems

    def _check_generation(self, gen: int, dimension: int) -> list[str]:
        path = self.gen_path(gen)
        if not path.is_dir():
            return [
                f"generation {gen} of the index is missing from {path.parent}: "
                "run `newsdesk reindex` to rebuild it from the stored articles"
            ]
        problems = []
        damaged = manifest_problems(path)
        if damaged:
            problems.append(
                f"files of the index in {path} are damaged ({'; '.join(damaged[:5])}): "
                "run `newsdesk reindex`"
            )
        ids = np.asarray(self._store.chunk_ids(), dtype=np.int64)
        try:
            vectors = VectorIndex.load(path / "vectors.faiss", dimension)
        except IndexCorruptError as e:
            problems.append(str(e))
        else:
            problems += _id_problems(f"vector index {path / 'vectors.faiss'}", vectors.ids(), ids)
            bad, first = vectors.damaged_vectors()
            if bad:
                problems.append(
                    f"the vector index {path / 'vectors.faiss'} holds {bad} damaged vectors "
                    f"(not finite unit vectors; first: passage {first}): run `newsdesk reindex`"
                )
        try:
            lexical = LexicalIndex.load(path / "lexical")
        except Exception as e:
            problems.append(
                f"the keyword index in {path / 'lexical'} is unreadable ({first_line(e, 160)}): "
                "run `newsdesk reindex`"
            )
        else:
            problems += _id_problems(f"keyword index {path / 'lexical'}", lexical.ids, ids)
        return problems


def _id_problems(what: str, got: np.ndarray, want: np.ndarray) -> list[str]:
    """``got`` (ids in an index file) against ``want`` (the passage ids in SQLite)."""
    got = np.asarray(got, dtype=np.int64)
    missing = np.setdiff1d(want, got)
    extra = np.setdiff1d(got, want)
    duplicates = len(got) - len(np.unique(got))
    parts = []
    if len(missing):
        parts.append(f"lacks {len(missing)} passages (e.g. {int(missing[0])})")
    if len(extra):
        parts.append(f"has {len(extra)} ids that are no passage (e.g. {int(extra[0])})")
    if duplicates:
        parts.append(f"has {duplicates} duplicate ids")
    return [f"the {what} {' and '.join(parts)}: run `newsdesk reindex`"] if parts else []
