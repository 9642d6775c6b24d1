"""Subscriptions: RSS/Atom feeds and folders kept in sync with the index.

Subscriptions come from the config file (``[[feeds]]``, ``[[folders]]``) and from commands
(``/subscribe``, ``newsdesk subscribe``). Their state lives in ``subscriptions.db`` (SQLite, WAL)
in the data dir, beside the index:

- ``subscriptions``: target, interval, announcement channel, where it was declared, the feed's
  ETag / Last-Modified, and the status shown by ``/subscriptions`` (last success, last error,
  consecutive failures, when it is next due);
- ``items``: per subscription, each feed entry link or file path with a fingerprint (a hash of
  the feed entry; a file's mtime and size) and the article it became. Unchanged entries and
  files are not fetched or read again, and an article is re-embedded only when its content hash
  changed (the pipeline checks);
- ``announcements``: new articles waiting to be announced in a Discord channel, each at most
  once per channel (a unique key), marked when sent.

One round (:meth:`SyncEngine.run_due`) syncs every subscription that is due, one after the other;
an error in one is recorded in its status and never stops the others. After an error a
subscription waits twice its interval, doubling at each further error up to
``sync.max_backoff`` minutes. The first successful sync of a subscription indexes what is there
without announcing it; announcements start with the articles that appear after it.

Feeds: a conditional GET (``If-None-Match`` / ``If-Modified-Since``); HTTP 304 means nothing
changed. Only new entries and entries whose fingerprint changed are fetched. Articles that drop
off a feed stay in the index (feeds show only their latest entries).

Folders: added and edited files are indexed, files deleted from the folder are removed from the
index. A folder that is missing altogether is an error, and nothing is removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urldefrag, urlsplit

from index.errors import (
    ArticleNotFoundError,
    DiskFullError,
    IndexBusyError,
    NewsdeskError,
    SourceError,
)
from index.models import Document, http_link
from index.storage.sqlite import SQLiteFile, disk_full_reason, rollback

if TYPE_CHECKING:
    from index.config import Settings
    from index.pipeline import Pipeline

log = logging.getLogger(__name__)

DB_NAME = "subscriptions.db"
Kind = Literal["feed", "folder"]
Origin = Literal["config", "command"]

MAX_NOTE_CHARS = 300
PENDING_DAYS = 2  # announcements not sent within this many days are dropped (bot not running)
SENT_DAYS = 30  # sent announcements are remembered this long (at most once per channel)

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
    next_due REAL NOT NULL DEFAULT 0
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
    "next_due"
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Subscription:
    kind: Kind
    target: str  # the feed URL, or the folder's absolute path
    interval: float  # minutes
    channel: int | None = None  # Discord channel for announcements
    origin: Origin = "command"
    # the Discord server that made it (/subscribe): listed and removed only there;
    # None = the operator's (config file or `newsdesk subscribe`)
    guild: int | None = None

    @property
    def label(self) -> str:
        """A short name: the feed's host and path, or the folder's name."""
        if self.kind == "folder":
            return Path(self.target).name or self.target
        parts = urlsplit(self.target)
        return (parts.netloc + parts.path).rstrip("/") or self.target


@dataclass
class SubscriptionStatus:
    """A subscription with its state, as ``/subscriptions`` and ``newsdesk subscriptions`` show."""

    id: int
    subscription: Subscription
    added_at: str
    title: str = ""
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_warning: str | None = None
    failures: int = 0
    rounds: int = 0
    next_due: float = 0.0  # seconds since the epoch
    articles: int = 0  # of its articles, those in the index

    @property
    def name(self) -> str:
        return self.title or self.subscription.label

    def to_json(self) -> dict[str, Any]:
        sub = self.subscription
        return {
            "kind": sub.kind,
            "target": sub.target,
            "title": self.title,
            "interval_minutes": sub.interval,
            # Discord ids as strings: snowflakes exceed JavaScript's exact integers (2**53)
            "channel": None if sub.channel is None else str(sub.channel),
            "origin": sub.origin,
            "guild": None if sub.guild is None else str(sub.guild),
            "added_at": self.added_at,
            "last_attempt": self.last_attempt,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_warning": self.last_warning,
            "failures": self.failures,
            "next_due": _iso(self.next_due) if self.next_due else None,
            "articles": self.articles,
        }


@dataclass
class SyncResult:
    """What syncing one subscription did."""

    kind: Kind
    target: str
    ok: bool = True
    not_modified: bool = False
    busy: bool = False  # the index was being updated: tried again at the next round
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    new_articles: list[str] = field(default_factory=list)  # ids of articles new to the index
    announced: int = 0  # new articles queued for announcement
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        if self.busy:
            return "index busy, will try again"
        if not self.ok:
            return f"error: {self.error}"
        if self.not_modified:
            return "not modified"
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        n = self.chunks_embedded
        return ", ".join(parts) + f" ({n} passage{'' if n == 1 else 's'} embedded)"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["passages_embedded"] = data.pop("chunks_embedded")  # "passages" in all JSON
        return data


@dataclass(frozen=True)
class Announcement:
    """A new article to announce in a Discord channel."""

    id: int
    channel: int
    article_id: str
    origin: str  # the feed's title or the folder's name
    title: str
    link: str | None
    summary: str | None
    published: str | None


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(microsecond=0).isoformat()


def _note(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 1] + "…"


def feed_target(url: str) -> str:
    """The canonical form of a feed address (as the index names sources: no fragment)."""
    return urldefrag(url.strip())[0]


def folder_target(path: str | os.PathLike[str]) -> str:
    from index.ingest.sources import resolve_path

    return str(resolve_path(Path(path).expanduser(), str(path)))


def visible_from(status: SubscriptionStatus, guild: int | None) -> bool:
    """Whether Discord server ``guild`` may see ``status`` (None: the operator, sees all)."""
    owner = status.subscription.guild
    return guild is None or owner is None or owner == guild


def configured(settings: Settings) -> list[Subscription]:
    """The subscriptions declared in the config file (``[[feeds]]`` and ``[[folders]]``)."""
    subs = [
        Subscription("feed", feed_target(f.url), f.interval, f.channel or None, "config")
        for f in settings.feeds
    ]
    subs += [
        Subscription("folder", folder_target(f.path), f.interval, f.channel or None, "config")
        for f in settings.folders
        if f.path is not None
    ]
    return subs


# --------------------------------------------------------------------------- storage


class SubscriptionStore(SQLiteFile):
    """``subscriptions.db``: one connection per thread, created on first write."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(Path(data_dir) / DB_NAME)
        self.data_dir = Path(data_dir)
        self._ready = False

    def _db_error(self, e: sqlite3.DatabaseError) -> Exception:
        return _db_error(self.path, e)

    def _opened(self, c: sqlite3.Connection) -> None:
        if not self._ready:
            c.executescript(_SCHEMA)
            columns = {r[1] for r in c.execute("PRAGMA table_info(subscriptions)")}
            if "guild" not in columns:  # a subscriptions.db from before servers owned theirs
                with contextlib.suppress(sqlite3.OperationalError):  # another process did it
                    c.execute("ALTER TABLE subscriptions ADD COLUMN guild INTEGER")
            self._ready = True

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as e:
            raise _db_error(self.path, e) from e
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            rollback(c)  # never hides the original error (e.g. SQLITE_FULL)
            raise

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
            kind=r[1], target=r[2], interval=r[3], channel=r[4], origin=r[5], guild=r[6]
        )
        return SubscriptionStatus(r[0], sub, *r[7:])

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


