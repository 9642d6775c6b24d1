"""Title search for autocomplete (``/article``, ``/remove``) and "did you mean" hints.

Autocomplete runs at every keystroke, so it must not cost O(articles) of Python: the old way
(every title through ``difflib``) took 2–4 s of CPU per keystroke at 50,000 articles. Here titles
live in an SQLite table with an index on their lower-cased form (prefix look-ups) and an FTS5
*trigram* index (substring look-ups, and candidates for fuzzy matches that share trigrams with
the query). Only those ≤ :data:`FUZZY_CANDIDATES` candidates are scored in Python. Every search
also has a wall-clock budget (an SQLite progress handler interrupts a query that overruns it),
so a pathological query returns what it found so far instead of holding a worker thread.

The FAISS backend keeps the tables in ``newsdesk.db``, in step with ``articles`` through
triggers (every write path, in the same transaction); an existing database gains them on first
open. The Milvus backend keeps the same tables in memory, rebuilt when the index generation
changes (:class:`MemoryTitles`). Without FTS5 or its trigram tokenizer (SQLite < 3.34), the
same tables are searched by prefix and ``LIKE`` only, still bounded in time and count.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 200
FUZZY_CANDIDATES = 200  # titles sharing rare trigrams with the query, scored with difflib
FUZZY_TRIGRAMS = 6  # the query's rarest trigrams that fuzzy candidates are drawn from...
FUZZY_POSTINGS = 4000  # ...as long as they occur in no more titles than this, all together
FUZZY_PREFIXED = 200  # and titles starting with the query's first three characters
FUZZY_MIN_RATIO = 0.5
BUDGET_SECONDS = 0.25  # wall clock per search, whatever the query

_TABLES = [
    "CREATE TABLE IF NOT EXISTS article_titles ("
    " n INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,"
    " folded TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS article_titles_folded ON article_titles(folded)",
]
_FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS article_titles_fts USING fts5("
    " title, content='article_titles', content_rowid='n', tokenize='trigram')",
    # how many titles hold each trigram: fuzzy matching starts from the query's rarest ones
    "CREATE VIRTUAL TABLE IF NOT EXISTS article_titles_vocab"
    " USING fts5vocab(article_titles_fts, 'row')",
    "CREATE TRIGGER IF NOT EXISTS article_titles_fts_ai AFTER INSERT ON article_titles BEGIN"
    " INSERT INTO article_titles_fts(rowid, title) VALUES (new.n, new.title); END",
    "CREATE TRIGGER IF NOT EXISTS article_titles_fts_ad AFTER DELETE ON article_titles BEGIN"
    " INSERT INTO article_titles_fts(article_titles_fts, rowid, title)"
    " VALUES ('delete', old.n, old.title); END",
    "CREATE TRIGGER IF NOT EXISTS article_titles_fts_au AFTER UPDATE ON article_titles BEGIN"
    " INSERT INTO article_titles_fts(article_titles_fts, rowid, title)"
    " VALUES ('delete', old.n, old.title);"
    " INSERT INTO article_titles_fts(rowid, title) VALUES (new.n, new.title); END",
]
# the FAISS backend: article_titles follows articles
_FOLLOW_ARTICLES = [
    "CREATE TRIGGER IF NOT EXISTS articles_titles_ai AFTER INSERT ON articles BEGIN"
    " INSERT INTO article_titles(article_id, title, folded)"
    " VALUES (new.id, new.title, lower(new.title)); END",
    "CREATE TRIGGER IF NOT EXISTS articles_titles_ad AFTER DELETE ON articles BEGIN"
    " DELETE FROM article_titles WHERE article_id = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS articles_titles_au AFTER UPDATE OF title ON articles"
    " WHEN new.title IS NOT old.title BEGIN"
    " UPDATE article_titles SET title = new.title, folded = lower(new.title)"
    " WHERE article_id = old.id; END",
]


def fold(text: str) -> str:
    """Case-folded as SQLite's ``lower()`` folds (ASCII), so Python and triggers agree."""
    return "".join(c.lower() if c.isascii() else c for c in text)


def normalise(query: str) -> str:
    return fold(" ".join(query.split())[:MAX_QUERY_CHARS])


def has_trigram(c: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34+)."""
    try:
        c.execute("CREATE VIRTUAL TABLE temp.newsdesk_probe USING fts5(x, tokenize='trigram')")
        c.execute("DROP TABLE temp.newsdesk_probe")
        return True
    except sqlite3.OperationalError:
        return False


def installed(c: sqlite3.Connection) -> bool:
    """Whether ``c``'s database already has the title tables (and its triggers)."""
    row = c.execute(
        "SELECT 1 FROM sqlite_master WHERE type='trigger' AND name='articles_titles_ai'"
    ).fetchone()
    return row is not None


def install(c: sqlite3.Connection, *, follow_articles: bool) -> None:
    """Create the title tables (FTS5 when available) and fill them; ``follow_articles``: keep
    them in step with an ``articles`` table in the same database. Call inside a transaction."""
    for sql in _TABLES:
        c.execute(sql)
    if has_trigram(c):
        for sql in _FTS:
            c.execute(sql)
    if follow_articles:
        c.execute("DELETE FROM article_titles")
        c.execute(
            "INSERT INTO article_titles(article_id, title, folded) "
            "SELECT id, title, lower(title) FROM articles"
        )
        for sql in _FOLLOW_ARTICLES:
            c.execute(sql)


