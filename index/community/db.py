"""What the community stores share: ``<data_dir>/community.sqlite3`` as a
:class:`~index.sqlite_util.SQLiteFile` (WAL, one connection per thread opened on first use), the
store's tables created on open, and every open and write transaction first deleting what
``privacy.retention_days`` no longer keeps."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from index.config import PrivacySettings
from index.sqlite_util import SQLiteFile, immediate, translating

DB_NAME = "community.sqlite3"


class CommunityDB(SQLiteFile):
    """Base of the stores in ``community.sqlite3``. A subclass gives its ``SCHEMA`` (``CREATE
    ... IF NOT EXISTS``), its error wording (:meth:`_db_error`) and its retention
    (:meth:`_prune`)."""

    SCHEMA = ""

    def __init__(
        self,
        data_dir: str | Path,
        privacy: PrivacySettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(Path(data_dir) / DB_NAME)
        self.privacy = privacy or PrivacySettings()
        self.clock = clock

    def _prune(self, c: sqlite3.Connection) -> Any:
        """Delete what retention no longer keeps (inside a write transaction)."""
        return None

    def _opened(self, c: sqlite3.Connection) -> None:
        c.executescript(self.SCHEMA)
        with immediate(c, self._db_error):
            self._prune(c)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that first deletes what retention no longer keeps."""
        with translating(self._db_error), immediate(self.conn, self._db_error) as c:
            self._prune(c)
            yield c

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """The connection, or None while no file exists (reading never creates it)."""
        if not self.path.is_file():
            yield None
            return
        with translating(self._db_error):
            yield self.conn
