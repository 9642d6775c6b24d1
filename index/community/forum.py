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

Neither table stores a user id. Retention (``privacy.retention_days``) applies when the file is
opened and at every write, like the feedback log's: thread questions older than it are deleted,
and claims older than it *and* older than :data:`CLAIM_KEEP_DAYS` (so a claim outlives the bot's
catch-up window, :data:`bot.threads.CATCH_UP_HOURS`, and a post is never answered twice);
:meth:`ForumStore.forget` deletes by date with the same floor for claims.
:mod:`index.community.privacy` runs this and the feedback log's retention and forget together.

WAL, one connection per thread, short transactions; SQLite errors leave as one message for a
person (:func:`index.sqlite_util.sqlite_error`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from index.community.db import CommunityDB
from index.errors import NewsdeskError
from index.sqlite_util import sqlite_error, translating

KEEP_QUESTIONS = 10  # per thread: follow-ups use the newest few (index.search.followup)
DAY = 86400.0
# a claim is kept at least this long whatever the retention or forget says: longer than the
# bot's catch-up window for posts made while it was offline (24 hours), so none is answered twice
CLAIM_KEEP_DAYS = 2

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
CREATE INDEX IF NOT EXISTS forum_posts_time ON forum_posts(claimed_at);
CREATE INDEX IF NOT EXISTS thread_questions_time ON thread_questions(asked_at);
"""


@dataclass
class ForumForgetReport:
    """What :meth:`ForumStore.forget` deleted."""

    thread_questions: int = 0
    forum_posts: int = 0
    forum_posts_kept: int = 0  # claims before the date kept: younger than CLAIM_KEEP_DAYS


class ForumStore(CommunityDB):
    """``forum_posts`` and ``thread_questions``; one connection per thread, created on use."""

    SCHEMA = _SCHEMA

    def _db_error(self, e: sqlite3.DatabaseError) -> Exception:
        return sqlite_error(
            self.path,
            e,
            busy="{path} is busy ({text}); try again in a moment",
            damaged="cannot use {path} ({text}): move it away to start the community data afresh",
            damaged_error=NewsdeskError,
        )

    # -- retention and forget --------------------------------------------------------------------
    def _claim_floor(self, before: float) -> float:
        """``before``, but never later than :data:`CLAIM_KEEP_DAYS` ago (claims outlive it)."""
        return min(before, self.clock() - CLAIM_KEEP_DAYS * DAY)

    def _delete_before(self, c: sqlite3.Connection, before: float) -> ForumForgetReport:
        questions = c.execute("DELETE FROM thread_questions WHERE asked_at < ?", (before,))
        claims = c.execute(
            "DELETE FROM forum_posts WHERE claimed_at < ?", (self._claim_floor(before),)
        )
        return ForumForgetReport(questions.rowcount, claims.rowcount)

    def _prune(self, c: sqlite3.Connection) -> ForumForgetReport:
        days = self.privacy.retention_days
        if not days:
            return ForumForgetReport()
        return self._delete_before(c, self.clock() - days * DAY)

    def forget(self, before: float) -> ForumForgetReport:
        """Delete the thread questions asked before ``before`` (UNIX time) and the claims made
        before it, except those of the last :data:`CLAIM_KEEP_DAYS` days. Nothing here is
        linked to a user, so there is no forget by user. A missing file stays missing."""
        if not self.path.is_file():
            return ForumForgetReport()
        with self._write() as c:
            report = self._delete_before(c, before)
            row = c.execute(
                "SELECT COUNT(*) FROM forum_posts WHERE claimed_at < ?", (before,)
            ).fetchone()
            report.forum_posts_kept = int(row[0])
        return report

    # -- forum posts -----------------------------------------------------------------------------
    def claim_post(self, thread_id: int, forum_id: int) -> bool:
        """True when this call took the post on (it was never claimed before): only then is it
        answered."""
        with self._write() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO forum_posts (thread_id, forum_id, claimed_at) "
                "VALUES (?, ?, ?)",
                (thread_id, forum_id, self.clock()),
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
        with translating(self._db_error):
            row = self.conn.execute(
                "SELECT outcome FROM forum_posts WHERE thread_id=?", (thread_id,)
            ).fetchone()
        return row[0] if row else None

    def claimed(self, thread_ids: Sequence[int]) -> set[int]:
        """Those of ``thread_ids`` already claimed (a catch-up after a restart skips them)."""
        if not thread_ids:
            return set()
        marks = ",".join("?" * len(thread_ids))
        with translating(self._db_error):
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
                (thread_id, seq, question, self.clock()),
            )
            c.execute(
                "DELETE FROM thread_questions WHERE thread_id=? AND seq<=?",
                (thread_id, seq - KEEP_QUESTIONS),
            )

    def questions(self, thread_id: int) -> list[str]:
        """The thread's remembered questions, oldest first ([] for a thread the bot never
        answered in)."""
        with translating(self._db_error):
            rows = self.conn.execute(
                "SELECT question FROM thread_questions WHERE thread_id=? ORDER BY seq",
                (thread_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def threads(self) -> set[int]:
        """Every thread the bot answered a question in."""
        with translating(self._db_error):
            rows = self.conn.execute("SELECT DISTINCT thread_id FROM thread_questions").fetchall()
        return {r[0] for r in rows}
