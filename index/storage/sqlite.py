"""SQLite storage: articles (full text), chunks (offsets), meta. WAL mode, one file.

A chunk's text is never stored twice: it is ``substr(article.text, start + 1, end - start)``.
Chunk ids come from ``AUTOINCREMENT`` so an id is never reused: a stale vector can never point at
a different passage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from index import sqlite_util
from index.errors import (
    ArticleNotFoundError,
    IndexCorruptError,
    NewsdeskError,
)
from index.models import Article, Chunk, Document, Hit, pack_tags, text_hash, unpack_tags
from index.sqlite_util import immediate, sqlite_error
from index.storage import titles
from index.storage.refs import resolve_article
from index.storage.sentences import SentenceVectors, sentence_problem, usable_sentences

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_NAME = "newsdesk.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL UNIQUE,
    url TEXT,
    published TEXT,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    added_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    sentences BLOB,
    UNIQUE (article_id, ordinal)
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
"""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ArticleRow:
    id: str
    title: str
    source: str
    url: str | None
    published: str | None
    content_hash: str
    added_at: str
    chunk_count: int
    tags: tuple[str, ...] = ()


# article columns as Article(*row) wants them; ``tags`` is unpacked by :func:`_article`
_ARTICLE = "id, title, source, text, url, published, content_hash, added_at, {count}, tags"
_ROW = (
    "a.id, a.title, a.source, a.url, a.published, a.content_hash, a.added_at, "
    "(SELECT count(*) FROM chunks c WHERE c.article_id = a.id), a.tags"
)


def _article(r: Sequence[object]) -> Article:
    art = Article(*r[:-1])  # type: ignore[arg-type]
    return dataclasses.replace(art, tags=unpack_tags(str(r[-1] or "")))


def _row(r: Sequence[object]) -> ArticleRow:
    row = ArticleRow(*r[:-1])  # type: ignore[arg-type]
    return dataclasses.replace(row, tags=unpack_tags(str(r[-1] or "")))


def add_tags_column(c: sqlite3.Connection) -> None:
    """An index from before tags gains the ``tags`` column (empty); another process may have
    added it meanwhile, which is fine."""
    columns = {r[1] for r in c.execute("PRAGMA table_info(articles)")}
    if columns and "tags" not in columns:
        with contextlib.suppress(sqlite3.OperationalError):  # "duplicate column": done elsewhere
            c.execute("ALTER TABLE articles ADD COLUMN tags TEXT NOT NULL DEFAULT ''")


class SQLiteFile(sqlite_util.SQLiteFile):
    """A SQLite file of the index or the subscriptions: its errors read as the index's."""

    def _db_error(self, e: sqlite3.DatabaseError) -> Exception:
        return database_error(self.path, e)