def _db_error(path: Path, e: sqlite3.DatabaseError) -> NewsdeskError:
    text = str(e) or type(e).__name__
    if isinstance(e, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return IndexBusyError(f"{path} is busy ({text}); try again in a moment")
    full = disk_full_reason(e, path)
    if full is not None:
        return DiskFullError(str(path), full)
    return NewsdeskError(
        f"the subscription database {path} is damaged or unreadable ({text}); move it away to "
        "start the subscriptions afresh (the index itself is not affected)"
    )


# --------------------------------------------------------------------------- the engine


Clock = Callable[[], float]


class SyncEngine:
    """Runs subscriptions against a :class:`~index.pipeline.Pipeline` (the one facade)."""

    def __init__(self, pipeline: Pipeline, clock: Clock = time.time) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.store = SubscriptionStore(pipeline.data_dir)
        self.clock = clock
        self._round = threading.Lock()  # one sync at a time per engine
        self._reconciled = False

    def close(self) -> None:
        self.store.close()

    # -- the list ----------------------------------------------------------------------------
    def _reconcile(self) -> None:
        """Bring the stored subscriptions in line with the config file (once per engine)."""
        if self._reconciled:
            return
        wanted = configured(self.settings)
        if wanted or self.store.exists():
            with self._db(), self.store.transaction() as c:
                rows = {
                    t: (o, i)
                    for t, o, i in c.execute("SELECT target, origin, interval FROM subscriptions")
                }
                for sub in wanted:
                    if sub.target in rows:
                        # a shorter interval takes effect now, not after the old one
                        soon = self.clock() + sub.interval * 60
                        c.execute(
                            "UPDATE subscriptions SET kind=?, interval=?, channel=?, origin=?, "
                            "guild=NULL, next_due=min(next_due, ?) WHERE target=?",
                            (sub.kind, sub.interval, sub.channel, sub.origin, soon, sub.target),
                        )
                    else:
                        self._insert(c, sub)
                keep = {s.target for s in wanted}
                for target, (origin, _interval) in rows.items():
                    if origin == "config" and target not in keep:
                        c.execute("DELETE FROM subscriptions WHERE target=?", (target,))
                        log.info("subscription %s is no longer in the config: dropped", target)
        self._reconciled = True

    def _insert(self, c: sqlite3.Connection, sub: Subscription) -> None:
        c.execute(
            "INSERT INTO subscriptions(kind, target, interval, channel, origin, guild, added_at, "
            "next_due) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
            (
                sub.kind,
                sub.target,
                sub.interval,
                sub.channel,
                sub.origin,
                sub.guild,
                _iso(self.clock()),
            ),
        )

    @contextlib.contextmanager
    def _db(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as e:
            raise _db_error(self.store.path, e) from e

    def statuses(self, guild: int | None = None) -> list[SubscriptionStatus]:
        """Every subscription with its status and the number of its articles in the index.

        With ``guild`` (a Discord server): only what that server may see, its own
        subscriptions and the operator's (config file, ``newsdesk subscribe``), never another
        server's (their feeds, channels and errors are theirs).
        """
        self._reconcile()
        with self._db():
            out = [s for s in self.store.statuses() if visible_from(s, guild)]
            if out:
                indexed = {r.id for r in self.pipeline.list_articles()}
                for s in out:
                    s.articles = len(self.store.article_ids(s.id) & indexed)
        return out

    def find(self, ref: str, guild: int | None = None) -> SubscriptionStatus:
        """A subscription by its URL, folder path, title or short label (among those
        ``guild`` may see, see :meth:`statuses`)."""
        ref = ref.strip()
        statuses = self.statuses(guild)
        if ref.startswith("#") and ref[1:].isdigit():  # an id, as autocomplete gives it
            for s in statuses:
                if s.id == int(ref[1:]):
                    return s
        for cand in (ref, feed_target(ref)):
            for s in statuses:
                if s.subscription.target == cand:
                    return s
        with contextlib.suppress(OSError, ValueError):
            path = folder_target(ref)
            for s in statuses:
                if s.subscription.target == path:
                    return s
        low = ref.lower()
        matches = [s for s in statuses if low in (s.title.lower(), s.subscription.label.lower())]
        if len(matches) == 1:
            return matches[0]
        raise SourceError(ref, "no such subscription (`newsdesk subscriptions` lists them)")

    def subscribe(
        self,
        kind: Kind,
        target: str,
        *,
        interval: float | None = None,
        channel: int | None = None,
        guild: int | None = None,
    ) -> tuple[SubscriptionStatus, SyncResult]:
        """Add a subscription and sync it at once (its articles are indexed, not announced).
        ``guild``: the Discord server it belongs to (None: the operator's).

        Raises :class:`SourceError` when the feed or folder cannot be read: nothing is kept then.
        """
        self._reconcile()
        if kind == "feed":
            target = feed_target(target)
            default = 30.0
        else:
            target = folder_target(target)
            default = 5.0
            if Path(target).is_file():
                raise SourceError(
                    target,
                    "is a file: subscribe to a folder or a feed (`newsdesk index FILE` adds "
                    "a single file)",
                )
            if not Path(target).is_dir():
                raise SourceError(target, "no such folder")
        sub = Subscription(kind, target, interval or default, channel or None, "command", guild)
        if not self._round.acquire(timeout=_lock_wait()):
            raise IndexBusyError("subscriptions are being synced; try again when it finishes")
        try:
            with self._db():
                existing = self.store.get(target)
                if existing is not None:
                    if not visible_from(existing, guild):  # never say whose it is
                        raise SourceError(
                            target, "already kept in sync (its articles are in the index)"
                        )
                    raise SourceError(target, "already subscribed")
                with self.store.transaction() as c:
                    self._insert(c, sub)
                status = self.store.get(target)
            assert status is not None
            result = self._sync(status)
            if not result.ok or result.busy:
                with self._db(), self.store.transaction() as c:
                    c.execute("DELETE FROM subscriptions WHERE target=?", (target,))
                if result.busy:
                    raise IndexBusyError(
                        "the index is being updated; try subscribing again when it finishes"
                    )
                raise SourceError(target, result.error or "cannot be read")
        finally:
            self._round.release()
        return self.find(target, guild), result

    def unsubscribe(self, ref: str, guild: int | None = None) -> SubscriptionStatus:
        """Remove a subscription made by a command (its articles stay in the index).

        With ``guild``, only one that server made: the operator's are removed by the operator.
        """
        status = self.find(ref, guild)
        sub = status.subscription
        if sub.origin == "config":
            where = "the config file" if guild is not None else self.settings.config_path
            raise SourceError(
                sub.target,
                f"declared in {where or 'the config file'}: remove it there and restart the bot",
            )
        if guild is not None and sub.guild != guild:
            raise SourceError(
                sub.target,
                "added by the bot's operator (`newsdesk subscribe`): only they can remove it, "
                "with `newsdesk unsubscribe`",
            )
        with self._db(), self.store.transaction() as c:
            c.execute("DELETE FROM subscriptions WHERE id=?", (status.id,))
        return status

    # -- rounds ------------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """When the next subscription is due (seconds since the epoch), None without any."""
        dues = [s.next_due for s in self.statuses()]
        return min(dues) if dues else None

    def run_due(self) -> list[SyncResult]:
        """Sync every subscription that is due; [] when another round is still running."""
        return self._run(lambda s, now: s.next_due <= now, wait=False)

    def run_all(self) -> list[SyncResult]:
        """Sync every subscription once, due or not (``newsdesk sync``)."""
        return self._run(lambda s, now: True, wait=True)

    def _run(
        self, want: Callable[[SubscriptionStatus, float], bool], *, wait: bool
    ) -> list[SyncResult]:
        if not self._round.acquire(timeout=_lock_wait() if wait else 0):
            if wait:
                raise IndexBusyError("subscriptions are being synced; try again when it finishes")
            return []
        try:
            self._recover_intents()
            now = self.clock()
            results = []
            for status in self.statuses():
                if want(status, now):
                    results.append(self._sync(status))
            return results
        finally:
            self._round.release()

    def _sync(self, status: SubscriptionStatus) -> SyncResult:
        """Sync one subscription and record the outcome; never raises for its own errors."""
        sub = status.subscription
        result = SyncResult(sub.kind, sub.target)
        t0 = time.perf_counter()
        started = _iso(self.clock())
        try:
            if sub.kind == "feed":
                self._sync_feed(status, result)
            else:
                self._sync_folder(status, result)
        except IndexBusyError as e:
            log.info("%s: %s; trying again at the next round", sub.target, e)
            result.busy = True
        except SourceError as e:  # the subscription's own address needs no repeating
            result.ok = False
            result.error = _note(e.reason if e.source == sub.target else str(e))
        except NewsdeskError as e:
            result.ok, result.error = False, _note(str(e))
        except Exception as e:
            log.exception("unexpected error while syncing %s", sub.target)
            result.ok = False
            result.error = f"unexpected error ({type(e).__name__}); details in the log"
        result.seconds = time.perf_counter() - t0
        if not result.busy:
            self._record(status, result, started)
        log.info("synced %s: %s", sub.target, result.summary())
        return result

    def _record(self, status: SubscriptionStatus, result: SyncResult, when: str) -> None:
        sub = status.subscription
        now = self.clock()
        with self._db(), self.store.transaction() as c:
            if result.ok:
                warning = "; ".join(result.skipped[:3]) or None
                c.execute(
                    "UPDATE subscriptions SET last_attempt=?, last_success=?, failures=0, "
                    "rounds=rounds+1, next_due=?, last_warning=? WHERE id=?",
                    (when, when, now + sub.interval * 60, warning and _note(warning), status.id),
                )
            else:
                failures = status.failures + 1
                delay = backoff_minutes(sub.interval, failures, self.settings.sync.max_backoff)
                c.execute(
                    "UPDATE subscriptions SET last_attempt=?, last_error=?, last_error_at=?, "
                    "failures=?, next_due=? WHERE id=?",
                    (when, result.error, when, failures, now + delay * 60, status.id),
                )

    # -- feeds -------------------------------------------------------------------------------
    def _sync_feed(self, status: SubscriptionStatus, result: SyncResult) -> None:
        from index.ingest.sources import poll_feed

        sub = status.subscription
        items = self.store.items(status.id)
        poll = poll_feed(
            sub.target,
            self.settings.fetch,
            etag=status.etag if status.rounds else None,
            last_modified=status.last_modified if status.rounds else None,
            known={k: fp for k, (fp, _a) in items.items()},
        )
        if poll.not_modified:
            result.not_modified = True
            return
        result.skipped = [str(w) for w in poll.warnings]
        for note in poll.notes:  # indexed from the feed's text: not skipped
            log.info("%s: %s", sub.target, note)
        origin = poll.title or status.title
        new = self._index(list(poll.documents.values()), result, status, origin)
        keep: dict[str, tuple[str, str]] = {}
        for entry in poll.entries:
            doc = poll.documents.get(entry.link)
            if doc is not None:
                keep[entry.link] = (entry.fingerprint, doc.article_id)
            elif entry.link in items:  # unchanged, or changed but unreadable: try again later
                keep[entry.link] = items[entry.link]
        result.unchanged += sum(
            1
            for e in poll.entries
            if e.link not in poll.documents and items.get(e.link, ("",))[0] == e.fingerprint
        )
        with self._db(), self.store.transaction() as c:
            c.execute("DELETE FROM items WHERE subscription_id=?", (status.id,))
            c.executemany(
                "INSERT INTO items(subscription_id, key, fingerprint, article_id) "
                "VALUES (?, ?, ?, ?)",
                [(status.id, k, fp, a) for k, (fp, a) in keep.items()],
            )
            c.execute(
                "UPDATE subscriptions SET etag=?, last_modified=?, title=? WHERE id=?",
                (poll.etag, poll.last_modified, poll.title or status.title, status.id),
            )
            result.announced = self._announce(c, status, poll.title or status.title, new)

    # -- folders -----------------------------------------------------------------------------
    def _sync_folder(self, status: SubscriptionStatus, result: SyncResult) -> None:
        from index.ingest.sources import iter_folder, read_file, resolve_path

        sub = status.subscription
        folder = Path(sub.target)
        if not folder.is_dir():
            raise SourceError(sub.target, "folder not found (nothing was removed from the index)")
        items = self.store.items(status.id)
        indexed = {r.id: r.source for r in self.pipeline.list_articles()}
        listing: dict[str, Path] = {}
        for f in iter_folder(folder):
            try:
                listing[str(resolve_path(f))] = f
            except SourceError as e:  # a symlink loop: skipped with a note, every round
                result.skipped.append(str(e))
        keep: dict[str, tuple[str, str]] = {}
        docs: list[Document] = []
        for source, file in listing.items():
            old = items.get(source)
            try:
                st = file.stat()
            except OSError as e:
                result.skipped.append(f"{source}: cannot read file ({e.strerror})")
                if old:
                    keep[source] = old
                continue
            fingerprint = f"{st.st_mtime_ns}:{st.st_size}"
            if old and old[0] == fingerprint and old[1] in indexed:
                keep[source] = old
                result.unchanged += 1
                continue
            try:
                doc = read_file(file, self.settings.fetch)
            except SourceError as e:
                result.skipped.append(str(e))
                if old:  # keep the indexed version; read again next time
                    keep[source] = ("", old[1])
                continue
            docs.append(doc)
            keep[source] = (fingerprint, doc.article_id)
        # deleted files: tracked ones no longer listed, and articles under the folder whose
        # file is gone (indexed before the subscription)
        prefix = str(resolve_path(folder)).rstrip(os.sep) + os.sep
        gone = {a for src, (_fp, a) in items.items() if src not in listing}
        for article_id, source in indexed.items():
            if source.startswith(prefix) and source not in listing and not Path(source).exists():
                gone.add(article_id)
        gone -= {a for _fp, a in keep.values()}
        new = self._index(docs, result, status, folder.name)
        if gone:
            removed = self.pipeline.remove_articles(sorted(gone))
            result.removed = len(removed)
        with self._db(), self.store.transaction() as c:
            c.execute("DELETE FROM items WHERE subscription_id=?", (status.id,))
            c.executemany(
                "INSERT INTO items(subscription_id, key, fingerprint, article_id) "
                "VALUES (?, ?, ?, ?)",
                [(status.id, k, fp, a) for k, (fp, a) in keep.items()],
            )
            c.execute("UPDATE subscriptions SET title=? WHERE id=?", (folder.name, status.id))
            result.announced = self._announce(c, status, folder.name, new)

    # -- shared ------------------------------------------------------------------------------
    def _index(
        self, docs: Sequence[Document], result: SyncResult, status: SubscriptionStatus, origin: str
    ) -> list[Document]:
        """Index ``docs`` (unchanged content is skipped by hash); the documents new to the index.

        When they will be announced, the announcements are written down *before* the index
        commits them (the ``intents`` outbox, committed first): a process killed between the
        index's commit and the announcement queue's loses nothing; the next round or the next
        look at the queue finds the intents whose articles made it into the index and queues
        them (:meth:`_recover_intents`).
        """
        if not docs:
            return []
        before = {r.id for r in self.pipeline.list_articles()}
        seen: set[str] = set()
        new = []
        for d in docs:
            if d.article_id not in before and d.article_id not in seen:
                seen.add(d.article_id)
                new.append(d)
        if new and status.subscription.channel and status.rounds > 0:
            with self._db(), self.store.transaction() as c:
                c.executemany(
                    "INSERT OR IGNORE INTO intents(subscription_id, channel, article_id, origin, "
                    "title, link, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            status.id,
                            status.subscription.channel,
                            d.article_id,
                            origin or status.subscription.label,
                            " ".join(d.title.split())[:300] or "Untitled",
                            http_link(d.url, d.source),
                            d.published,
                            _iso(self.clock()),
                        )
                        for d in new
                    ],
                )
        report = self.pipeline.add_documents(docs)
        result.added += report.added
        result.updated += report.updated
        result.unchanged += report.unchanged
        result.chunks_embedded += report.chunks_embedded
        result.new_articles = [d.article_id for d in new]
        return new

    def _announce(
        self,
        c: sqlite3.Connection,
        status: SubscriptionStatus,
        origin: str,
        new: Sequence[Document],
    ) -> int:
        """Queue announcements of ``new`` articles (not on a subscription's first sync)."""
        channel = status.subscription.channel
        if not channel or not new or status.rounds == 0:
            return 0
        queued = 0
        for d in new:
            queued += self._queue(
                c,
                channel,
                d.article_id,
                origin or status.subscription.label,
                " ".join(d.title.split())[:300] or "Untitled",
                http_link(d.url, d.source),
                d.published,
            )
            c.execute(
                "DELETE FROM intents WHERE channel=? AND article_id=?", (channel, d.article_id)
            )
        cutoff = _iso(self.clock() - PENDING_DAYS * 86400)
        old = _iso(self.clock() - SENT_DAYS * 86400)
        c.execute("DELETE FROM announcements WHERE sent_at IS NULL AND created_at < ?", (cutoff,))
        c.execute("DELETE FROM announcements WHERE sent_at IS NOT NULL AND sent_at < ?", (old,))
        return queued

    def _queue(
        self,
        c: sqlite3.Connection,
        channel: int,
        article_id: str,
        origin: str,
        title: str,
        link: str | None,
        published: str | None,
    ) -> int:
        """Queue one announcement (at most once per channel); 1 if it was new."""
        from index.search.summary import central_sentence

        summary: str | None = None
        try:
            summary = central_sentence(self.pipeline.store, article_id)
        except Exception:  # a summary is a nicety: announce without one
            log.warning("no summary for %s", article_id, exc_info=True)
        c.execute(
            "INSERT OR IGNORE INTO announcements(channel, article_id, origin, title, link, "
            "summary, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (channel, article_id, origin, title, link, summary, published, _iso(self.clock())),
        )
        return int(c.execute("SELECT changes()").fetchone()[0])

    def _recover_intents(self) -> int:
        """Queue the announcements a killed round wrote down but never queued: those whose
        article is in the index. An intent whose article is not (yet) there stays until a
        round indexes it, or for ``PENDING_DAYS`` at most."""
        if not self.store.exists():
            return 0
        with self._db():
            rows = self.store.conn.execute(
                "SELECT id, channel, article_id, origin, title, link, published, created_at "
                "FROM intents ORDER BY id"
            ).fetchall()
        if not rows:
            return 0
        stale = _iso(self.clock() - PENDING_DAYS * 86400)
        queued = 0
        with self._db(), self.store.transaction() as c:
            for iid, channel, article_id, origin, title, link, published, created in rows:
                try:
                    self.pipeline.store.get_article(article_id)
                except ArticleNotFoundError:
                    if created >= stale:
                        continue  # a round (here or elsewhere) may still be indexing it
                else:
                    queued += self._queue(c, channel, article_id, origin, title, link, published)
                    log.info("queued the announcement of %s left by an interrupted round", title)
                c.execute("DELETE FROM intents WHERE id=?", (iid,))
        return queued

    # -- announcements -----------------------------------------------------------------------
    def pending_announcements(self, limit: int = 200) -> list[Announcement]:
        self._recover_intents()
        with self._db():
            return self.store.pending(limit)

    def mark_announced(self, ids: Sequence[int]) -> None:
        if ids:
            with self._db():
                self.store.mark_sent(ids, _iso(self.clock()))


def _lock_wait() -> float:
    return float(os.environ.get("NEWSDESK_LOCK_TIMEOUT", "600"))


def backoff_minutes(interval: float, failures: int, cap: float) -> float:
    """Minutes until the next try after ``failures`` consecutive errors (0: the interval)."""
    if failures <= 0:
        return interval
    return min(interval * math.pow(2, failures), cap)
