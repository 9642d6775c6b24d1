"""The feedback log: every answer the bot sends, the 👍 / 👎 votes on it, retention and forget.

``community.sqlite3`` in the data dir (WAL; its own file, see :mod:`index.community`):

- ``feedback_answers``: one row per logged answer -- when, the question as asked, where
  (origin "discord" or "cli", channel and server ids), the quote with its article, title and
  character offsets, the confidence, whether the engine abstained, and the question's
  embedding (float32 bytes, the vector retrieval already computed: ``Answer.query_vector``)
  so ``gaps`` groups questions without a model. The asker's user id only with
  ``privacy.store_user_ids``;
- ``feedback_votes``: one row per (answer, user): +1 or -1 and when. A second click by the same
  user changes or keeps that row, never adds one. The user key is ``id:<user id>`` with
  ``privacy.store_user_ids``, otherwise ``h:<salted SHA-256 of the id>`` (the salt is random
  per data dir, in ``feedback_meta``): one vote per user still holds and ``forget --user``
  still finds the votes, but the file names nobody;
- rows older than ``privacy.retention_days`` are deleted when the file is opened and at every
  write (votes go with their answer).

Answer ids never repeat (AUTOINCREMENT), so a button on a deleted answer cannot vote on a new one.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.community.db import CommunityDB
from index.errors import IndexCorruptError, NewsdeskError
from index.models import Answer
from index.sqlite_util import immediate, sqlite_error, translating

DAY = 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asked_at REAL NOT NULL,
    question TEXT NOT NULL,
    origin TEXT NOT NULL,
    channel_id INTEGER,
    guild_id INTEGER,
    user_id INTEGER,
    quote TEXT,
    article_id TEXT,
    title TEXT,
    start_offset INTEGER,
    end_offset INTEGER,
    confidence REAL NOT NULL,
    abstained INTEGER NOT NULL,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS feedback_answers_time ON feedback_answers(asked_at);
CREATE INDEX IF NOT EXISTS feedback_answers_user ON feedback_answers(user_id);
CREATE TABLE IF NOT EXISTS feedback_votes (
    answer_id INTEGER NOT NULL REFERENCES feedback_answers(id) ON DELETE CASCADE,
    user_key TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (-1, 1)),
    voted_at REAL NOT NULL,
    PRIMARY KEY (answer_id, user_key)
);
CREATE INDEX IF NOT EXISTS feedback_votes_user ON feedback_votes(user_key);
CREATE TABLE IF NOT EXISTS feedback_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_ANSWER_COLUMNS = (
    "a.id, a.asked_at, a.question, a.origin, a.channel_id, a.guild_id, a.quote, a.article_id, "
    "a.title, a.start_offset, a.end_offset, a.confidence, a.abstained"
)
_VOTE_TOTALS = (
    "LEFT JOIN (SELECT answer_id, SUM(value = 1) AS up, SUM(value = -1) AS down "
    "FROM feedback_votes GROUP BY answer_id) v ON v.answer_id = a.id"
)


class AnswerGoneError(NewsdeskError):
    """A vote for an answer that is no longer logged (past retention, or forgotten)."""


@dataclass
class LoggedAnswer:
    """One logged answer with its vote totals."""

    id: int
    asked_at: float
    question: str
    origin: str
    channel_id: int | None
    guild_id: int | None
    quote: str | None
    article_id: str | None
    title: str | None
    start: int | None
    end: int | None
    confidence: float
    abstained: bool
    up: int = 0
    down: int = 0

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> LoggedAnswer:
        fields: tuple[Any, ...] = (*r[:12], bool(r[12]), int(r[13] or 0), int(r[14] or 0))
        return cls(*fields)

    def to_json(self) -> dict[str, Any]:
        from index.community.periods import iso

        return {
            "id": self.id,
            "asked_at": iso(self.asked_at),
            "question": self.question,
            "origin": self.origin,
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "quote": self.quote,
            "article": self.article_id,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "confidence": round(self.confidence, 4),
            "abstained": self.abstained,
            "up": self.up,
            "down": self.down,
        }


@dataclass
class FeedbackSummary:
    """``newsdesk feedback`` / ``/feedback``: totals over a period and the worst-rated answers."""

    since: float | None
    answers: int  # answers with a quote
    abstentions: int
    up: int
    down: int
    worst: list[LoggedAnswer] = field(default_factory=list)

    @property
    def share_up(self) -> float | None:
        """👍 / (👍 + 👎); None without votes."""
        votes = self.up + self.down
        return self.up / votes if votes else None

    def to_json(self) -> dict[str, Any]:
        from index.community.periods import iso

        share = self.share_up
        return {
            "since": iso(self.since) if self.since is not None else None,
            "answers": self.answers,
            "abstentions": self.abstentions,
            "up": self.up,
            "down": self.down,
            "share_up": round(share, 4) if share is not None else None,
            "worst": [a.to_json() for a in self.worst],
        }


@dataclass
class GapRow:
    """A question that feeds ``gaps``: an abstention, or an answer someone rated 👎."""

    id: int
    asked_at: float
    question: str
    channel_id: int | None
    abstained: bool
    down: int
    vector: np.ndarray | None


@dataclass
class ForgetReport:
    answers: int = 0
    votes: int = 0

    def summary(self) -> str:
        a = "answer" if self.answers == 1 else "answers"
        v = "vote" if self.votes == 1 else "votes"
        return f"deleted {self.answers} logged {a} and {self.votes} {v}"

    def to_json(self) -> dict[str, int]:
        return {"answers": self.answers, "votes": self.votes}


def feedback_error(path: Path, e: sqlite3.DatabaseError) -> NewsdeskError:
    return sqlite_error(
        path,
        e,
        busy="the feedback log {path} is busy ({text}); try again in a moment",
        damaged="the feedback log {path} cannot be read ({text}); move it away to start a new "
        "one (votes and logged questions in it are lost)",
        damaged_error=IndexCorruptError,
    )


class FeedbackStore(CommunityDB):
    """``community.sqlite3``'s feedback tables: one connection per thread, opened on first use
    (a data dir without the file is read as an empty log and never creates it)."""

    SCHEMA = _SCHEMA
    _salt: bytes | None = None  # read from the file on first use (:meth:`_salt_bytes`)

    # -- connections ---------------------------------------------------------------------------
    def _db_error(self, e: sqlite3.DatabaseError) -> Exception:
        return feedback_error(self.path, e)

    def _prune(self, c: sqlite3.Connection) -> int:
        days = self.privacy.retention_days
        if not days:
            return 0
        cur = c.execute(
            "DELETE FROM feedback_answers WHERE asked_at < ?", (self.clock() - days * DAY,)
        )
        return cur.rowcount

    # -- user keys -------------------------------------------------------------------------------
    def _salt_bytes(self, c: sqlite3.Connection) -> bytes:
        if self._salt is None:
            row = c.execute("SELECT value FROM feedback_meta WHERE key = 'salt'").fetchone()
            if row is None:
                c.execute(
                    "INSERT OR IGNORE INTO feedback_meta (key, value) VALUES ('salt', ?)",
                    (secrets.token_hex(16),),
                )
                row = c.execute("SELECT value FROM feedback_meta WHERE key = 'salt'").fetchone()
            self._salt = bytes.fromhex(row[0])
        return self._salt

    def _keys(self, c: sqlite3.Connection, user_id: int) -> tuple[str, str]:
        """(the key a vote is stored under now, the other form): ``id:`` or ``h:``."""
        digest = hashlib.sha256(self._salt_bytes(c) + str(int(user_id)).encode()).hexdigest()
        hashed, plain = f"h:{digest[:32]}", f"id:{int(user_id)}"
        return (plain, hashed) if self.privacy.store_user_ids else (hashed, plain)

    # -- writing ---------------------------------------------------------------------------------
    def log_answer(
        self,
        answer: Answer,
        *,
        origin: str = "discord",
        channel_id: int | None = None,
        guild_id: int | None = None,
        user_id: int | None = None,
    ) -> int | None:
        """Log ``answer`` (a quote or an abstention); its id, or None for small talk."""
        if answer.smalltalk is not None:
            return None
        q = answer.quote
        vec = answer.query_vector
        blob = np.asarray(vec, dtype=np.float32).tobytes() if vec is not None else None
        keep_user = user_id if self.privacy.store_user_ids else None
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO feedback_answers (asked_at, question, origin, channel_id, guild_id, "
                "user_id, quote, article_id, title, start_offset, end_offset, confidence, "
                "abstained, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.clock(),
                    answer.question,
                    origin,
                    channel_id,
                    guild_id,
                    keep_user,
                    q.text if q else None,
                    q.article_id if q else None,
                    q.title if q else None,
                    q.start if q else None,
                    q.end if q else None,
                    float(answer.confidence),
                    int(answer.abstained),
                    blob,
                ),
            )
            return int(cur.lastrowid or 0)

    def vote(self, answer_id: int, user_id: int, value: int) -> tuple[str, int]:
        """Record ``user_id``'s vote (+1 or -1) on an answer: ("recorded", value) for a first
        vote, ("changed", value) for a switched one, ("kept", value) when it was already so.
        :class:`AnswerGoneError` when the answer is no longer logged."""
        if value not in (1, -1):
            raise ValueError(f"a vote is +1 or -1, not {value!r}")
        with self._write() as c:
            if (
                c.execute("SELECT 1 FROM feedback_answers WHERE id = ?", (answer_id,)).fetchone()
                is None
            ):
                raise AnswerGoneError(
                    "this answer is no longer in the feedback log (older than the retention "
                    "period, or deleted)"
                )
            key, other = self._keys(c, user_id)
            rows = c.execute(
                "SELECT user_key, value FROM feedback_votes "
                "WHERE answer_id = ? AND user_key IN (?, ?)",
                (answer_id, key, other),
            ).fetchall()
            before = rows[0][1] if rows else None
            c.execute(
                "DELETE FROM feedback_votes WHERE answer_id = ? AND user_key IN (?, ?)",
                (answer_id, key, other),
            )
            c.execute(
                "INSERT INTO feedback_votes (answer_id, user_key, value, voted_at) "
                "VALUES (?, ?, ?, ?)",
                (answer_id, key, value, self.clock()),
            )
        if before is None:
            return "recorded", value
        return ("kept" if before == value else "changed"), value

    def forget(self, *, user_id: int | None = None, before: float | None = None) -> ForgetReport:
        """Delete a user's votes (and, with ``store_user_ids``, the answers to their questions)
        and/or everything logged before ``before`` (UNIX time); both: that user's rows before it."""
        if user_id is None and before is None:
            raise NewsdeskError("say what to forget: --user ID and/or --before DATE")
        report = ForgetReport()
        if not self.path.is_file():
            return report
        with self._write() as c:
            a_where: list[str] = []
            v_where: list[str] = []
            a_args: list[object] = []
            v_args: list[object] = []
            if user_id is not None:
                keys = self._keys(c, user_id)
                a_where.append("user_id = ?")
                a_args.append(int(user_id))
                v_where.append("user_key IN (?, ?)")
                v_args.extend(keys)
            if before is not None:
                a_where.append("asked_at < ?")
                a_args.append(before)
                v_where.append("voted_at < ?")
                v_args.append(before)
            a_sql = " AND ".join(a_where)
            v_sql = " AND ".join(v_where)
            ids = f"SELECT id FROM feedback_answers WHERE {a_sql}"
            report.votes = c.execute(
                f"SELECT COUNT(*) FROM feedback_votes WHERE ({v_sql}) OR answer_id IN ({ids})",
                (*v_args, *a_args),
            ).fetchone()[0]
            c.execute(f"DELETE FROM feedback_votes WHERE {v_sql}", v_args)
            report.answers = c.execute(
                f"DELETE FROM feedback_answers WHERE {a_sql}", a_args
            ).rowcount
        return report

    def prune(self) -> int:
        """Delete what ``privacy.retention_days`` no longer keeps; the number of answers."""
        if not self.path.is_file():
            return 0
        with translating(self._db_error), immediate(self.conn, self._db_error) as c:
            return self._prune(c)

    # -- reading ---------------------------------------------------------------------------------
    def get(self, answer_id: int) -> LoggedAnswer | None:
        with self._read() as c:
            if c is None:
                return None
            r = c.execute(
                f"SELECT {_ANSWER_COLUMNS}, v.up, v.down FROM feedback_answers a {_VOTE_TOTALS} "
                "WHERE a.id = ?",
                (answer_id,),
            ).fetchone()
        return LoggedAnswer.from_row(r) if r else None

    def summary(self, since: float | None = None, worst: int = 5) -> FeedbackSummary:
        """Totals over the answers logged since ``since`` (all kept ones when None), and the
        ``worst`` answers with the most 👎 (then the fewest 👍), each with at least one 👎."""
        out = FeedbackSummary(since, 0, 0, 0, 0)
        with self._read() as c:
            if c is None:
                return out
            lo = since if since is not None else float("-inf")
            r = c.execute(
                "SELECT COALESCE(SUM(a.abstained = 0), 0), COALESCE(SUM(a.abstained), 0), "
                "COALESCE(SUM(v.up), 0), COALESCE(SUM(v.down), 0) "
                f"FROM feedback_answers a {_VOTE_TOTALS} WHERE a.asked_at >= ?",
                (lo,),
            ).fetchone()
            out.answers, out.abstentions, out.up, out.down = (int(x) for x in r)
            rows = c.execute(
                f"SELECT {_ANSWER_COLUMNS}, v.up, v.down FROM feedback_answers a {_VOTE_TOTALS} "
                "WHERE a.asked_at >= ? AND v.down > 0 "
                "ORDER BY v.down DESC, COALESCE(v.up, 0) ASC, a.asked_at DESC LIMIT ?",
                (lo, worst),
            ).fetchall()
        out.worst = [LoggedAnswer.from_row(r) for r in rows]
        return out

    def gap_rows(self, since: float | None = None) -> list[GapRow]:
        """Every abstention and every answer with a 👎 since ``since``, oldest first."""
        with self._read() as c:
            if c is None:
                return []
            rows = c.execute(
                "SELECT a.id, a.asked_at, a.question, a.channel_id, a.abstained, "
                f"COALESCE(v.down, 0), a.vector FROM feedback_answers a {_VOTE_TOTALS} "
                "WHERE a.asked_at >= ? AND (a.abstained = 1 OR v.down > 0) ORDER BY a.id",
                (since if since is not None else float("-inf"),),
            ).fetchall()
        return [
            GapRow(
                r[0],
                r[1],
                r[2],
                r[3],
                bool(r[4]),
                int(r[5]),
                np.frombuffer(r[6], dtype=np.float32) if r[6] else None,
            )
            for r in rows
        ]
