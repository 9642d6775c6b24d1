"""The connection handling the community stores share: ``<data_dir>/community.sqlite3``, one
connection per thread opened on first use (WAL), the store's tables created on open, and every
open and write transaction first deleting what ``privacy.retention_days`` no longer keeps."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from index.config import PrivacySettings
from index.sqlite_util import immediate, translating

DB_NAME = "community.sqlite3"


class CommunityDB:
    """Base of the stores in ``community.sqlite3``. A subclass gives its ``SCHEMA`` (``CREATE
    ... IF NOT EXISTS``), its error wording (:meth:`_error`) and its retention (:meth:`_prune`)."""

    SCHEMA = ""

    def __init__(
        self,
        data_dir: str | Path,
        privacy: PrivacySettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(data_dir) / DB_NAME
        self.privacy = privacy or PrivacySettings()
        self.clock = clock
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _error(self, e: sqlite3.DatabaseError) -> Exception:
        raise NotImplementedError

    def _prune(self, c: sqlite3.Connection) -> Any:
        """Delete what retention no longer keeps (inside a write transaction)."""
        return None

    @property
    def conn(self) -> sqlite3.Connection:
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = self._connect()
        return c

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with translating(self._error):
            c = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA foreign_keys=ON")
            c.execute("PRAGMA busy_timeout=30000")
            c.executescript(self.SCHEMA)
            with immediate(c, self._error):
                self._prune(c)
        with self._lock:
            self._all.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                with contextlib.suppress(Exception):
                    c.close()
            self._all.clear()
        self._local = threading.local()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that first deletes what retention no longer keeps."""
        with translating(self._error), immediate(self.conn, self._error) as c:
            self._prune(c)
            yield c

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """The connection, or None while no file exists (reading never creates it)."""
        if not self.path.is_file():
            yield None
            return
        with translating(self._error):
            yield self.conn