class Store(SQLiteFile):
    """Thread-safe access to the index's SQLite file: one connection per thread."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir / DB_NAME)
        self.data_dir = data_dir
        self._titles_ready = False

    def _opened(self, c: sqlite3.Connection) -> None:
        add_tags_column(c)  # an index from before tags: every reader may select them

    def init_schema(self) -> None:
        try:
            self.conn.executescript(_SCHEMA)
            add_tags_column(self.conn)
            self._ensure_titles()
        except sqlite3.DatabaseError as e:
            raise database_error(self.path, e) from e

    def _ensure_titles(self) -> None:
        """The title search tables (index/storage/titles.py); a database from before them gains them
        once, filled from ``articles`` (one writer does it, the others find it done)."""
        if self._titles_ready:
            return
        c = self.conn
        if not titles.installed(c):
            c.execute("BEGIN IMMEDIATE")
            try:
                if not titles.installed(c):
                    titles.install(c, follow_articles=True)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
        self._titles_ready = True

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One consistent read: every query of this thread inside sees the same commit.

        Without it each statement is its own transaction, so a writer committing between two
        queries of one question would mix generations (vectors of one, rows of the next).
        Re-entrant; inside a write transaction it is that transaction.
        """
        c = self.conn
        if c.in_transaction:
            yield c
            return
        c.execute("BEGIN")
        try:
            yield c
        finally:
            if c.in_transaction:
                c.execute("COMMIT")  # read-only: nothing to write, ends the snapshot

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate(self.conn) as c:
            yield c

    # -- meta --------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        try:
            return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return {}
            raise database_error(self.path, e) from e
        except sqlite3.DatabaseError as e:
            raise database_error(self.path, e) from e

    def generation(self) -> int:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return 0
            raise database_error(self.path, e) from e
        except sqlite3.DatabaseError as e:
            raise database_error(self.path, e) from e
        if not row:
            return 0
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise IndexCorruptError(
                f"the database {self.path} is damaged: meta.generation is not a number; "
                "run `newsdesk reindex` to rebuild the index from the stored articles"
            ) from None

    @staticmethod
    def set_meta(c: sqlite3.Connection, values: dict[str, object]) -> None:
        c.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [(k, str(v)) for k, v in values.items()],
        )

    # -- articles ----------------------------------------------------------------------------
    def hashes(self) -> dict[str, str]:
        """article id -> content hash."""
        return dict(self.conn.execute("SELECT id, content_hash FROM articles").fetchall())

    def counts(self) -> tuple[int, int]:
        a = self.conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        c = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(a), int(c)

    def list_articles(self) -> list[ArticleRow]:
        rows = self.conn.execute(
            f"SELECT {_ROW} FROM articles a ORDER BY a.title COLLATE NOCASE"
        ).fetchall()
        return [_row(r) for r in rows]

    def match_titles(self, query: str, limit: int) -> list[ArticleRow]:
        """Titles for autocomplete: prefix, then substring, then fuzzy (index/storage/titles.py)."""
        ids = titles.match_ids(self.conn, query, limit)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT {_ROW} FROM articles a WHERE a.id IN ({marks})", ids
        ).fetchall()
        by_id = {r[0]: _row(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def get_article(self, article_id: str) -> Article:
        count = "(SELECT count(*) FROM chunks c WHERE c.article_id = a.id)"
        r = self.conn.execute(
            f"SELECT {_ARTICLE.format(count=count)} FROM articles a WHERE id=?", (article_id,)
        ).fetchone()
        if r is None:
            raise ArticleNotFoundError.with_id(article_id)
        return _article(r)

    def find_article(self, ref: str) -> Article:
        """By id, source (path or URL), URL, id prefix or exact title: :func:`resolve_article`."""
        return self.get_article(resolve_article(ref, self._lookup))

    def _lookup(self, kind: str, value: str) -> list[tuple[str, str]]:
        args: tuple[str, ...] = (value,)
        if kind == "key":
            sql, args = "id=? OR source=?", (value, value)
        elif kind == "url":
            sql = "url=?"
        elif kind == "prefix":  # ids are hex digits: a range of the primary key
            sql, args = "id >= ? AND id < ?", (value, value + "g")
        else:
            sql = "title = ? COLLATE NOCASE"
        rows = self.conn.execute(f"SELECT id, title FROM articles WHERE {sql}", args)
        return [(str(i), str(t)) for i, t in rows.fetchall()]

    def same_text(self, texts: Sequence[str]) -> dict[str, str]:
        """:func:`text_hash` -> id of the (oldest) stored article with exactly that text, for
        the hashes of ``texts`` that are stored. Only rows of the same lengths are read."""
        want = {text_hash(t) for t in texts}
        lengths = sorted({len(t) for t in texts})
        found: dict[str, str] = {}
        for i in range(0, len(lengths), 500):
            part = lengths[i : i + 500]
            rows = self.conn.execute(
                "SELECT id, text FROM articles WHERE length(text) IN "
                f"({','.join('?' * len(part))}) ORDER BY added_at, id",
                part,
            )
            for article_id, text in rows:
                found.setdefault(text_hash(text), article_id)
        return {h: a for h, a in found.items() if h in want}

    def all_articles(self) -> Iterator[Article]:
        cur = self.conn.execute(
            f"SELECT {_ARTICLE.format(count=0)} FROM articles ORDER BY added_at, id"
        )
        for r in cur:
            yield _article(r)

    def catalogue(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(id, source, tags) of every article: what a scope selects by (index/search/scope.py)."""
        rows = self.conn.execute("SELECT id, source, tags FROM articles").fetchall()
        return [(str(i), str(s), unpack_tags(t)) for i, s, t in rows]

    def passages_of(self, article_ids: Sequence[str]) -> list[int]:
        """The passage ids of these articles (those of a scope)."""
        return self.chunk_ids_of(self.conn, article_ids)

    @staticmethod
    def upsert_article(c: sqlite3.Connection, doc: Document, when: str) -> None:
        c.execute(
            "INSERT INTO articles(id, title, source, url, published, text, content_hash, "
            "added_at, updated_at, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET title=excluded.title, url=excluded.url, "
            "published=excluded.published, text=excluded.text, "
            "content_hash=excluded.content_hash, updated_at=excluded.updated_at, "
            "tags=excluded.tags",
            (
                doc.article_id,
                doc.title,
                doc.source,
                doc.url,
                doc.published,
                doc.text,
                doc.content_hash,
                when,
                when,
                pack_tags(doc.tags),
            ),
        )

    # -- chunks ------------------------------------------------------------------------------
    @staticmethod
    def chunk_ids_of(c: sqlite3.Connection, article_ids: Sequence[str]) -> list[int]:
        out: list[int] = []
        for i in range(0, len(article_ids), 500):
            part = list(article_ids[i : i + 500])
            q = "SELECT id FROM chunks WHERE article_id IN ({})".format(",".join("?" * len(part)))
            out.extend(r[0] for r in c.execute(q, part))
        return out

    @staticmethod
    def insert_chunks(
        c: sqlite3.Connection, chunks: Sequence[Chunk], sentences: Sequence[bytes] = ()
    ) -> list[int]:
        ids = []
        for i, ch in enumerate(chunks):
            blob = sentences[i] if i < len(sentences) else None
            cur = c.execute(
                "INSERT INTO chunks(article_id, ordinal, start, end, sentences) "
                "VALUES (?, ?, ?, ?, ?)",
                (ch.article_id, ch.ordinal, ch.start, ch.end, blob),
            )
            assert cur.lastrowid is not None
            ids.append(int(cur.lastrowid))
        return ids

    @staticmethod
    def passage_texts(c: sqlite3.Connection) -> tuple[list[int], list[str]]:
        """All chunk ids with "title\\ntext", in id order (for the lexical index)."""
        ids: list[int] = []
        texts: list[str] = []
        for cid, title, text in c.execute(
            "SELECT c.id, a.title, substr(a.text, c.start + 1, c.end - c.start) "
            "FROM chunks c JOIN articles a ON a.id = c.article_id ORDER BY c.id"
        ):
            ids.append(cid)
            texts.append(f"{title}\n{text}")
        return ids, texts

    def chunk_count(self, article_ids: frozenset[str] | set[str]) -> int:
        ids = list(article_ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        q = f"SELECT count(*) FROM chunks WHERE article_id IN ({marks})"
        return int(self.conn.execute(q, ids).fetchone()[0])

    def chunk_ids(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")]

    def hits(self, scored: Sequence[tuple[int, float, dict[str, float]]]) -> list[Hit]:
        """Hits for (chunk id, score, details), in the given order; unknown ids dropped."""
        if not scored:
            return []
        ids = [s[0] for s in scored]
        q = (
            "SELECT c.id, c.article_id, a.title, a.source, a.url, "
            "substr(a.text, c.start + 1, c.end - c.start), c.start, c.end, a.published "
            "FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({})"
        ).format(",".join("?" * len(ids)))
        rows = {r[0]: r for r in self.conn.execute(q, ids)}
        out = []
        for cid, score, details in scored:
            r = rows.get(cid)
            if r is None:
                continue
            out.append(
                Hit(
                    chunk_id=r[0],
                    article_id=r[1],
                    title=r[2],
                    source=r[3],
                    url=r[4],
                    text=r[5],
                    start=r[6],
                    end=r[7],
                    published=r[8],
                    score=score,
                    details=dict(details),
                    parts=[(r[0], r[6], r[7])],
                )
            )
        return out

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, SentenceVectors]:
        """Stored sentence spans (relative to the chunk) and vectors, by chunk id."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        q = f"SELECT id, sentences FROM chunks WHERE id IN ({marks}) AND sentences IS NOT NULL"
        rows = self.conn.execute(q, list(chunk_ids)).fetchall()
        return usable_sentences(rows, self.dimension(), str(self.path))

    def dimension(self) -> int | None:
        """The vectors' dimension recorded in the meta (None: not recorded or not a number)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='dimension'").fetchone()
        try:
            return int(row[0]) if row else None
        except ValueError:
            return None

    def article_sentences(
        self, article_id: str
    ) -> tuple[str, list[tuple[int, SentenceVectors]]] | None:
        """An article's text and, passage by passage in order, (passage start, its stored
        sentence spans and vectors); None when there is no such article."""
        row = self.conn.execute("SELECT text FROM articles WHERE id=?", (article_id,)).fetchone()
        if row is None:
            return None
        rows = self.conn.execute(
            "SELECT id, start, sentences FROM chunks WHERE article_id=? AND sentences IS NOT NULL "
            "ORDER BY ordinal",
            (article_id,),
        ).fetchall()
        starts = {int(cid): int(start) for cid, start, _blob in rows}
        usable = usable_sentences(
            [(cid, blob) for cid, _start, blob in rows], self.dimension(), str(self.path)
        )
        return row[0], [(starts[cid], sv) for cid, sv in usable.items()]

    def damaged_sentences(self) -> tuple[int, int | None, str]:
        """Passages whose stored sentence vectors are damaged: (count, first id, first why)."""
        dim = self.dimension()
        count, first, why = 0, None, ""
        for cid, blob, length in self.conn.execute(
            "SELECT id, sentences, end - start FROM chunks WHERE sentences IS NOT NULL ORDER BY id"
        ):
            if not isinstance(blob, bytes):
                bad: str | None = f"a {type(blob).__name__}, not bytes"
            else:
                bad = sentence_problem(blob, dim, int(length))
            if bad is not None:
                count += 1
                if first is None:
                    first, why = int(cid), bad
        return count, first, why

    def article_span(self, article_id: str, start: int, end: int) -> str:
        r = self.conn.execute(
            "SELECT substr(text, ? + 1, ? - ?) FROM articles WHERE id=?",
            (start, end, start, article_id),
        ).fetchone()
        return str(r[0]) if r else ""

    def integrity_errors(self, full: bool = False) -> list[str]:
        """SQLite's own check (``full``: ``integrity_check``, else ``quick_check``)."""
        pragma = "integrity_check" if full else "quick_check"
        try:
            rows = self.conn.execute(f"PRAGMA {pragma}").fetchall()
        except sqlite3.DatabaseError as e:
            return [str(e)]
        return [str(r[0]) for r in rows if r[0] != "ok"]


DB_ADVICE = (
    "restore newsdesk.db from a backup, or move the data dir away and index the articles again"
)


def database_error(path: Path, e: sqlite3.DatabaseError) -> NewsdeskError:
    """A person's message for an SQLite error: busy, or a damaged or unreadable file."""
    return sqlite_error(
        path,
        e,
        busy="the database {path} is busy ({text}): another newsdesk process is writing; "
        "try again in a moment",
        damaged="the database {path} is damaged or unreadable ({text}); "
        + DB_ADVICE
        + " (`newsdesk check` lists what is wrong)",
        damaged_error=IndexCorruptError,
    )
