"""``subscriptions.db``: every SQL statement of the subscriptions lives here.

SQLite (WAL) in the data dir, beside the index:

- ``subscriptions``: target, interval, announcement channel, where it was declared, the feed's
  ETag / Last-Modified, and the status shown by ``/subscriptions`` (last success, last error,
  consecutive failures, when it is next due);
- ``items``: per subscription, each feed entry link or file path with a fingerprint (a hash of
  the feed entry; a file's mtime and size) and the article it became. Unchanged entries and
  files are not fetched or read again, and an article is re-embedded only when its content hash
  changed (the pipeline checks);
- ``announcements``: new articles waiting to be announced in a Discord channel, each at most
  once per channel (a unique key), marked when sent;
- ``intents``: the outbox of announcements written down before the index commits their articles
  (see :meth:`index.feeds.engine.SyncEngine._index`).

Methods that take a connection ``c`` run inside the caller's :meth:`SubscriptionStore.transaction`,
so one sync's statements commit together.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from index.errors import NewsdeskError
from index.feeds.models import Announcement, Subscription, SubscriptionStatus
from index.models import pack_tags, unpack_tags
from index.sqlite_util import immediate, sqlite_error, translating
from index.storage.sqlite import SQLiteFile

DB_NAME = "subscriptions.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    target TEXT NOT NULL UNIQUE,
    interval REAL NOT NULL,
    channel INTEGER,
    origin TEXT NOT NULL,
    guild INTEGER,
    added_at TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    etag TEXT,
    last_modified TEXT,
    last_attempt TEXT,
    last_success TEXT,
    last_error TEXT,
    last_error_at TEXT,
    last_warning TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    rounds INTEGER NOT NULL DEFAULT 0,
    next_due REAL NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS items (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    article_id TEXT NOT NULL,
    PRIMARY KEY (subscription_id, key)
);
CREATE TABLE IF NOT EXISTS announcements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel INTEGER NOT NULL,
    article_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    title TEXT NOT NULL,
    link TEXT,
    summary TEXT,
    published TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (channel, article_id)
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL,
    channel INTEGER NOT NULL,
    article_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    title TEXT NOT NULL,
    link TEXT,
    published TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (channel, article_id)
);
"""

_COLUMNS = (
    "id, kind, target, interval, channel, origin, guild, added_at, title, etag, last_modified, "
    "last_attempt, last_success, last_error, last_error_at, last_warning, failures, rounds, "
    "next_due, tags"
)


# an intent row: (subscription id when written, or the row id when read back; channel,
# article id, origin, title, link, published, created at)
Intent = tuple[int, int, str, str, str, str | None, str | None, str]


