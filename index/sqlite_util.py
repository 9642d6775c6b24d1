"""SQLite helpers every SQLite file of newsdesk shares: one transaction, one error translator.

The index's ``newsdesk.db`` (``index.storage.sqlite``) and the subscriptions' ``subscriptions.db``
(``index.feeds.store``) both open transactions with :func:`immediate` and turn SQLite's errors
into messages for a person with :func:`sqlite_error`; only the words differ (which file, what
to do about it). Ground floor: imports nothing of newsdesk but ``index.errors``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from index.errors import DiskFullError, IndexBusyError, NewsdeskError

log = logging.getLogger(__name__)

Translate = Callable[[sqlite3.DatabaseError], Exception]


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# how FAISS (C++) reports a failed write: strerror in parentheses at the end
_FULL_TEXTS = ("(No space left on device)", "(Disk quota exceeded)", "(File too large)")


def disk_full_reason(e: BaseException, path: Path | None = None) -> str | None:
    """Why ``e`` is an out-of-space error (None: it is not one): SQLite's SQLITE_FULL, an
    OSError ENOSPC / EDQUOT / EFBIG, or FAISS's write error naming one of them. SQLite reports
    a write that hit a file size limit (EFBIG) as a plain "disk I/O error": that one counts
    when the file system near ``path`` is (almost) full or a file size limit is set."""
    if isinstance(e, sqlite3.DatabaseError):
        code = getattr(e, "sqlite_errorcode", None)
        if (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "disk is full" in str(e):
            return "database or disk is full"
        if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR and path is not None:
            return _out_of_room(path)
        return None
    if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
        return os.strerror(e.errno or 0).lower()
    if isinstance(e, RuntimeError):
        for text in _FULL_TEXTS:
            if text in str(e):
                return text[1:-1].lower()
    return None


def _out_of_room(path: Path, low: int = 16 << 20) -> str | None:
    """ "no space left on device" when less than ``low`` bytes are free where ``path`` lives,
    "file size limit" when the process has one (``ulimit -f``); None otherwise."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY:
            return f"disk I/O error under a file size limit of {soft:,} bytes"
    except (ImportError, OSError, ValueError):
        pass
    try:
        st = os.statvfs(path if path.is_dir() else path.parent)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < low:
        return "disk I/O error with no space left on device"
    return None


def rollback(c: sqlite3.Connection) -> None:
    """End a failed transaction without hiding why it failed: SQLite may have rolled it back
    itself (SQLITE_FULL does), and then a ROLLBACK raises "no transaction is active"."""
    if c.in_transaction:
        try:
            c.execute("ROLLBACK")
        except sqlite3.Error as e:
            log.debug("rollback after a failed transaction: %s", e)


@contextlib.contextmanager
def immediate(
    c: sqlite3.Connection, translate: Translate | None = None
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; on any error, or a failed COMMIT, a rollback that
    never replaces the original error. With ``translate``, a failed ``BEGIN`` (busy, damaged
    file) leaves as ``translate(e)``."""
    try:
        c.execute("BEGIN IMMEDIATE")
    except sqlite3.DatabaseError as e:
        if translate is None:
            raise
        raise translate(e) from e
    try:
        yield c
        c.execute("COMMIT")
    except BaseException:
        rollback(c)
        raise


def sqlite_error(
    path: Path,
    e: sqlite3.DatabaseError,
    *,
    busy: str,
    damaged: str,
    damaged_error: type[NewsdeskError] = NewsdeskError,
) -> NewsdeskError:
    """A person's message for an SQLite error on the file at ``path``: busy (locked), out of
    disk space, or damaged / unreadable. ``busy`` and ``damaged`` are templates with
    ``{path}`` and ``{text}`` (SQLite's own words); ``damaged_error`` is the class raised for a
    damaged file."""
    text = str(e) or type(e).__name__
    if isinstance(e, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return IndexBusyError(busy.format(path=path, text=text))
    full = disk_full_reason(e, path)
    if full is not None:
        return DiskFullError(str(path), full)
    return damaged_error(damaged.format(path=path, text=text))


@contextlib.contextmanager
def translating(translate: Translate) -> Iterator[None]:
    """SQLite errors inside leave as ``translate(e)``; a ``ProgrammingError`` is a bug, not
    the file, and leaves as it is."""
    try:
        yield
    except sqlite3.ProgrammingError:
        raise
    except sqlite3.DatabaseError as e:
        raise translate(e) from e


class SQLiteFile:
    """A SQLite file in WAL mode, one connection per thread (all closed together)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
        return c

    def _db_error(self, e: sqlite3.DatabaseError) -> Exception:
        """The one-line error for a failure on this file (a subclass words it)."""
        raise NotImplementedError

    def _opened(self, c: sqlite3.Connection) -> None:
        """Called with each new connection (e.g. to create the schema once)."""

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            c = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA foreign_keys=ON")
            c.execute("PRAGMA busy_timeout=30000")
            self._opened(c)
        except sqlite3.DatabaseError as e:
            raise self._db_error(e) from e
        with self._all_lock:
            self._all.append(c)
        return c

    def close(self) -> None:
        with self._all_lock:
            for c in self._all:
                with contextlib.suppress(Exception):
                    c.close()
            self._all.clear()
        self._local = threading.local()
