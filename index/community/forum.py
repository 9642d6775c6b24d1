"""Forum posts answered and questions asked in threads: ``forum_posts`` and
``thread_questions`` in ``<data_dir>/community.sqlite3``.

- ``forum_posts``: each post of a help forum the bot took on, claimed *before* answering (a
  post is answered at most once, also after a restart or when THREAD_CREATE and the starter's
  MESSAGE_CREATE both arrive), with the outcome (answered, abstained, failed).
- ``thread_questions``: the questions the bot answered in a thread (its own threads and forum
  posts), oldest first, so a follow-up ("when was that?") is asked with them as context after a
  restart too. Kept here rather than re-read from the thread's name or first message: a name is
  cut at 100 characters, and reading history needs Read Message History and a REST call per
  follow-up. Only the newest :data:`KEEP_QUESTIONS` per thread are kept.

WAL, one connection per thread, short transactions; SQLite errors leave as one message for a
person (:func:`index.sqlite_util.sqlite_error`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from index.errors import NewsdeskError
from index.sqlite_util import immediate, sqlite_error, translating

DB_NAME = "community.sqlite3"
KEEP_QUESTIONS = 10  # per thread: follow-ups use the newest few (index.search.followup)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forum_posts (
    thread_id INTEGER PRIMARY KEY,
    forum_id INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending',
    answer_id INTEGER
);
CREATE TABLE IF NOT EXISTS thread_questions (
    thread_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    question TEXT NOT NULL,
    asked_at REAL NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
"""


class ForumStore:
    """``forum_posts`` and ``thread_questions``; one connection per thread, created on use."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _error(self, e: sqlite3.DatabaseError) -> Exception:
        return sqlite_error(
            self.path,
            e,
            busy="{path} is busy ({text}); try again in a moment",
            damaged="cannot use {path} ({text}): move it away to start the community data afresh",
            damaged_error=NewsdeskError,
        )

    @property
    def conn(self) -> sqlite3.Connection:
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with translating(self._error):
                c = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=NORMAL")
                c.executescript(_SCHEMA)
            with self._lock:
                self._all.append(c)
            self._local.conn = c
        return c

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with translating(self._error), immediate(self.conn, self._error) as c:
            yield c

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                with contextlib.suppress(Exception):
                    c.close()
            self._all.clear()
        self._local = threading.local()

    # -- forum posts -----------------------------------------------------------------------------
    def claim_post(self, thread_id: int, forum_id: int) -> bool:
        """True when this call took the post on (it was never claimed before): only then is it
        answered."""
        with self._write() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO forum_posts (thread_id, forum_id, claimed_at) "
                "VALUES (?, ?, ?)",
                (thread_id, forum_id, time.time()),
            )
            return cur.rowcount == 1

    def finish_post(self, thread_id: int, outcome: str, answer_id: int | None = None) -> None:
        """Record how a claimed post ended: "answered", "abstained" or "failed"."""
        with self._write() as c:
            c.execute(
                "UPDATE forum_posts SET outcome=?, answer_id=? WHERE thread_id=?",
                (outcome, answer_id, thread_id),
            )

    def post_outcome(self, thread_id: int) -> str | None:
        """None for a post never claimed; otherwise pending / answered / abstained / failed."""
        with translating(self._error):
            row = self.conn.execute(
                "SELECT outcome FROM forum_posts WHERE thread_id=?", (thread_id,)
            ).fetchone()
        return row[0] if row else None

    def claimed(self, thread_ids: Sequence[int]) -> set[int]:
        """Those of ``thread_ids`` already claimed (a catch-up after a restart skips them)."""
        if not thread_ids:
            return set()
        marks = ",".join("?" * len(thread_ids))
        with translating(self._error):
            rows = self.conn.execute(
                f"SELECT thread_id FROM forum_posts WHERE thread_id IN ({marks})",
                list(thread_ids),
            ).fetchall()
        return {r[0] for r in rows}

    # -- thread questions ------------------------------------------------------------------------
    def remember(self, thread_id: int, question: str) -> None:
        """Append ``question`` to the thread's questions (only the newest few are kept)."""
        with self._write() as c:
            row = c.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM thread_questions WHERE thread_id=?",
                (thread_id,),
            ).fetchone()
            seq = int(row[0]) + 1
            c.execute(
                "INSERT INTO thread_questions (thread_id, seq, question, asked_at) "
                "VALUES (?, ?, ?, ?)",
                (thread_id, seq, question, time.time()),
            )
            c.execute(
                "DELETE FROM thread_questions WHERE thread_id=? AND seq<=?",
                (thread_id, seq - KEEP_QUESTIONS),
            )

    def questions(self, thread_id: int) -> list[str]:
        """The thread's remembered questions, oldest first ([] for a thread the bot never
        answered in)."""
        with translating(self._error):
            rows = self.conn.execute(
                "SELECT question FROM thread_questions WHERE thread_id=? ORDER BY seq",
                (thread_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def threads(self) -> set[int]:
        """Every thread the bot answered a question in."""
        with translating(self._error):
            rows = self.conn.execute("SELECT DISTINCT thread_id FROM thread_questions").fetchall()
        return {r[0] for r in rows}