class SubscriptionStore(SQLiteFile):
    """``subscriptions.db``: one connection per thread, created on first write."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(Path(data_dir) / DB_NAME)
        self.data_dir = Path(data_dir)
        self._ready = False

    def _db_error(self, e: sqlite3.DatabaseError) -> Exception:
        return subscriptions_error(self.path, e)

    def _opened(self, c: sqlite3.Connection) -> None:
        if not self._ready:
            c.executescript(_SCHEMA)
            columns = {r[1] for r in c.execute("PRAGMA table_info(subscriptions)")}
            if "guild" not in columns:  # a subscriptions.db from before servers owned theirs
                with contextlib.suppress(sqlite3.OperationalError):  # another process did it
                    c.execute("ALTER TABLE subscriptions ADD COLUMN guild INTEGER")
            if "tags" not in columns:  # from before subscriptions tagged their articles
                with contextlib.suppress(sqlite3.OperationalError):
                    c.execute("ALTER TABLE subscriptions ADD COLUMN tags TEXT NOT NULL DEFAULT ''")
            self._ready = True

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """SQLite errors inside leave as messages for a person (see :func:`subscriptions_error`)."""
        return translating(self._db_error)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate(self.conn, self._db_error) as c:
            yield c

    # -- reading -----------------------------------------------------------------------------
    def statuses(self) -> list[SubscriptionStatus]:
        if not self.exists():
            return []
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM subscriptions ORDER BY id").fetchall()
        return [self._status(r) for r in rows]

    def get(self, target: str) -> SubscriptionStatus | None:
        if not self.exists():
            return None
        r = self.conn.execute(
            f"SELECT {_COLUMNS} FROM subscriptions WHERE target=?", (target,)
        ).fetchone()
        return self._status(r) if r else None

    @staticmethod
    def _status(r: Sequence[Any]) -> SubscriptionStatus:
        sub = Subscription(
            kind=r[1],
            target=r[2],
            interval=r[3],
            channel=r[4],
            origin=r[5],
            guild=r[6],
            tags=unpack_tags(r[-1]),
        )
        return SubscriptionStatus(r[0], sub, *r[7:-1])

    def items(self, sub_id: int) -> dict[str, tuple[str, str]]:
        """key (entry link or file path) -> (fingerprint, article id)."""
        rows = self.conn.execute(
            "SELECT key, fingerprint, article_id FROM items WHERE subscription_id=?", (sub_id,)
        )
        return {k: (fp, a) for k, fp, a in rows}

    def article_ids(self, sub_id: int) -> set[str]:
        rows = self.conn.execute(
            "SELECT article_id FROM items WHERE subscription_id=?", (sub_id,)
        ).fetchall()
        return {r[0] for r in rows}

    def pending(self, limit: int) -> list[Announcement]:
        if not self.exists():
            return []
        rows = self.conn.execute(
            "SELECT id, channel, article_id, origin, title, link, summary, published "
            "FROM announcements WHERE sent_at IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [Announcement(*r) for r in rows]

    def mark_sent(self, ids: Sequence[int], when: str) -> None:
        with self.transaction() as c:
            c.executemany("UPDATE announcements SET sent_at=? WHERE id=?", [(when, i) for i in ids])

    def intents(self) -> list[Intent]:
        """Announcements written down by a round, oldest first (see ``SyncEngine._index``)."""
        rows = self.conn.execute(
            "SELECT id, channel, article_id, origin, title, link, published, created_at "
            "FROM intents ORDER BY id"
        ).fetchall()
        return [tuple(r) for r in rows]

    # -- the list of subscriptions -------------------------------------------------------------
    @staticmethod
    def reconcile(
        c: sqlite3.Connection, wanted: Sequence[Subscription], now: float, when: str
    ) -> list[str]:
        """Bring the stored subscriptions in line with ``wanted`` (the config file's); the
        targets of config subscriptions dropped because the config no longer has them."""
        rows = {
            t: (o, i) for t, o, i in c.execute("SELECT target, origin, interval FROM subscriptions")
        }
        for sub in wanted:
            if sub.target in rows:
                # a shorter interval takes effect now, not after the old one
                soon = now + sub.interval * 60
                c.execute(
                    "UPDATE subscriptions SET kind=?, interval=?, channel=?, origin=?, "
                    "guild=NULL, next_due=min(next_due, ?), tags=? WHERE target=?",
                    (
                        sub.kind,
                        sub.interval,
                        sub.channel,
                        sub.origin,
                        soon,
                        pack_tags(sub.tags),
                        sub.target,
                    ),
                )
            else:
                SubscriptionStore.insert(c, sub, when)
        keep = {s.target for s in wanted}
        dropped = []
        for target, (origin, _interval) in rows.items():
            if origin == "config" and target not in keep:
                c.execute("DELETE FROM subscriptions WHERE target=?", (target,))
                dropped.append(target)
        return dropped

    @staticmethod
    def insert(c: sqlite3.Connection, sub: Subscription, when: str) -> None:
        c.execute(
            "INSERT INTO subscriptions(kind, target, interval, channel, origin, guild, added_at, "
            "next_due, tags) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (
                sub.kind,
                sub.target,
                sub.interval,
                sub.channel,
                sub.origin,
                sub.guild,
                when,
                pack_tags(sub.tags),
            ),
        )

    @staticmethod
    def delete_target(c: sqlite3.Connection, target: str) -> None:
        c.execute("DELETE FROM subscriptions WHERE target=?", (target,))

    @staticmethod
    def delete(c: sqlite3.Connection, sub_id: int) -> None:
        c.execute("DELETE FROM subscriptions WHERE id=?", (sub_id,))

    # -- the outcome of a sync -------------------------------------------------------------------
    @staticmethod
    def record_success(
        c: sqlite3.Connection, sub_id: int, when: str, next_due: float, warning: str | None
    ) -> None:
        c.execute(
            "UPDATE subscriptions SET last_attempt=?, last_success=?, failures=0, "
            "rounds=rounds+1, next_due=?, last_warning=? WHERE id=?",
            (when, when, next_due, warning, sub_id),
        )

    @staticmethod
    def record_failure(
        c: sqlite3.Connection,
        sub_id: int,
        when: str,
        error: str | None,
        failures: int,
        next_due: float,
    ) -> None:
        c.execute(
            "UPDATE subscriptions SET last_attempt=?, last_error=?, last_error_at=?, "
            "failures=?, next_due=? WHERE id=?",
            (when, error, when, failures, next_due, sub_id),
        )

    @staticmethod
    def replace_items(
        c: sqlite3.Connection, sub_id: int, items: dict[str, tuple[str, str]]
    ) -> None:
        """The subscription's items become ``items`` (key -> (fingerprint, article id))."""
        c.execute("DELETE FROM items WHERE subscription_id=?", (sub_id,))
        c.executemany(
            "INSERT INTO items(subscription_id, key, fingerprint, article_id) VALUES (?, ?, ?, ?)",
            [(sub_id, k, fp, a) for k, (fp, a) in items.items()],
        )

    @staticmethod
    def set_feed_state(
        c: sqlite3.Connection,
        sub_id: int,
        etag: str | None,
        last_modified: str | None,
        title: str,
    ) -> None:
        c.execute(
            "UPDATE subscriptions SET etag=?, last_modified=?, title=? WHERE id=?",
            (etag, last_modified, title, sub_id),
        )

    @staticmethod
    def set_title(c: sqlite3.Connection, sub_id: int, title: str) -> None:
        c.execute("UPDATE subscriptions SET title=? WHERE id=?", (title, sub_id))

    # -- announcements ---------------------------------------------------------------------------
    @staticmethod
    def add_intents(c: sqlite3.Connection, intents: Sequence[Intent]) -> None:
        c.executemany(
            "INSERT OR IGNORE INTO intents(subscription_id, channel, article_id, origin, "
            "title, link, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            intents,
        )

    @staticmethod
    def delete_intent(c: sqlite3.Connection, intent_id: int) -> None:
        c.execute("DELETE FROM intents WHERE id=?", (intent_id,))

    @staticmethod
    def drop_intent(c: sqlite3.Connection, channel: int, article_id: str) -> None:
        """The intent of an announcement now queued."""
        c.execute("DELETE FROM intents WHERE channel=? AND article_id=?", (channel, article_id))

    @staticmethod
    def queue(
        c: sqlite3.Connection,
        channel: int,
        article_id: str,
        origin: str,
        title: str,
        link: str | None,
        summary: str | None,
        published: str | None,
        when: str,
    ) -> int:
        """Queue one announcement (at most once per channel); 1 if it was new."""
        c.execute(
            "INSERT OR IGNORE INTO announcements(channel, article_id, origin, title, link, "
            "summary, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (channel, article_id, origin, title, link, summary, published, when),
        )
        return int(c.execute("SELECT changes()").fetchone()[0])

    @staticmethod
    def prune_announcements(c: sqlite3.Connection, unsent_before: str, sent_before: str) -> None:
        """Forget announcements never sent since ``unsent_before`` and sent before
        ``sent_before``."""
        c.execute(
            "DELETE FROM announcements WHERE sent_at IS NULL AND created_at < ?", (unsent_before,)
        )
        c.execute(
            "DELETE FROM announcements WHERE sent_at IS NOT NULL AND sent_at < ?", (sent_before,)
        )


def subscriptions_error(path: Path, e: sqlite3.DatabaseError) -> NewsdeskError:
    """A person's message for an SQLite error on ``subscriptions.db``."""
    return sqlite_error(
        path,
        e,
        busy="{path} is busy ({text}); try again in a moment",
        damaged="the subscription database {path} is damaged or unreadable ({text}); move it "
        "away to start the subscriptions afresh (the index itself is not affected)",
    )
