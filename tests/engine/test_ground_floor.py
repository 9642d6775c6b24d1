"""The ground floor's shared helpers (index/text.py, index/logs.py, index/sqlite_util.py): the one
copy each face and store uses, so their exact words and levels are pinned here."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from index.errors import ArticleNotFoundError, DiskFullError, IndexBusyError, NewsdeskError
from index.logs import NOISY_LOGGERS, chosen_level, setup_logging
from index.sqlite_util import immediate, sqlite_error, translating
from index.text import first_line, format_size, one_line


class _WithMessage(Exception):
    def __init__(self, message: str) -> None:
        super().__init__("ignored")
        self.message = message


def test_first_line_takes_the_message_attribute_and_cuts() -> None:
    assert first_line(ValueError("bad thing\nsecond line")) == "bad thing"
    assert first_line(_WithMessage("collection gone\ntrace")) == "collection gone"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("x" * 300), 160) == "x" * 160


def test_one_line_squeezes_whitespace_and_marks_a_cut() -> None:
    assert one_line("  a\n\n b\tc ") == "a b c"
    assert one_line("abcdef", 3) == "abc…"
    assert one_line("abc", 3) == "abc"


def test_format_size_is_decimal() -> None:
    assert format_size(999) == "999 bytes"
    assert format_size(1_500) == "1.5 kB"


def test_article_not_found_with_id() -> None:
    err = ArticleNotFoundError.with_id("abc123")
    assert isinstance(err, ArticleNotFoundError) and str(err) == "no article with id abc123"


def test_chosen_level_from_flags() -> None:
    assert chosen_level(0, default="WARNING") == "WARNING"
    assert chosen_level(1) == logging.INFO
    assert chosen_level(2, quiet=True) == logging.DEBUG  # -v wins over -q
    assert chosen_level(0, quiet=True) == logging.ERROR


def test_setup_logging_replaces_handlers_and_quiets_libraries() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        level = setup_logging(1, formatter=logging.Formatter("X %(message)s"))
        assert level == logging.INFO and root.level == logging.INFO
        assert len(root.handlers) == 1
        assert root.handlers[0].formatter is not None
        assert root.handlers[0].formatter._fmt == "X %(message)s"
        assert all(logging.getLogger(n).level == logging.WARNING for n in NOISY_LOGGERS)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _texts(path: Path, e: sqlite3.DatabaseError) -> NewsdeskError:
    return sqlite_error(path, e, busy="{path} busy ({text})", damaged="{path} bad ({text})")


def test_sqlite_error_busy_damaged_full(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    busy = _texts(db, sqlite3.OperationalError("database is locked"))
    assert isinstance(busy, IndexBusyError) and str(busy) == f"{db} busy (database is locked)"
    bad = _texts(db, sqlite3.DatabaseError("file is not a database"))
    assert type(bad) is NewsdeskError and str(bad) == f"{db} bad (file is not a database)"
    full = _texts(db, sqlite3.OperationalError("database or disk is full"))
    assert isinstance(full, DiskFullError)


def test_immediate_translates_a_failed_begin_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("CREATE TABLE t (v INTEGER)")
    with pytest.raises(RuntimeError), immediate(c) as tx:
        tx.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    assert c.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # rolled back
    c.execute("BEGIN")  # a transaction already open: BEGIN IMMEDIATE fails
    with pytest.raises(NewsdeskError, match="bad"), immediate(c, lambda e: _texts(path, e)):
        pass
    c.execute("ROLLBACK")
    with pytest.raises(IndexBusyError), translating(lambda e: _texts(path, e)):
        raise sqlite3.OperationalError("database is locked")
    with pytest.raises(sqlite3.ProgrammingError), translating(lambda e: _texts(path, e)):
        raise sqlite3.ProgrammingError("a bug, not the file")
    c.close()
