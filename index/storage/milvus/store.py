"""The read-side Store API over the Milvus collections: meta, articles, passages, hits.

Articles are assembled from their parts (a Milvus string holds at most 65,535 bytes) and cached
by version; inside :meth:`MilvusStore.read` every call sees one generation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import ArticleNotFoundError, IndexCorruptError
from index.models import Article, Hit, unpack_tags
from index.storage.milvus.collections import (
    ARTICLE_FIELDS,
    MilvusCollections,
    b64,
    lit,
    lit_list,
)
from index.storage.sqlite import (
    ArticleRow,
    SentenceVectors,
    resolve_article,
    usable_sentences,
)
from index.storage.titles import MemoryTitles


def _article_row(r: dict[str, Any], tags: str = "") -> ArticleRow:
    """An article head (the part-0 row of the articles collection) as an :class:`ArticleRow`."""
    return ArticleRow(
        r["article_id"],
        r["title"],
        r["source"],
        r["url"] or None,
        r["published"] or None,
        r["content_hash"],
        r["added_at"],
        int(r["chunks"]),
        unpack_tags(tags),
    )


if TYPE_CHECKING:
    from index.storage.base import StoreReader

    def _is_a_store_reader(store: MilvusStore) -> StoreReader:
        """mypy checks here that :class:`MilvusStore` implements the read-side protocol."""
        return store


class MilvusStore:
    """:class:`index.storage.sqlite.Store`'s reading API over the Milvus collections.

    Inside :meth:`read` every call sees one generation (the ``state`` row read on entry), like
    an SQLite read transaction. Writing goes through
    :meth:`index.storage.milvus.backend.MilvusBackend.publish`.
    """

    def __init__(self, backend: MilvusCollections) -> None:
        self.data_dir = backend.data_dir
        self.backend = backend
        self.path = Path(backend.uri)
        self._pin = threading.local()
        self._titles: MemoryTitles | None = None
        self._title_rows: dict[str, dict[str, Any]] = {}
        self._titles_lock = threading.Lock()
        # (article id, version generation) -> (article, dead mark, generation it was read at)
        self._articles: OrderedDict[tuple[str, int], tuple[Article, int, int]] = OrderedDict()
        self._articles_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.backend.has(self.backend.c_state)

    def init_schema(self) -> None:
        """Collections are created by the first write."""

    def close(self) -> None:
        if self._titles is not None:
            self._titles.close()
        self.backend.close()

    def state(self) -> dict[str, Any]:
        pinned = getattr(self._pin, "state", None)
        return pinned if pinned is not None else self.backend.read_state()

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        if getattr(self._pin, "state", None) is not None:
            yield None
            return
        self._pin.state = self.backend.read_state()
        try:
            yield None
        finally:
            self._pin.state = None

    # -- meta --------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        st = self.state()
        if not st:
            return {}
        out = {k: str(v) for k, v in (st.get("meta") or {}).items()}
        out["generation"] = str(st.get("generation", 0))
        out["index_type"] = str(st.get("index_type", "milvus-flat"))
        if st.get("updated_at"):
            out["updated_at"] = str(st["updated_at"])
        return out

    def generation(self) -> int:
        return int(self.state().get("generation", 0))

    # -- articles ----------------------------------------------------------------------------
    def _heads(self, expr: str = "") -> list[dict[str, Any]]:
        st = self.state()
        if not st or not self.backend.has(self.backend.c_articles):
            return []
        where = f"part == 0 and {self.backend.alive_articles(st)}" + (
            f" and ({expr})" if expr else ""
        )
        fields = [f for f in ARTICLE_FIELDS if f != "text"]
        return list(self.backend.scan(self.backend.c_articles, where, fields))

    def hashes(self) -> dict[str, str]:
        return {r["article_id"]: r["content_hash"] for r in self._heads()}

    def counts(self) -> tuple[int, int]:
        st = self.state()
        return int(st.get("articles", 0)), int(st.get("passages", 0))

    def list_articles(self) -> list[ArticleRow]:
        tags = self.backend.tags_of(self.state())
        rows = [_article_row(r, tags.get(r["article_id"], "")) for r in self._heads()]
        return sorted(rows, key=lambda r: (r.title.lower(), r.id))

    def match_titles(self, query: str, limit: int) -> list[ArticleRow]:
        """Titles for autocomplete from an in-memory title index (index/storage/titles.py), rebuilt
        from the article heads when the generation changes: no scan of Milvus per keystroke."""
        with self.read():
            st = self.state()
            gen = (st.get("generation", 0), st.get("updated_at")) if st else None
            with self._titles_lock:
                if self._titles is None:
                    self._titles = MemoryTitles()
                if self._titles.generation != gen:
                    heads = self._heads()
                    self._titles.load(gen, ((r["article_id"], r["title"]) for r in heads))
                    self._title_rows = {r["article_id"]: r for r in heads}
                ids = self._titles.match(query, limit)
                rows = [self._title_rows[i] for i in ids if i in self._title_rows]
            tags = self.backend.tags_of(st, [r["article_id"] for r in rows])
        return [_article_row(r, tags.get(r["article_id"], "")) for r in rows]

    def get_article(self, article_id: str) -> Article:
        art = self.article(self.state(), article_id)
        if art is None:
            raise ArticleNotFoundError.with_id(article_id)
        return art

    def find_article(self, ref: str) -> Article:
        """By id, source, URL, id prefix or exact title: :func:`store.resolve_article`."""
        return self.get_article(resolve_article(ref, self._lookup))

    def _lookup(self, kind: str, value: str) -> list[tuple[str, str]]:
        if kind == "key":
            expr = f"article_id == {lit(value)} or source == {lit(value)}"
        elif kind == "url":
            expr = f"url == {lit(value)}"
        elif kind == "prefix":  # hex digits only (store.resolve_article): no wildcard in it
            expr = f"article_id like {lit(value + '%')}"
        else:
            expr = f"title_lower == {lit(value.lower()[:1000])}"
        return [(str(r["article_id"]), str(r["title"])) for r in self._heads(expr)]

    def same_text(self, texts: Sequence[str]) -> dict[str, str]:
        """Milvus keeps no text length or text hash to look duplicates up by, and reading every
        article's text on each write would not scale: duplicates with another title are found
        within one batch only (the same title and text still is, by content hash)."""
        return {}

    def all_articles(self) -> Iterator[Article]:
        st = self.state()
        heads = sorted(self._heads(), key=lambda r: (r["added_at"], r["article_id"]))
        for i in range(0, len(heads), 100):
            part = [r["article_id"] for r in heads[i : i + 100]]
            found = self.articles(st, part)
            for aid in part:
                yield found[aid]

    def article(self, state: dict[str, Any], article_id: str) -> Article | None:
        """One article as generation ``state`` has it (cached: a version never changes)."""
        found = self.articles(state, [article_id])
        return found.get(article_id)

    def articles(self, state: dict[str, Any], ids: Sequence[str]) -> dict[str, Article]:
        """Articles with their full text, by id, as generation ``state`` has them.

        Versions are cached: a version's text never changes, only its ``dead`` mark (set by a
        later generation), so a cached version known alive at generation ``seen`` serves any
        generation from its own up to ``seen``, or up to its death once that is known.
        """
        out: dict[str, Article] = {}
        want: list[str] = []
        g = int(state.get("generation", 0))
        with self._articles_lock:
            for aid in dict.fromkeys(ids):
                for (cid, cgen), (art, dead, seen) in reversed(self._articles.items()):
                    if cid == aid and cgen <= g and (dead > g if dead else g <= seen):
                        out[aid] = art
                        break
                else:
                    want.append(aid)
        if not want or not self.backend.has(self.backend.c_articles):
            return out
        rows = self.backend.query(
            self.backend.c_articles,
            f"article_id in {lit_list(want)} and {self.backend.alive_articles(state)}",
            ARTICLE_FIELDS,
        )
        tags = self.backend.tags_of(state, want)
        for aid, art_rows in _group(rows).items():
            art, gen, dead = _assemble(art_rows)
            if aid in tags:
                art = dataclasses.replace(art, tags=unpack_tags(tags[aid]))
            out[aid] = art
            with self._articles_lock:
                self._articles[(aid, gen)] = (art, dead, g)
                self._articles.move_to_end((aid, gen))
                while len(self._articles) > 256:
                    self._articles.popitem(last=False)
        return out

    # -- passages ----------------------------------------------------------------------------
    def _passages(self) -> str | None:
        return self.backend.passages_of(self.state()) if self.state() else None

    def chunk_count(self, article_ids: frozenset[str] | set[str]) -> int:
        if not article_ids:
            return 0
        rows = self._heads(f"article_id in {lit_list(sorted(article_ids))}")
        return sum(int(r["chunks"]) for r in rows)

    def catalogue(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(id, source, tags) of every article: what a scope selects by (index/search/scope.py)."""
        tags = self.backend.tags_of(self.state())
        heads = (
            self.backend.scan(
                self.backend.c_articles,
                f"part == 0 and {self.backend.alive_articles(self.state())}",
                ["article_id", "source"],
            )
            if self.state() and self.backend.has(self.backend.c_articles)
            else []
        )
        return [
            (str(r["article_id"]), str(r["source"]), unpack_tags(tags.get(r["article_id"])))
            for r in heads
        ]

    def passages_of(self, article_ids: Sequence[str]) -> list[int]:
        """The passage ids of these articles in this generation (those of a scope)."""
        name = self._passages()
        if name is None or not article_ids:
            return []
        alive = self.backend.alive_passages(self.state())
        out: list[int] = []
        ids = list(article_ids)
        for i in range(0, len(ids), 1000):
            expr = f"article_id in {lit_list(ids[i : i + 1000])} and {alive}"
            out += [int(r["id"]) for r in self.backend.scan(name, expr, ["id"])]
        return out

    def chunk_ids(self) -> list[int]:
        name = self._passages()
        if name is None:
            return []
        rows = self.backend.scan(name, self.backend.alive_passages(self.state()), ["id"])
        return sorted(int(r["id"]) for r in rows)

    def hits(self, scored: Sequence[tuple[int, float, dict[str, float]]]) -> list[Hit]:
        name = self._passages()
        if not scored or name is None:
            return []
        rows = self.backend.passage_rows(name, [s[0] for s in scored])
        long = sorted({r["article_id"] for r in rows.values() if not r["text"]})
        arts = self.articles(self.state(), long) if long else {}
        out = []
        for cid, score, details in scored:
            r = rows.get(int(cid))
            if r is None:
                continue
            start, end = int(r["pstart"]), int(r["pend"])
            text = r["text"]
            if not text and end > start:  # too long for a Milvus string: from the article
                art = arts.get(r["article_id"])
                if art is None:
                    continue
                text = art.text[start:end]
            out.append(
                Hit(
                    chunk_id=int(cid),
                    article_id=r["article_id"],
                    title=r["title"],
                    source=r["source"],
                    url=r["url"] or None,
                    text=text,
                    start=start,
                    end=end,
                    published=r["published"] or None,
                    score=score,
                    details=dict(details),
                    parts=[(int(cid), start, end)],
                )
            )
        return out

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, SentenceVectors]:
        name = self._passages()
        if not chunk_ids or name is None:
            return {}
        rows = self.backend.passage_rows(name, list(chunk_ids))
        return usable_sentences(
            [(i, b64(r["sentences"])) for i, r in rows.items() if r["sentences"]],
            None,
            f"Milvus collection {name}",
        )

    def article_sentences(
        self, article_id: str
    ) -> tuple[str, list[tuple[int, SentenceVectors]]] | None:
        state = self.state()
        art = self.article(state, article_id) if state else None
        name = self._passages()
        if art is None or name is None:
            return None
        expr = f"{self.backend.alive_passages(state)} and article_id == {lit(article_id)}"
        rows = sorted(
            self.backend.scan(name, expr, ["id", "pstart", "sentences"]),
            key=lambda r: (int(r["pstart"]), int(r["id"])),
        )
        starts = {int(r["id"]): int(r["pstart"]) for r in rows}
        usable = usable_sentences(
            [(int(r["id"]), b64(r["sentences"])) for r in rows if r["sentences"]],
            None,
            f"Milvus collection {name}",
        )
        return art.text, [(starts[cid], sv) for cid, sv in usable.items()]

    def article_span(self, article_id: str, start: int, end: int) -> str:
        art = self.article(self.state(), article_id)
        return art.text[start:end] if art else ""

    def integrity_errors(self, full: bool = False) -> list[str]:
        return []


def _group(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["article_id"], []).append(r)
    return out


def _assemble(rows: list[dict[str, Any]]) -> tuple[Article, int, int]:
    """(the article, its version's generation, the generation that removed it or 0)."""
    rows = sorted(rows, key=lambda r: r["part"])
    head = rows[0]
    if len(rows) != head["parts"] or [r["part"] for r in rows] != list(range(head["parts"])):
        raise IndexCorruptError(
            f"article {head['article_id']} is incomplete in Milvus ({len(rows)} of "
            f"{head['parts']} parts): run `newsdesk reindex`"
        )
    art = Article(
        head["article_id"],
        head["title"],
        head["source"],
        "".join(r["text"] for r in rows),
        head["url"] or None,
        head["published"] or None,
        head["content_hash"],
        head["added_at"],
        int(head["chunks"]),
    )
    return art, int(head["gen"]), int(head["dead"])