def _fts(c: sqlite3.Connection) -> bool:
    row = c.execute(
        "SELECT 1 FROM sqlite_master WHERE name='article_titles_fts' AND type='table'"
    ).fetchone()
    return row is not None


@contextlib.contextmanager
def _deadline(c: sqlite3.Connection, seconds: float) -> Iterator[None]:
    """Interrupt any statement of ``c`` that runs past ``seconds`` from now."""
    end = time.monotonic() + seconds
    c.set_progress_handler(lambda: int(time.monotonic() > end), 2000)
    try:
        yield
    finally:
        c.set_progress_handler(None, 0)


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _fuzzy_candidates(c: sqlite3.Connection, q: str) -> list[tuple[str, str]]:
    """(article id, folded title) of titles that may be misspellings of ``q``: those sharing
    the query's rarest trigrams (few titles hold them, so ranking them is cheap, and a title
    sharing several is likely the one meant), and those starting as the query starts."""
    grams = [g for g in dict.fromkeys(q[i : i + 3] for i in range(len(q) - 2)) if g.strip()]
    marks = ",".join("?" * len(grams))
    docs = c.execute(
        f"SELECT term, doc FROM article_titles_vocab WHERE term IN ({marks})", grams
    ).fetchall()
    rare: list[str] = []
    postings = 0
    for term, doc in sorted(docs, key=lambda td: td[1])[:FUZZY_TRIGRAMS]:
        postings += doc
        if postings > FUZZY_POSTINGS:  # ranking that many titles would cost too much
            break
        rare.append(term)
    out: list[tuple[str, str]] = []
    if rare:
        out += c.execute(
            "SELECT t.article_id, t.folded FROM article_titles_fts f "
            "JOIN article_titles t ON t.n = f.rowid "
            "WHERE article_titles_fts MATCH ? ORDER BY f.rank LIMIT ?",
            (" OR ".join(_phrase(g) for g in rare), FUZZY_CANDIDATES),
        ).fetchall()
    head = q[:3]
    out += c.execute(
        "SELECT article_id, folded FROM article_titles WHERE folded >= ? AND folded < ? LIMIT ?",
        (head, head + "\U0010ffff", FUZZY_PREFIXED),
    ).fetchall()
    return out


def match_ids(
    c: sqlite3.Connection, query: str, limit: int, budget: float = BUDGET_SECONDS
) -> list[str]:
    """Article ids whose titles match ``query``: titles starting with it, then containing it,
    then close to it (fuzzy); at most ``limit``, within ``budget`` seconds (what was found
    by then, if a look-up overruns it)."""
    limit = max(0, min(int(limit), 100))
    q = normalise(query)
    found: list[str] = []
    seen: set[str] = set()

    def take(rows: Iterable[tuple[str]]) -> None:
        for (aid,) in rows:
            if aid not in seen and len(found) < limit:
                seen.add(aid)
                found.append(aid)

    if limit == 0:
        return found
    try:
        with _deadline(c, budget):
            if not q:
                take(
                    c.execute(
                        "SELECT article_id FROM article_titles ORDER BY folded LIMIT ?", (limit,)
                    )
                )
                return found
            # prefix: a range on the folded-title index
            take(
                c.execute(
                    "SELECT article_id FROM article_titles WHERE folded >= ? AND folded < ? "
                    "ORDER BY folded LIMIT ?",
                    (q, q + "\U0010ffff", limit),
                )
            )
            if len(found) >= limit:
                return found
            fts = len(q) >= 3 and _fts(c)
            want = limit + len(found)
            if fts:  # substring: a trigram phrase query
                rows = c.execute(
                    "SELECT t.article_id FROM article_titles_fts f "
                    "JOIN article_titles t ON t.n = f.rowid "
                    "WHERE article_titles_fts MATCH ? ORDER BY t.folded LIMIT ?",
                    (_phrase(q), want),
                )
            else:
                pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                rows = c.execute(
                    "SELECT article_id FROM article_titles WHERE folded LIKE ? ESCAPE '\\' "
                    "ORDER BY folded LIMIT ?",
                    (pattern + "%", want),
                )
            take(rows)
            if found or not fts:  # fuzzy matches only when nothing matches as typed
                return found
            candidates = _fuzzy_candidates(c, q)
    except sqlite3.OperationalError as e:
        if "interrupted" not in str(e):
            raise
        log.info("title search for %r stopped at its %.2f s budget", q[:50], budget)
        return found
    scored = []
    for aid, folded in candidates:
        if aid in seen:
            continue
        ratio = difflib.SequenceMatcher(None, q, folded[: len(q) + 10]).ratio()
        if ratio >= FUZZY_MIN_RATIO:
            scored.append((-ratio, folded, aid))
    take((aid,) for _r, _f, aid in sorted(scored))
    return found


class MemoryTitles:
    """The title tables in memory, for a backend that has no SQLite of its own (Milvus):
    rebuilt from the article heads when the index generation changes."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self.generation: object = None
        with self._conn:
            install(self._conn, follow_articles=False)

    def load(self, generation: object, titles: Iterable[tuple[str, str]]) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM article_titles")
            self._conn.executemany(
                "INSERT OR REPLACE INTO article_titles(article_id, title, folded) VALUES (?, ?, ?)",
                ((aid, title, fold(title)) for aid, title in titles),
            )
            self.generation = generation

    def match(self, query: str, limit: int, budget: float = BUDGET_SECONDS) -> list[str]:
        with self._lock:
            return match_ids(self._conn, query, limit, budget)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
