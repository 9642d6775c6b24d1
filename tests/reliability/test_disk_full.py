"""A full disk while writing: one line, ``disk full: nothing was changed``, exit 1, and the old
index kept whole (newsdesk.db, subscriptions.db, the vector and keyword files).

The disk is filled without root: SQLite's ``PRAGMA max_page_count`` makes it fail with a real
SQLITE_FULL ("database or disk is full"), exactly as on a full file system; the generation's
files fail the way FAISS (C++), NumPy and Python report ENOSPC / EDQUOT / EFBIG.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from index.feeds.store import SubscriptionStore
from index.storage import local as local_mod
from index.storage.faiss_index import VectorIndex
from index.storage.lexical import LexicalIndex
from index.storage.sqlite import Store
from tests.conftest import Nd
from tests.fakes.corpus import article_text, index_state, open_pipeline, write_corpus

QUESTION = "Which move did the opponent resign on?"
ANSWER = "Her opponent resigned on move 61."
FULL = "newsdesk: error: disk full: nothing was changed"


@pytest.fixture
def data(tmp_path: Path, corpus_dir: Path) -> Path:
    write_corpus(corpus_dir / "more", range(10))
    d = tmp_path / "data"
    with open_pipeline(d) as p:
        p.add([str(corpus_dir)])
    return d


def fill_sqlite(monkeypatch: pytest.MonkeyPatch, cls: type, pages: int = 1) -> None:
    """Every new connection of ``cls`` may grow its file by ``pages`` pages, then SQLITE_FULL."""
    opened = cls._opened

    def full(self: object, c: sqlite3.Connection) -> None:
        opened(self, c)
        n = c.execute("PRAGMA page_count").fetchone()[0]
        c.execute(f"PRAGMA max_page_count = {n + pages}")

    monkeypatch.setattr(cls, "_opened", full)


def _faiss_full(self: VectorIndex, path: Path) -> None:
    path.write_bytes(b"\0" * 4096)  # a part was written, then the disk was full
    raise RuntimeError(
        "Error in void faiss::write_index(const Index*, IOWriter*, int) at index_write.cpp:499: "
        f"Error: 'ret == (size * 4)' failed: write error in {path}: 4096 != 98304 "
        "(No space left on device)"
    )


def _oserror(code: int) -> Callable[..., None]:
    def fail(*_: object, **__: object) -> None:
        raise OSError(code, "simulated: " + errno.errorcode[code])

    return fail


class _FullLock:
    """The write lock's file cannot be created: the disk is full."""

    def __init__(self, *_: object, **__: object) -> None:
        pass

    def acquire(self, *_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def release(self) -> None:
        pass


WRITES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "write.lock (ENOSPC)": lambda mp: mp.setattr(local_mod, "FileLock", _FullLock),
    "newsdesk.db (SQLITE_FULL)": lambda mp: fill_sqlite(mp, Store),
    "vectors.faiss (ENOSPC in FAISS)": lambda mp: mp.setattr(VectorIndex, "save", _faiss_full),
    "keyword index (ENOSPC)": lambda mp: mp.setattr(LexicalIndex, "save", _oserror(errno.ENOSPC)),
    "manifest (EDQUOT)": lambda mp: mp.setattr(local_mod, "write_manifest", _oserror(errno.EDQUOT)),
    "file size limit (EFBIG)": lambda mp: mp.setattr(
        local_mod, "fsync_tree", _oserror(errno.EFBIG)
    ),
}


@pytest.mark.parametrize("where", list(WRITES))
def test_a_full_disk_changes_nothing_and_says_so(
    nd: Nd, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    before = index_state(data)
    gens = sorted(p.name for p in (data / local_mod.GEN_DIR).iterdir())
    big = tmp_path / "big.txt"
    big.write_text(article_text(500, paragraphs=80), encoding="utf-8")
    WRITES[where](monkeypatch)

    writes = [("index", str(big)), ("remove", "Bakery wins bread prize"), ("reindex", "-q")]
    if "SQLITE_FULL" in where:  # max_page_count limits growth: a removal or re-index fits
        writes = writes[:1]
    for args in writes:
        line = nd(*args).one_error_line()
        assert line.startswith(FULL), line
        assert "damaged" not in line and "backup" not in line
    assert index_state(data) == before
    assert sorted(p.name for p in (data / local_mod.GEN_DIR).iterdir()) == gens
    r = nd("ask", "--json", QUESTION)
    assert r.code == 0 and json.loads(r.out)["answer"]["text"] == ANSWER
    assert nd("check").code == 0

    monkeypatch.undo()  # space again: the same write goes through
    r = nd("index", str(big))
    assert r.code == 0 and "1 added" in r.out, r.err
    assert nd("check").code == 0


def test_a_full_disk_keeps_subscriptions_db_whole(
    nd: Nd, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "watched"
    write_corpus(folder, range(100, 102))
    assert nd("subscribe", str(folder)).code == 0
    db = data / "subscriptions.db"
    rows = _dump(db)
    write_corpus(folder, range(102, 140))
    fill_sqlite(monkeypatch, SubscriptionStore, pages=0)
    r = nd("sync")
    assert r.code == 1
    assert "disk full: nothing was changed" in r.out + r.err, r.out + r.err
    assert "damaged" not in r.out + r.err
    assert _dump(db) == rows
    monkeypatch.undo()
    r = nd("sync")
    assert r.code == 0, r.out + r.err
    assert nd("check").code == 0
    assert len(json.loads(nd("articles", "--json").out)) == 13 + 40


def _dump(db: Path) -> list[str]:
    """What the round records: its items and announcements (its status may note the error)."""
    c = sqlite3.connect(db)
    try:
        return [line for line in c.iterdump() if '"subscriptions"' not in line]
    finally:
        c.close()


_UNDER_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from index.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("kb", [40, 100, 200])
def test_a_file_size_limit_in_a_real_process_changes_nothing(
    nd: Nd, data: Path, tmp_path: Path, hash_config: Path, kb: int
) -> None:
    """No patching: `newsdesk index` in a process whose files may not grow past ``kb`` KB
    (``ulimit -f``), so SQLite, FAISS or the keyword index really fail to write, wherever
    the limit is reached first."""
    import os
    import subprocess
    import sys

    before = index_state(data)
    big = tmp_path / "big.txt"
    big.write_text(article_text(500, paragraphs=300), encoding="utf-8")
    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    argv = ["--config", str(hash_config), "--data-dir", str(data), "index", "-q", str(big)]
    r = subprocess.run(
        [sys.executable, "-c", _UNDER_LIMIT, str(kb * 1024), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(FULL), line
    assert index_state(data) == before
    assert nd("check").code == 0
    r2 = nd("ask", "--json", QUESTION)
    assert json.loads(r2.out)["answer"]["text"] == ANSWER
