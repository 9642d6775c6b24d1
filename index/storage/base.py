"""The vector-store interface: where passages, their vectors and the article text live.

Two implementations, chosen by ``[store] backend`` (one config line):

- ``"faiss"`` (the default): :class:`index.storage.local.LocalBackend`. SQLite
  (:class:`index.storage.sqlite.Store`) + per-generation FAISS
  (:class:`index.storage.faiss_index.VectorIndex`) and BM25
  (:class:`index.storage.lexical.LexicalIndex`) files in the data dir. One machine; one writer
  through a file lock in the data dir.
- ``"milvus"``: :class:`index.storage.milvus.MilvusBackend`. Passages with their vectors,
  article text and the index state live in Milvus collections (Milvus Lite embedded, or a
  Milvus standalone or cluster deployment), so any number of processes on any machines answer
  from one index. One writer at a time through a lease kept in Milvus.

What the pipeline needs from a backend is :class:`Backend`; what a question needs from the
vectors of one generation is :class:`VectorSearch`; what it reads of articles and passages is
:class:`StoreReader`. This module holds only these protocols: the backends import it, never
the other way round. :func:`index.storage.factory.open_backend` picks the configured one and
imports it on demand (nothing Milvus-related is imported unless ``backend = "milvus"``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from index.models import Article, Chunk, Document, Hit, Progress
    from index.storage.allowed import Allowed
    from index.storage.lexical import LexicalIndex
    from index.storage.sqlite import ArticleRow, SentenceVectors


@dataclass
class Snapshot:
    """One generation as queries see it: its vectors and its BM25 index, swapped as one value."""

    generation: int
    vectors: VectorSearch  # a VectorIndex (FAISS), or the backend's
    lexical: LexicalIndex


class VectorSearch(Protocol):
    """The vectors of one index generation, as a question uses them."""

    @property
    def kind(self) -> str:
        """Index type for ``stats`` and the meta, e.g. ``flat``, ``ivf`` or ``milvus-flat``."""
        ...

    def __len__(self) -> int: ...

    def ids(self) -> np.ndarray:
        """Every passage id (int64) in this generation."""
        ...

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, vector) in this generation."""
        ...

    def search(
        self, query: np.ndarray, k: int, allowed: Allowed | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` passages nearest to ``query`` as (id, inner product), best first;
        ``allowed``: only among those passages (a scope), filtered inside the search."""
        ...

    def search_many(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]: ...

    def scores_for(self, query: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Exact inner products of ``query`` with the stored vectors of ``ids``."""
        ...


class StoreReader(Protocol):
    """What the engine reads of an index's articles, passages and meta, whatever holds them
    (:class:`index.storage.sqlite.Store`, :class:`index.storage.milvus.store.MilvusStore`).

    Inside :meth:`read` every call sees one generation. Writing is the backend's own business
    (:meth:`Backend.publish`).
    """

    path: Path  # where the rows live, for messages

    def exists(self) -> bool: ...

    def init_schema(self) -> None: ...

    def close(self) -> None: ...

    def read(self) -> contextlib.AbstractContextManager[Any]:
        """One consistent read: every call of this thread inside sees the same generation."""
        ...

    def meta(self) -> dict[str, str]: ...

    def generation(self) -> int: ...

    def hashes(self) -> dict[str, str]:
        """Content hash of every article, by id."""
        ...

    def counts(self) -> tuple[int, int]:
        """(articles, passages)."""
        ...

    def list_articles(self) -> list[ArticleRow]: ...

    def match_titles(self, query: str, limit: int) -> list[ArticleRow]: ...

    def get_article(self, article_id: str) -> Article: ...

    def find_article(self, ref: str) -> Article: ...

    def same_text(self, texts: Sequence[str]) -> dict[str, str]:
        """Ids of stored articles with exactly these texts, by text."""
        ...

    def all_articles(self) -> Iterator[Article]: ...

    def chunk_count(self, article_ids: frozenset[str] | set[str]) -> int: ...

    def chunk_ids(self) -> list[int]: ...

    def catalogue(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(id, source, tags) of every article, for a scope to select from."""
        ...

    def passages_of(self, article_ids: Sequence[str]) -> list[int]:
        """The passage ids of these articles."""
        ...

    def hits(self, scored: Sequence[tuple[int, float, dict[str, float]]]) -> list[Hit]: ...

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, SentenceVectors]: ...

    def article_sentences(
        self, article_id: str
    ) -> tuple[str, list[tuple[int, SentenceVectors]]] | None: ...

    def article_span(self, article_id: str, start: int, end: int) -> str: ...

    def integrity_errors(self, full: bool = False) -> list[str]: ...


class Backend(Protocol):
    """A shared store of rows + vectors that replaces the data dir's SQLite + FAISS files."""

    name: str

    @property
    def store(self) -> StoreReader:
        """The Store API (articles, passages, meta) over the backend.

        Typed as the SQLite :class:`~index.storage.sqlite.Store` while the pipeline still writes
        the FAISS backend's rows itself through that type; :class:`StoreReader` once it does not
        (then :class:`~index.storage.milvus.store.MilvusStore` need not subclass the SQLite one).
        """
        ...

    def writer(self, wait: float | None = None) -> contextlib.AbstractContextManager[None]:
        """The single-writer lease, coordinated through the backend itself."""
        ...

    def load_snapshot(
        self, generation: int, dimension: int, previous: Snapshot | None
    ) -> Snapshot: ...

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
        """Write the changes and switch to the next generation atomically; its snapshot."""
        ...

    def check(self, expected_meta: Callable[[], dict[str, str]]) -> list[str]: ...

    def close(self) -> None: ...
