"""The one facade both faces (CLI, Discord) call: add, remove, reindex, search, ask, stats.

Where the index lives is the backend's business (:mod:`index.storage.local` for the data dir's
SQLite + FAISS files, :mod:`index.storage.milvus` for Milvus); the facade keeps the snapshot
readers answer from, the one-writer-per-process lock and the meta check, and hands the rest to
the wings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import numpy as np

from index import indexing
from index.chunking import CHUNKER_VERSION
from index.config import Settings
from index.embedding import Embedder, make_embedder
from index.errors import (
    ArticleNotFoundError,
    ConfigError,
    IndexBusyError,
    InvalidQuestionError,
    NewsdeskError,
)
from index.models import (
    Answer,
    Article,
    Chunk,
    Document,
    Hit,
    IndexReport,
    Progress,
    Stats,
)
from index.search import answer as answer_mod
from index.search import brief as news
from index.search import followup
from index.search.query import (
    Query,
    Scoring,
    answer_query,
    calibrated_threshold,
    load_scorer,
    require_content,
    search_passages,
    searched_as,
    validate_question,
)
from index.search.rerank import Scorer
from index.search.scope import ScopeCache, Selection
from index.sqlite_util import translating
from index.storage.base import Backend, Snapshot
from index.storage.factory import open_backend
from index.storage.local import GenerationGone, check_meta, expect_index
from index.storage.snapshots import Snapshots
from index.storage.sqlite import (
    SCHEMA_VERSION,
    ArticleRow,
    database_error,
)

if TYPE_CHECKING:
    from index.written.generate import GeneratedAnswer

log = logging.getLogger(__name__)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _db_errors(
    fn: Callable[Concatenate[Pipeline, _P], _R],
) -> Callable[Concatenate[Pipeline, _P], _R]:
    """SQLite errors leave the engine as messages for a person (damaged file, busy database)."""

    @functools.wraps(fn)
    def wrapper(self: Pipeline, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with translating(lambda e: database_error(self.store.path, e)):
            return fn(self, *args, **kwargs)

    return wrapper


class Pipeline:
    """The engine as both faces see it. It composes the wings (backend, embedder, answer
    scorer), keeps the snapshot readers answer from and the one-writer lock, and checks that
    the index was built with the configured model and chunking; each public method then hands
    its work to :mod:`index.indexing`, :mod:`index.search.query` or the backend."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        # [store] backend: rows, vectors and the writer lock or lease (index/storage/): the
        # data dir's SQLite + FAISS files (local.py), or Milvus
        self.backend: Backend = open_backend(settings)
        self.store = self.backend.store
        self._embedder = embedder
        self._reranker: Scorer | None = None
        self._combiner: answer_mod.Combiner | None = None
        # the last question's scored sentences (features), for `train-reranker`'s combiner fit
        self.last_reranked: answer_mod.Reranked | None = None
        # the loader is looked up at each load, so a replaced _load_snapshot takes effect
        self._snapshots = Snapshots(lambda gen: self._load_snapshot(gen))
        self._scopes = ScopeCache()  # scopes resolved per generation (index/search/scope.py)
        self._write_lock = threading.Lock()
        self.writing = False
        self._store_expected = self.backend.name == "faiss"  # checked once: _expect_index

    def _expect_index(self) -> None:
        """``[store]`` names a backend that holds no index while the data dir holds a FAISS
        one: store.uri almost certainly points elsewhere than meant (Milvus Lite would make a
        new, empty file there). An error, before anything reads or writes that empty store."""
        if not self._store_expected:
            where = getattr(self.backend, "where", self.settings.store.uri)
            expect_index(self.store, self.data_dir, where)
            self._store_expected = True

    # -- components --------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.settings.embedding)
        return self._embedder

    @property
    def reranker(self) -> Scorer | None:
        """The learned answer-sentence scorer (None with ``answer.reranker = "none"``)."""
        if self._reranker is None:
            self._reranker, self._combiner = load_scorer(self.settings.answer.reranker)
        return self._reranker

    @property
    def min_confidence(self) -> float:
        """The abstention threshold for the scorer in use (config, else its calibrated one)."""
        if self.settings.answer.min_confidence is not None:
            return self.settings.answer.min_confidence
        return calibrated_threshold(self.reranker)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def expected_meta(self) -> dict[str, str]:
        e = self.embedder
        return {
            "schema_version": str(SCHEMA_VERSION),
            "model": e.name,
            "dimension": str(e.dimension),
            "chunk_max_tokens": str(self.settings.chunking.max_tokens or e.max_seq_length),
            "chunk_overlap": str(self.settings.chunking.overlap_sentences),
            "chunker_version": str(CHUNKER_VERSION),
        }

    def _check_meta(self, meta: dict[str, str]) -> None:
        check_meta(meta, self.expected_meta, self.data_dir)

    # -- snapshots ---------------------------------------------------------------------------
    @_db_errors
    def snapshot(self) -> Snapshot:
        """The current generation, reloaded when another writer has published a newer one.

        Inside :meth:`reading` it is the generation that this thread's SQLite view sees.
        """
        self._expect_index()
        if not self.store.exists():
            return self._snapshots.get(0)
        with self.store.read():
            return self._snapshots.get(self.store.generation())

    @contextlib.contextmanager
    def reading(self) -> Iterator[Snapshot]:
        """A snapshot and an SQLite view of the same generation, for the length of a question.

        A writer may publish meanwhile: this reader keeps the vectors, keyword index and rows it
        started with. Should the generation's files vanish before they are loaded (a writer
        elsewhere published twice in between), it starts again on the newer one.
        """
        for attempt in range(3):
            if not self.store.exists():
                yield self.snapshot()
                return
            with self.store.read():
                try:
                    snap = self.snapshot()
                except GenerationGone:
                    if attempt == 2:
                        raise
                    continue
                yield snap
                return

    def _load_snapshot(self, gen: int) -> Snapshot:
        if gen:
            self._check_meta(self.store.meta())
        return self.backend.load_snapshot(gen, self.embedder.dimension, self._snapshots.current)

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, wait: float | None = None) -> Iterator[None]:
        """Exclusive writer: one thread of this process and one process on this data dir."""
        self._expect_index()
        if not self._write_lock.acquire(blocking=False):
            raise IndexBusyError("the index is already being updated; try again when it finishes")
        try:
            with self.backend.writer(wait):  # a file lock, or a lease kept in the backend
                self.writing = True
                try:
                    yield
                finally:
                    self.writing = False
        finally:
            self._write_lock.release()

    def plan_chunks(self, doc: Document) -> list[Chunk]:
        return indexing.plan_chunks(self.embedder, self.settings.chunking, doc)

    @staticmethod
    def embed_text(title: str, passage: str) -> str:
        return indexing.embed_text(title, passage)

    @_db_errors
    def add_documents(
        self,
        docs: Sequence[Document],
        progress: Progress | None = None,
        *,
        keep_duplicates: bool = False,
    ) -> IndexReport:
        """Add new articles, re-embed changed ones, skip unchanged ones (by content hash) and
        duplicates (a text indexed already under another source; ``keep_duplicates``: added
        anyway, for the benchmarks that grow an index by replicating articles)."""
        t0 = time.perf_counter()
        report = IndexReport()
        unique = {d.article_id: d for d in map(indexing.sanitize, docs)}
        with self.writer():
            self._check_meta(self.store.meta())
            hashes = self.store.hashes()
            if not keep_duplicates:
                indexing.drop_duplicates(self.store, unique, hashes, report)
            todo = indexing.changed(unique, hashes, report)
            if todo:
                planned = indexing.plan_all(self.embedder, self.settings.chunking, todo, progress)
                vecs, sents = indexing.embed_planned(self.embedder, planned, progress)
                report.chunks_embedded = len(vecs)
                self._publish(
                    replace=[d.article_id for d in todo if d.article_id in hashes],
                    planned=planned,
                    vectors=vecs,
                    sentences=sents,
                    progress=progress,
                )
        report.seconds = time.perf_counter() - t0
        return report

    @_db_errors
    def prune(self, folders: Sequence[str | Path]) -> list[Article]:
        """Remove the articles read from files under ``folders`` whose files are gone (one
        write); articles from elsewhere and files that still exist are kept."""
        gone = indexing.files_gone(self.list_articles(), folders)
        return self.remove_articles(gone) if gone else []

    @_db_errors
    def add(self, inputs: Sequence[str], progress: Progress | None = None) -> IndexReport:
        """Read files, folders, URLs or feeds and index them (all or nothing on input errors).

        Raises the first :class:`SourceError` when a named input fails; items skipped inside a
        folder or feed are listed in ``report.skipped``.
        """
        collected = indexing.read_inputs(inputs, self.settings.fetch)
        report = self.add_documents(collected.documents, progress)
        report.skipped = [str(w) for w in collected.warnings]
        report.notes = [str(n) for n in collected.notes]
        return report

    @_db_errors
    def remove(self, ref: str) -> Article:
        """Remove one article (id, source path/URL, URL, id prefix or exact title) from SQLite,
        FAISS and BM25."""
        return self.remove_many([ref])[0]

    @_db_errors
    def remove_many(self, refs: Sequence[str]) -> list[Article]:
        """Remove the articles ``refs`` name, all or nothing: every name is resolved first, and
        when any matches no article (or several) nothing is removed and the error names each
        one that failed. One write for all; an article named twice is removed once."""
        with self.writer():
            self._check_meta(self.store.meta())
            found = indexing.resolve_all(self.store, refs)
            self._delete([a.id for a in found])
        return found

    @_db_errors
    def remove_articles(self, article_ids: Sequence[str]) -> list[Article]:
        """Remove several articles by id in one write (ids not in the index are ignored)."""
        with self.writer():
            self._check_meta(self.store.meta())
            found = []
            for article_id in dict.fromkeys(article_ids):
                with contextlib.suppress(ArticleNotFoundError):
                    found.append(self.store.get_article(article_id))
            if found:
                self._delete([a.id for a in found])
        return found

    @_db_errors
    def reindex(self, progress: Progress | None = None) -> IndexReport:
        """Re-chunk and re-embed every stored article with the current settings (no network)."""
        t0 = time.perf_counter()
        report = IndexReport()
        with self.writer():
            articles = list(self.store.all_articles())
            docs = [indexing.as_document(a) for a in articles]
            planned = indexing.plan_all(self.embedder, self.settings.chunking, docs, progress)
            vecs, sents = indexing.embed_planned(self.embedder, planned, progress)
            report.chunks_embedded = len(vecs)
            report.updated = len(articles)
            self._publish(
                replace=[],
                planned=planned,
                vectors=vecs,
                sentences=sents,
                full=True,
                progress=progress,
            )
        report.seconds = time.perf_counter() - t0
        return report

    def _delete(self, article_ids: Sequence[str]) -> None:
        """One write that removes these articles with their passages."""
        vectors = np.zeros((0, 1), np.float32)
        self._publish(replace=article_ids, planned=[], vectors=vectors, delete_articles=True)

    def _publish(
        self,
        *,
        replace: Sequence[str],
        planned: Sequence[indexing.Planned],
        vectors: np.ndarray,
        sentences: Sequence[bytes] = (),
        full: bool = False,
        delete_articles: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """Write the changes and switch to the next generation (atomically, in the backend)."""
        snap = self.backend.publish(
            replace=replace,
            planned=[(p.doc, p.chunks) for p in planned],
            vectors=vectors,
            sentences=sentences,
            texts=[indexing.embed_text(p.doc.title, c.text) for p in planned for c in p.chunks],
            full=full,
            delete_articles=delete_articles,
            meta=self.expected_meta(),
            previous=None if full else self.snapshot(),
            progress=progress,
        )
        self._snapshots.published(snap)

    # -- reading -----------------------------------------------------------------------------
    def validate_question(self, question: str, what: str = "question") -> str:
        """``question`` with its whitespace collapsed; empty or too long is an error that
        names ``what`` was given ("question", or "query" for a search)."""
        return validate_question(question, self.settings.answer.max_question_chars, what)

    def _query(
        self,
        text: str,
        vector: np.ndarray | None,
        k: int | None,
        mode: str | None,
        *,
        asked: str = "",
        exclude: frozenset[str] = frozenset(),
        started: float = 0.0,
        scope: tuple[Selection | None, Snapshot] | None = None,
    ) -> Query:
        """One :class:`Query` (``k``, ``mode``: ``[retrieval]``'s; ``scope``: search/scope.py)."""
        r = self.settings.retrieval
        sel, snap = scope or (None, None)
        allowed = self._scopes.allowed(self.store, snap.generation, sel) if sel and snap else None
        return Query(text, vector, mode or r.mode, k or r.k, asked, exclude, started, allowed)

    def _scoring(self) -> Scoring:
        """The answer scorer, loaded on the first question that needs it."""
        scorer = self.reranker
        return Scoring(scorer, self._combiner, self.min_confidence)

    def _answer(self, q: Query, snap: Snapshot) -> Answer:
        """The answer to ``q``; the reranker's scores are kept for `train-reranker`."""
        ans, reranked = answer_query(self.store, self.settings, q, snap, self._scoring)
        if reranked is not None:
            self.last_reranked = reranked
        return ans

    @_db_errors
    def search(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        scope: Selection | None = None,
    ) -> list[Hit]:
        q = self.validate_question(query, "query")
        with self.reading() as snap:
            require_content(snap)
            mode = mode or self.settings.retrieval.mode
            q = snap.lexical.spell(q)  # "mooon" -> "moon" for the embedder too
            q_vec = self.embedder.embed_query(q) if mode != "bm25" else None
            one = self._query(q, q_vec, k, mode, scope=(scope, snap))
            return search_passages(self.store, self.settings.retrieval, one, snap)

    @_db_errors
    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        context: Sequence[str] = (),
        scope: Selection | None = None,
    ) -> Answer:
        """``context``: the thread's earlier questions, for a follow-up (:mod:`followup`)."""
        t0 = time.perf_counter()
        q = self.validate_question(question)
        with self.reading() as snap:
            require_content(snap)
            fu = followup.build(q, context, snap.lexical.idf)
            spelt = snap.lexical.spell(fu.query)
            q_vec = self.embedder.embed_query(spelt)
            asked = q if fu.based_on is None else fu.query  # "when was that?" is no small talk
            query = self._query(spelt, q_vec, k, mode, asked=asked, started=t0, scope=(scope, snap))
            ans = self._answer(query, snap)
            ans.question, ans.follows_up = q, fu.based_on
            ans.searched_as = searched_as(q, spelt if fu.based_on is None else None, snap)
            return ans

    @_db_errors
    def ask_many(
        self,
        questions: Sequence[str],
        k: int | None = None,
        mode: str | None = None,
        exclude: Sequence[frozenset[str]] | None = None,
    ) -> list[Answer | NewsdeskError]:
        """Answer many questions, embedding them in batches; bad ones become errors in place.

        ``exclude[i]``: article ids to leave out for question ``i`` (evaluation: as if those
        articles were not indexed; the BM25 statistics still include them).
        """
        out: list[Answer | NewsdeskError] = []
        valid: list[tuple[int, str]] = []
        for i, question in enumerate(questions):
            try:
                valid.append((i, self.validate_question(question)))
                out.append(InvalidQuestionError("pending"))
            except NewsdeskError as e:
                out.append(e)
        if not valid:
            return out
        with self.reading() as snap:
            require_content(snap)
            batch = 64
            for b in range(0, len(valid), batch):
                part = valid[b : b + batch]
                t0 = time.perf_counter()
                spelt = [snap.lexical.spell(q) for _, q in part]
                vecs = self.embedder.embed(spelt)
                per = (time.perf_counter() - t0) / len(part)
                for (i, q), qs, v in zip(part, spelt, vecs, strict=True):
                    ex = exclude[i] if exclude else frozenset()
                    one = self._query(
                        qs, v, k, mode, asked=q, exclude=ex, started=time.perf_counter() - per
                    )
                    try:
                        out[i] = ans = self._answer(one, snap)
                        ans.searched_as = searched_as(q, qs, snap)
                    except NewsdeskError as e:
                        out[i] = e
        return out

    # -- written answers (optional: [llm]) ----------------------------------------------------
    def generate(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        *,
        on_update: Callable[[GeneratedAnswer], None] | None = None,
    ) -> GeneratedAnswer:
        """:meth:`ask`, then a written answer from the ``[llm]`` endpoint, verified against the
        passages; the extractive answer when the endpoint fails (see :mod:`index.written.generate`).
        With ``on_update``, the answer is streamed and ``on_update`` sees it grow."""
        coro = self.agenerate(question, k, mode, stream=on_update is not None, on_update=on_update)
        return asyncio.run(coro)

    async def agenerate(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        *,
        stream: bool = False,
        on_update: Callable[[GeneratedAnswer], None] | None = None,
        scope: Selection | None = None,
        context: Sequence[str] = (),
    ) -> GeneratedAnswer:
        """:meth:`generate` on a running event loop; ``ask`` runs in a worker thread. With
        ``stream``, ``on_update`` sees the verified answer grow (on the loop)."""
        from index.written import generate as gen

        if not self.settings.llm.enabled:
            raise ConfigError(gen.LLM_OFF)
        t0 = time.perf_counter()
        answer = await asyncio.to_thread(self.ask, question, k, mode, context, scope)
        return await gen.generate(
            answer, self.settings.llm, stream=stream, on_update=on_update, t0=t0
        )

    # -- articles & stats --------------------------------------------------------------------
    @_db_errors
    def list_articles(self) -> list[ArticleRow]:
        self._expect_index()
        if not self.store.exists():
            return []
        self.store.init_schema()
        return self.store.list_articles()

    @_db_errors
    def get_article(self, ref: str) -> Article:
        self._expect_index()
        self.store.init_schema()
        return self.store.find_article(ref)

    @_db_errors
    def match_titles(self, query: str, limit: int = 25) -> list[ArticleRow]:
        """Autocomplete titles: prefix, then substring, then fuzzy matches; at most ``limit``,
        from an index (index/storage/titles.py), within a fixed time budget whatever the query."""
        if not self.store.exists():
            return []
        self.store.init_schema()
        return self.store.match_titles(query, limit)

    @_db_errors
    def brief(
        self, since: news.Since = None, limit: int = 10, article_ids: news.Ids = None
    ) -> news.Brief:
        """The newest articles, each with its central sentence (index/search/brief.py);
        ``article_ids``: only these (a channel's scope)."""
        self._expect_index()
        return news.brief(self.store, since, limit, article_ids)

    @_db_errors
    def summarize(self, ref: str, n: int = 3) -> news.ArticleSummary:
        """An article and its ``n`` most central sentences, verbatim, in article order."""
        self._expect_index()
        return news.summarize(self.store, ref, n)

    @_db_errors
    def stats(self) -> Stats:
        self._expect_index()
        meta = self.store.meta() if self.store.exists() else {}
        articles, chunks = self.store.counts() if meta else (0, 0)
        return Stats(
            articles=articles,
            chunks=chunks,
            model=meta.get("model", self.settings.embedding.model),
            dimension=Stats.meta_int(meta.get("dimension")),
            index_type=meta.get("index_type", "flat"),
            bytes_on_disk=Stats.disk_size(self.data_dir),
            data_dir=str(self.data_dir),
            schema_version=Stats.meta_int(meta.get("schema_version"), SCHEMA_VERSION),
            last_indexed=meta.get("updated_at"),
        )

    # -- verification ------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Verify the whole index: one line per problem, for a person ([] when all is well);
        what is checked is the backend's (e.g. :meth:`index.storage.local.LocalBackend.check`).
        Never loads the embedding model."""
        return self.backend.check(self.expected_meta)
