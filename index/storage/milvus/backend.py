"""The Milvus backend (``[store] backend = "milvus"``): one index shared by many processes.

The rows live in Milvus collections (:mod:`index.storage.milvus.collections`); this module adds
generations, publishing, recovery and verification on top of them, with the writer lease
(:mod:`.lease`), the vectors of a generation (:mod:`.vectors`) and the read-side Store API
(:mod:`.store`).

**Generations without files.** Each row carries ``gen`` (the generation that added it) and
``dead`` (the generation that removed it, 0 while alive). A reader pins the ``state`` row once
per question and filters every search and query to the rows alive in that generation; a writer
adds rows for generation G+1 and marks replaced rows ``dead = G+1``, then switches by upserting
the one ``state`` row. So, as with the FAISS backend, readers keep answering from the
generation they started on while a writer works, and a crashed writer leaves only rows no
reader can see (the next writer deletes them). A full re-index adds a new set of passages and
raises ``floor`` (passages older than it are dead) instead of marking every row.

**BM25.** Milvus has its own BM25 full-text search (the ``BM25`` function over a sparse field,
Milvus 2.5+ and Milvus Lite 3.2), but it scores with per-segment statistics in Milvus Lite and
with Milvus's own analyzer, and the answer step needs the corpus idf of every question term.
So each passage row stores its terms exactly as :func:`index.storage.lexical.tokenize` makes them,
and
every process builds the same in-memory BM25 index (bm25s scores) from them, updated by the
rows of each new generation only: the same keyword scores as the FAISS backend, to the bit.

**One writer.** A lease row in ``<prefix>_state`` (:class:`.lease.WriterLease`), renewed by a
thread while writing and checked again, with the generation, just before the switch.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import IndexBusyError, IndexCorruptError, NewsdeskError
from index.models import Chunk, Document, Progress, pack_tags
from index.storage.base import Snapshot
from index.storage.lexical import LexicalIndex, Tokens, tokenize
from index.storage.milvus.collections import (
    DUMMY,
    TEXT_PART,
    VARCHAR_MAX,
    MilvusCollections,
    b64,
    lit_list,
)
from index.storage.milvus.lease import SETTLE, WriterLease
from index.storage.milvus.store import MilvusStore
from index.storage.milvus.vectors import MilvusVectors
from index.storage.sqlite import now_iso, sentence_problem

if TYPE_CHECKING:
    from index.config import Settings

log = logging.getLogger(__name__)

BATCH = 1_000  # rows per insert / upsert call
FLUSH_ROWS = 1_000  # a write adding this many passages seals them into an indexed segment


# -- BM25 from stored terms --------------------------------------------------------------------


def lexical_from_terms(ids: Sequence[int], term_lists: Sequence[Sequence[str]]) -> LexicalIndex:
    """The BM25 index of passages ``ids`` (any order) with their terms."""
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    ids_sorted = np.asarray(ids, dtype=np.int64)[order]
    tokens = Tokens.of_terms([term_lists[i] for i in order.tolist()])
    return LexicalIndex.from_tokens(ids_sorted, tokens)


def lexical_delta(
    prev: LexicalIndex,
    removed: Sequence[int],
    ids: Sequence[int],
    term_lists: Sequence[Sequence[str]],
) -> LexicalIndex | None:
    """``prev`` without ``removed`` and with the new passages ``ids`` (any order); None if it
    cannot be updated."""
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    new_ids = np.asarray(ids, dtype=np.int64)[order]
    return prev.updated_terms(removed, new_ids.tolist(), [term_lists[i] for i in order.tolist()])


def _pack_b64(blob: bytes) -> str:
    text = base64.b64encode(blob).decode("ascii")
    return text if len(text) <= VARCHAR_MAX else ""


def _fits(text: str) -> str:
    """``text`` if a Milvus string holds it, else "" (then read from the article)."""
    return text if len(text) * 4 <= VARCHAR_MAX or len(text.encode("utf-8")) <= VARCHAR_MAX else ""


def _terms_text(terms: Sequence[str]) -> str:
    text = " ".join(terms)
    if len(text.encode("utf-8")) > VARCHAR_MAX:
        log.warning("a passage has more BM25 terms than a Milvus row holds; keeping the first")
        text = text.encode("utf-8")[:VARCHAR_MAX].decode("utf-8", "ignore").rsplit(" ", 1)[0]
    return text


# -- the backend -------------------------------------------------------------------------------


class MilvusBackend(MilvusCollections):
    """Rows, vectors and the writer lease in Milvus; see the module docstring."""

    name = "milvus"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.lease_seconds = float(settings.store.lease_seconds)
        self.settle = 0.0 if self.lite else SETTLE  # embedded: no other process can open it
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease: WriterLease | None = None
        self.store = MilvusStore(self)

    # -- snapshots ---------------------------------------------------------------------------
    def load_snapshot(self, generation: int, dimension: int, previous: Snapshot | None) -> Snapshot:
        state = self.store.state()
        if generation == 0 or int(state.get("generation", 0)) != generation:
            if generation == 0:
                return Snapshot(
                    0, MilvusVectors(self, {}, None, dimension), LexicalIndex.build([], [])
                )
            state = self.read_state()
        name = self.passages_of(state)
        if name is None:
            raise IndexCorruptError(
                f"the passages of generation {generation} are missing from {self.where}; "
                "run `newsdesk reindex` to rebuild them from the stored articles"
            )
        t0 = time.perf_counter()
        lexical = None
        if (
            previous is not None
            and previous.generation == generation - 1
            and int(state.get("floor", 0)) < generation
            and isinstance(previous.vectors, MilvusVectors)
            and previous.vectors.collection == name
        ):
            # one generation on: only its new rows and the rows it removed
            added = list(self.scan(name, f"gen == {generation}", ["id", "terms"]))
            removed = [r["id"] for r in self.scan(name, f"dead == {generation}", ["id"])]
            lexical = lexical_delta(
                previous.lexical,
                removed,
                [r["id"] for r in added],
                [r["terms"].split() for r in added],
            )
        if lexical is None:
            rows = list(self.scan(name, self.alive_passages(state), ["id", "terms"]))
            lexical = lexical_from_terms(
                [r["id"] for r in rows], [r["terms"].split() for r in rows]
            )
        expected = int(state.get("passages", 0))
        if len(lexical) != expected:
            raise IndexCorruptError(
                f"the index in {self.where} does not match its state ({len(lexical)} passages "
                f"found, {expected} recorded); run `newsdesk reindex`"
            )
        log.info(
            "loaded generation %d from %s: %d passages in %.2f s",
            generation,
            self.where,
            len(lexical),
            time.perf_counter() - t0,
        )
        return Snapshot(generation, MilvusVectors(self, state, name, dimension), lexical)

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, wait: float | None = None) -> Iterator[None]:
        """The writer lease (see :class:`WriterLease`), then recovery and clean-up of old rows."""
        timeout = float(os.environ.get("NEWSDESK_LOCK_TIMEOUT", "600")) if wait is None else wait
        self.ensure_state()
        lease = WriterLease(self, self.owner, self.lease_seconds, self.settle)
        lease.acquire(timeout)
        self._lease = lease
        try:
            state = self.read_state()
            self._recover(state)
            self._purge(state)
            yield
        finally:
            self._lease = None
            lease.release()

    def _recover(self, state: dict[str, Any]) -> None:
        """Undo what a writer that died before its switch left: rows of a generation that was
        never published, and ``dead`` marks it set."""
        g = int(state.get("generation", 0))
        names = [n for n in self._passage_collections() if self.has(n)] + [
            n for n in (self.c_articles, self.c_tags) if self.has(n)
        ]
        for name in names:
            self.call(f"cleaning {name}", self.client.delete, name, filter=f"gen > {g}")
            marked = list(self.scan(name, f"dead > {g}", ["*"]))
            if marked:
                log.warning("undoing %d removals of an interrupted write in %s", len(marked), name)
                for r in marked:
                    r["dead"] = 0
                self._upsert(name, marked)

    def _purge(self, state: dict[str, Any]) -> None:
        """Delete rows no reader can see any more: dead before the previous generation, or
        below its floor; and passage collections of older dimensions."""
        g = int(state.get("generation", 0))
        if g < 1:
            return
        keep = {state.get("passages_collection"), state.get("prev_passages_collection")}
        for name in self._passage_collections():
            if name not in keep:
                log.info("dropping %s (no generation uses it)", name)
                self.call(f"dropping {name}", self.client.drop_collection, name)
                self._loaded.discard(name)
        prev_floor = int(state.get("prev_floor", 0))
        current = self.passages_of(state)
        if current:
            expr = f"(dead != 0 and dead <= {g - 1}) or gen < {prev_floor}"
            self.call(f"cleaning {current}", self.client.delete, current, filter=expr)
        for versioned in (self.c_articles, self.c_tags):
            if self.has(versioned):
                self.call(
                    f"cleaning {versioned}",
                    self.client.delete,
                    versioned,
                    filter=f"dead != 0 and dead <= {g - 1}",
                )

    def _passage_collections(self) -> list[str]:
        names = self.call("listing collections", self.client.list_collections)
        prefix = f"{self.prefix}_passages_"
        return [n for n in names if n.startswith(prefix) and n[len(prefix) :].isdigit()]

    def _upsert(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        for i in range(0, len(rows), BATCH):
            self.call(f"writing {name}", self.client.upsert, name, list(rows[i : i + BATCH]))

    def _insert(
        self, name: str, rows: Sequence[dict[str, Any]], progress: Progress | None = None
    ) -> None:
        for i in range(0, len(rows), BATCH):
            self.call(f"writing {name}", self.client.insert, name, list(rows[i : i + BATCH]))
            if progress and len(rows) > BATCH:
                progress("vector index", min(i + BATCH, len(rows)), len(rows))

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
        ids: Sequence[int] | None = None,
    ) -> Snapshot:
        """Write generation G+1 beside G, then switch by upserting the ``state`` row.

        ``ids``: the new passages' ids (a migration keeps the source's); else the next ones.
        """
        if self._lease is None:
            raise RuntimeError("publish outside writer()")
        state = self.read_state()
        g = int(state.get("generation", 0))
        new = g + 1
        dim = int(meta["dimension"])
        self.ensure_articles()
        name = self.ensure_passages(dim)
        when = now_iso()
        old_name = self.passages_of(state)
        floor = new if full or old_name != name else int(state.get("floor", 0))

        # passages replaced by this write: dead from the new generation on
        removed: list[int] = []
        if replace and not full and old_name == name:
            rows = self.query(
                name,
                f"article_id in {lit_list(replace)} and {self.alive_passages(state)}",
                ["*"],
            )
            for r in rows:
                r["dead"] = new
            self._upsert(name, rows)
            removed = [int(r["id"]) for r in rows]

        # article versions: the old ones die, new ones are written whole
        touched = list(dict.fromkeys([*replace, *(d.article_id for d, _ in planned)]))
        old_rows = (
            self.query(
                self.c_articles,
                f"article_id in {lit_list(touched)} and {self.alive_articles(state)}",
                ["*"],
            )
            if touched
            else []
        )
        added_at = {r["article_id"]: r["added_at"] for r in old_rows if r["part"] == 0}
        for r in old_rows:
            r["dead"] = new
        self._upsert(self.c_articles, old_rows)

        next_id = int(state.get("next_id", 1))
        if ids is None:
            ids = list(range(next_id, next_id + len(vectors)))
        else:
            ids = [int(i) for i in ids]
            if len(ids) != len(vectors) or (ids and min(ids) < next_id):
                raise ValueError("passage ids must be new and one per vector")
        end_id = max([next_id - 1, *ids]) + 1
        term_lists = tokenize(texts)
        article_rows: list[dict[str, Any]] = []
        passage_rows: list[dict[str, Any]] = []
        k = 0
        vecs = np.asarray(vectors, dtype=np.float32)
        for doc, chunks in planned:
            article_rows += _article_rows(
                doc, len(chunks), new, added_at.get(doc.article_id, when), when
            )
            for ch in chunks:
                passage_rows.append(
                    {
                        "id": ids[k],
                        "article_id": doc.article_id,
                        "ordinal": ch.ordinal,
                        "pstart": ch.start,
                        "pend": ch.end,
                        "gen": new,
                        "dead": 0,
                        "terms": _terms_text(term_lists[k]),
                        "sentences": _pack_b64(sentences[k]) if k < len(sentences) else "",
                        "text": _fits(doc.text[ch.start : ch.end]),
                        "title": doc.title[:1000],
                        "source": _fits(doc.source),
                        "url": _fits(doc.url or ""),
                        "published": (doc.published or "")[:120],
                        "vector": vecs[k],
                    }
                )
                k += 1
        self._insert(self.c_articles, article_rows)
        self._write_tags(state, new, touched, [d for d, _ in planned])
        self._insert(name, passage_rows, progress)
        if len(passage_rows) >= FLUSH_ROWS:
            # seal the new rows into an indexed segment (Milvus Lite searches unsealed rows one
            # by one); small writes are left to Milvus's own flushing
            self.call(f"flushing {name}", self.client.flush, name)

        if progress:
            progress("keyword index", 0, 1)
        lexical = None
        if previous is not None and not full and old_name == name:
            lexical = lexical_delta(previous.lexical, removed, ids, term_lists)
        if lexical is None:
            if full or old_name != name:
                lexical = lexical_from_terms(ids, term_lists)
            else:
                after = {**state, "generation": new, "floor": floor}
                rows = list(self.scan(name, self.alive_passages(after), ["id", "terms"]))
                lexical = lexical_from_terms(
                    [r["id"] for r in rows], [r["terms"].split() for r in rows]
                )

        deleted = len(replace) if delete_articles else 0
        added = sum(1 for d, _ in planned if d.article_id not in added_at)
        articles = int(state.get("articles", 0)) + added - deleted
        passages = len(lexical)
        kind, _build, _search = self.index_spec()
        new_state = {
            "generation": new,
            "floor": floor,
            "prev_floor": int(state.get("floor", 0)),
            "next_id": end_id,
            "articles": articles,
            "passages": passages,
            "passages_collection": name,
            "prev_passages_collection": old_name or name,
            "updated_at": when,
            "index_type": f"milvus-{kind.lower()}",
            "meta": meta,
        }
        # fencing: still the lease holder, and nobody published meanwhile
        self._lease.check()
        if int(self.read_state().get("generation", 0)) != g:
            raise IndexBusyError(
                f"another writer published to {self.where} during this update; try again"
            )
        self.call(
            "switching generation",
            self.client.upsert,
            self.c_state,
            [{"key": "state", "value": json.dumps(new_state), "v": DUMMY}],
        )
        if progress:
            progress("keyword index", 1, 1)
        log.info("published generation %d to %s: %d passages", new, self.where, passages)
        return Snapshot(new, MilvusVectors(self, new_state, name, dim), lexical)

    def _write_tags(
        self, state: dict[str, Any], new: int, touched: Sequence[str], docs: Sequence[Document]
    ) -> None:
        """The touched articles' tag rows die with their versions; new versions with tags get
        theirs (the collection is made when the first tagged article is written)."""
        tagged = [d for d in docs if d.tags]
        if not tagged and not self.has(self.c_tags):
            return
        self.ensure_tags()
        if touched:
            expr = f"article_id in {lit_list(touched)} and {self.alive_articles(state)}"
            old = self.query(self.c_tags, expr, ["*"])
            for r in old:
                r["dead"] = new
            self._upsert(self.c_tags, old)
        rows = [
            {
                "key": f"{d.article_id}:{new}",
                "article_id": d.article_id,
                "gen": new,
                "dead": 0,
                "tags": pack_tags(d.tags),
                "v": DUMMY,
            }
            for d in tagged
        ]
        self._insert(self.c_tags, rows)

    # -- verification ------------------------------------------------------------------------
    def check(self, expected_meta: Callable[[], dict[str, str]]) -> list[str]:
        """One line per problem: state, counts, passages without article, offsets."""
        try:
            state = self.read_state()
        except NewsdeskError as e:
            return [str(e)]
        if not state:
            return []
        problems: list[str] = []
        meta = state.get("meta") or {}
        want = expected_meta()
        diffs = [f"{k} {meta.get(k)!r} -> {v!r}" for k, v in want.items() if meta.get(k) != v]
        if diffs:
            problems.append(
                f"the index in {self.where} was built with other settings ("
                + "; ".join(diffs)
                + "): run `newsdesk reindex`"
            )
        name = self.passages_of(state)
        if name is None:
            return [
                *problems,
                f"the passage collection of {self.where} is missing: run `newsdesk reindex`",
            ]
        rows = list(
            self.scan(
                name,
                self.alive_passages(state),
                ["id", "article_id", "pstart", "pend", "sentences"],
            )
        )
        if len(rows) != int(state.get("passages", 0)):
            problems.append(
                f"{self.where} holds {len(rows)} passages, its state records "
                f"{state.get('passages')}: run `newsdesk reindex`"
            )
        ids = [r["id"] for r in rows]
        if len(set(ids)) != len(ids):
            problems.append(f"{self.where} has duplicate passage ids: run `newsdesk reindex`")
        arts = self.store.articles(state, sorted({r["article_id"] for r in rows}))
        orphans = [r for r in rows if r["article_id"] not in arts]
        if orphans:
            problems.append(
                f"{len(orphans)} passages belong to no article (first: passage "
                f"{orphans[0]['id']}): run `newsdesk reindex`"
            )
        bad = [
            r
            for r in rows
            if r["article_id"] in arts
            and not 0 <= r["pstart"] <= r["pend"] <= len(arts[r["article_id"]].text)
        ]
        if bad:
            problems.append(
                f"{len(bad)} passages have offsets outside their article's text (first: passage "
                f"{bad[0]['id']}): run `newsdesk reindex`"
            )
        try:
            dim: int | None = int(meta.get("dimension", ""))
        except ValueError:
            dim = None
        damaged = [
            (r["id"], why)
            for r in rows
            if r["sentences"]
            and (
                why := sentence_problem(b64(r["sentences"]), dim, int(r["pend"]) - int(r["pstart"]))
            )
        ]
        if damaged:
            problems.append(
                f"{len(damaged)} passages have damaged sentence vectors (first: passage "
                f"{damaged[0][0]}, {damaged[0][1]}): run `newsdesk reindex`"
            )
        return problems


def _article_rows(
    doc: Document, chunks: int, gen: int, added_at: str, when: str
) -> list[dict[str, Any]]:
    parts = [doc.text[i : i + TEXT_PART] for i in range(0, len(doc.text), TEXT_PART)] or [""]
    rows = []
    for i, text in enumerate(parts):
        rows.append(
            {
                "key": f"{doc.article_id}:{gen}:{i}",
                "article_id": doc.article_id,
                "gen": gen,
                "dead": 0,
                "part": i,
                "parts": len(parts),
                "chunks": chunks,
                "title": doc.title[:1000],
                "title_lower": doc.title[:1000].lower(),
                "source": doc.source,
                "url": doc.url or "",
                "published": doc.published or "",
                "content_hash": doc.content_hash,
                "added_at": added_at,
                "updated_at": when,
                "text": text,
                "v": DUMMY,
            }
        )
    return rows
