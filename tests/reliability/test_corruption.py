"""Damaged index files are detected on load with one line that says what to do.

Generation files (FAISS, BM25, the manifest, the whole folder): every command that loads them
stops with ``newsdesk: error: …`` naming ``newsdesk reindex``; ``newsdesk check`` lists the
problem; ``newsdesk reindex`` rebuilds from the article text in SQLite without loading the
damaged generation, after which answers and ``check`` are back to normal. A damaged SQLite
file is reported with what to do (restore a backup or index again), never a traceback.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.cli import main
from index.errors import IndexCorruptError
from index.pipeline import Pipeline
from index.search.summary import central_sentence
from index.storage.local import GEN_DIR
from index.storage.manifest import MANIFEST, manifest_problems, write_manifest
from index.storage.sentences import pack_sentences
from tests.conftest import Nd
from tests.fakes.corpus import open_pipeline, write_corpus

QUESTION = "Which move did the opponent resign on?"
ANSWER = "Her opponent resigned on move 61."


@pytest.fixture
def data(tmp_path: Path, corpus_dir: Path) -> Path:
    """The three conftest articles and 20 generated ones, indexed (as `newsdesk index` would)."""
    write_corpus(corpus_dir / "more", range(20))
    d = tmp_path / "data"
    with open_pipeline(d) as p:
        p.add([str(corpus_dir)])
    return d


def gen_dir(data: Path) -> Path:
    with open_pipeline(data) as p:
        return data / GEN_DIR / f"{p.store.generation():08d}"


def truncate(path: Path, keep: float = 0.5) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(int(size * keep))


def garble(path: Path, where: float, n: int = 64) -> None:
    """Overwrite ``n`` bytes at the relative position ``where`` with other bytes."""
    size = path.stat().st_size
    at = min(int(size * where), max(size - n, 0))
    with path.open("r+b") as f:
        f.seek(at)
        old = f.read(n)
        f.seek(at)
        f.write(bytes((b + 0x5A) % 256 for b in old))


def _bm25_file(g: Path, name: str) -> Path:
    (found,) = (g / "lexical").rglob(name)
    return found


def _both(*steps: Callable[[], object]) -> None:
    for step in steps:
        step()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "faiss truncated": lambda g: truncate(g / "vectors.faiss"),
    "faiss header garbled": lambda g: garble(g / "vectors.faiss", 0.0, 16),
    "faiss vectors garbled": lambda g: garble(g / "vectors.faiss", 0.5),
    "faiss ids garbled": lambda g: garble(g / "vectors.faiss", 0.99, 32),
    "faiss missing": lambda g: (g / "vectors.faiss").unlink(),
    "faiss empty": lambda g: truncate(g / "vectors.faiss", 0),
    "bm25 ids truncated": lambda g: truncate(g / "lexical" / "ids.npy", 0.6),
    "bm25 ids garbled": lambda g: garble(g / "lexical" / "ids.npy", 0.9, 16),
    "bm25 scores garbled": lambda g: garble(_bm25_file(g, "data.csc.index.npy"), 0.5),
    "bm25 vocabulary not json": lambda g: _bm25_file(g, "vocab.index.json").write_text("{oops"),
    "bm25 document frequencies missing": lambda g: (g / "lexical" / "lexical.json").unlink(),
    "lexical folder missing": lambda g: shutil.rmtree(g / "lexical"),
    "manifest garbled": lambda g: (g / MANIFEST).write_text("not json"),
    "manifest missing": lambda g: (g / MANIFEST).unlink(),
    "manifest missing, faiss vectors garbled": lambda g: _both(
        lambda: (g / MANIFEST).unlink(), lambda: garble(g / "vectors.faiss", 0.5)
    ),
    "manifest emptied, faiss vectors garbled": lambda g: _both(
        lambda: (g / MANIFEST).write_text('{"format": 1, "files": {}}'),
        lambda: garble(g / "vectors.faiss", 0.5),
    ),
    "generation folder missing": lambda g: shutil.rmtree(g),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_generation_is_detected_and_reindex_repairs_it(
    nd: Nd, data: Path, damage: str
) -> None:
    ok = nd("ask", "--json", QUESTION)
    assert ok.code == 0 and json.loads(ok.out)["answer"]["text"] == ANSWER
    articles = json.loads(nd("stats", "--json").out)["articles"]
    DAMAGE[damage](gen_dir(data))

    line = nd("ask", QUESTION).one_error_line()
    assert "newsdesk reindex" in line, line
    assert nd("search", "chess").one_error_line() == line
    new = data.parent / "new.txt"
    new.write_text("Harbour news\n\nThe harbour cranes were sold on Monday.")
    assert nd("index", str(new)).one_error_line() == line  # a write needs the current vectors
    # the engine raises the same, typed error
    with open_pipeline(data) as p, pytest.raises(IndexCorruptError, match="newsdesk reindex"):
        p.ask(QUESTION)

    r = nd("check")
    assert r.code == 1 and r.err == ""
    problems = r.out.strip().splitlines()
    assert problems and all(p.startswith("problem: ") for p in problems), problems
    assert any("newsdesk reindex" in p for p in problems), problems
    report = json.loads(nd("check", "--json").out)
    assert report["ok"] is False and report["problems"] == [p[9:] for p in problems]

    r = nd("reindex", "-q")
    assert r.code == 0, r.err
    assert r.out.startswith(f"Re-indexed {articles} articles")
    ok = nd("ask", "--json", QUESTION)
    assert ok.code == 0 and json.loads(ok.out)["answer"]["text"] == ANSWER
    r = nd("check")
    assert r.code == 0 and r.out.startswith(f"index OK: {articles} articles, "), r.out


def test_check_reports_inconsistencies_the_loader_cannot_see(data: Path) -> None:
    """Damage that keeps every file readable: ids, offsets and orphans are compared too."""
    with open_pipeline(data) as p:
        assert p.check() == []
        c = p.store.conn
        c.execute("PRAGMA foreign_keys=OFF")
        first = min(p.store.chunk_ids())
        c.execute("UPDATE chunks SET end = end + 1000000 WHERE id = ?", (first,))
        c.execute("INSERT INTO chunks(article_id, ordinal, start, end) VALUES ('nope', 0, 0, 5)")
        problems = p.check()
        assert any("offsets outside" in x and f"passage {first}" in x for x in problems)
        assert any("belong to no article" in x for x in problems)
        # the extra passage is also missing from FAISS and BM25
        assert any(x.startswith("the vector index") and "lacks 1 passages" in x for x in problems)
        assert any(x.startswith("the keyword index") and "lacks 1 passages" in x for x in problems)
        assert all("newsdesk reindex" in x for x in problems)
        p.reindex()
        assert p.check() == []


def test_check_reports_a_model_mismatch(data: Path, nd: Nd, tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text('[embedding]\nmodel = "hash"\n[chunking]\noverlap_sentences = 2\n')
    out = io.StringIO()
    code = main(["--config", str(cfg), "--data-dir", str(data), "check"], out=out)
    assert code == 1
    assert "chunk_overlap" in out.getvalue() and "newsdesk reindex" in out.getvalue()


def test_check_on_an_empty_data_dir(nd: Nd) -> None:
    r = nd("check")
    assert (r.code, r.out) == (0, "index OK: 0 articles, 0 passages\n")


def test_manifest_lists_every_file(data: Path) -> None:
    g = gen_dir(data)
    files = json.loads((g / MANIFEST).read_text())["files"]
    on_disk = {p.relative_to(g).as_posix() for p in g.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(files) == on_disk and "vectors.faiss" in files
    assert manifest_problems(g) == []
    garble(g / "lexical" / "ids.npy", 0.95, 4)
    assert manifest_problems(g) == ["lexical/ids.npy: checksum mismatch"]


def test_leftover_tmp_and_orphan_generations_are_harmless(data: Path, nd: Nd) -> None:
    """What a killed writer leaves behind: a half-written .tmp and a renamed, uncommitted
    next generation. Readers ignore both; the next write removes or replaces them."""
    g = gen_dir(data)
    gen = int(g.name)
    tmp = g.parent / f"{gen + 1:08d}.tmp"
    tmp.mkdir()
    (tmp / "vectors.faiss").write_bytes(os.urandom(100))
    orphan = g.parent / f"{gen + 1:08d}"
    shutil.copytree(g, orphan)
    truncate(orphan / "vectors.faiss", 0.3)
    assert json.loads(nd("ask", "--json", QUESTION).out)["answer"]["text"] == ANSWER
    assert nd("check").code == 0
    r = nd("remove", "Bakery wins bread prize")
    assert r.code == 0, r.err
    names = sorted(p.name for p in g.parent.iterdir())
    assert names == [f"{gen:08d}", f"{gen + 1:08d}"]  # .tmp gone, orphan rebuilt
    assert manifest_problems(orphan) == []
    assert nd("check").code == 0


SQLITE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": lambda db: truncate(db, 0.5),
    "header garbled": lambda db: garble(db, 0.0, 100),
    "pages garbled": lambda db: [garble(db, x / 10, 4096) for x in range(2, 10)] and None,
}


@pytest.mark.parametrize("damage", list(SQLITE_DAMAGE))
def test_damaged_database_is_reported_with_what_to_do(nd: Nd, data: Path, damage: str) -> None:
    db = data / "newsdesk.db"
    assert not (data / "newsdesk.db-wal").exists() or (data / "newsdesk.db-wal").stat().st_size == 0
    SQLITE_DAMAGE[damage](db)
    r = nd("check")
    assert r.code == 1 and "Traceback" not in r.out + r.err
    (line,) = r.out.strip().splitlines()
    assert line.startswith("problem: the database ") and "backup" in line, line
    # every command either works or stops with one line that says what to do
    for args in (
        ("ask", QUESTION),
        ("search", "chess"),
        ("stats",),
        ("articles",),
        ("reindex", "-q"),
        ("index", str(data.parent / "corpus")),
    ):
        r = nd(*args)
        if r.code != 0:
            line = r.one_error_line()
            assert "backup" in line or "newsdesk reindex" in line, (args, line)
    if damage != "pages garbled":  # the file cannot even be opened
        assert nd("ask", QUESTION).code == 1
        with pytest.raises(IndexCorruptError, match="backup"):
            Pipeline(open_pipeline(data).settings).stats()


async def test_a_corrupt_index_stops_the_bot_at_start(data: Path, discord_world: Any) -> None:
    """The bot loads the index in setup_hook: a damaged one stops start-up with its message
    (`python -m bot` prints it as one line, like the model mismatch in test_bot_main)."""
    from bot.__main__ import serve

    truncate(gen_dir(data) / "vectors.faiss")
    fake = discord_world.fake
    with (
        open_pipeline(data) as p,
        fake.patch_discord(),
        pytest.raises(IndexCorruptError, match="newsdesk reindex"),
    ):
        await asyncio.wait_for(serve(p.settings, "fake-token", p), 10)


def test_check_finds_garbled_vectors_behind_a_rewritten_manifest(data: Path, nd: Nd) -> None:
    """Vectors garbled and the manifest written again to match (or deleted): every id is
    still right, so only the vectors themselves can tell. `check` reads them all: finite unit
    vectors, as every embedder stores them."""
    g = gen_dir(data)
    garble(g / "vectors.faiss", 0.5, 256)
    write_manifest(g)
    r = nd("check")
    assert r.code == 1, r.out
    (line,) = r.out.strip().splitlines()
    assert "damaged vectors" in line and "newsdesk reindex" in line, line
    assert nd("reindex", "-q").code == 0
    assert nd("check").code == 0


def _set_blob(data: Path, blob: object) -> int:
    with open_pipeline(data) as p:
        cid = min(p.store.chunk_ids())
        p.store.conn.execute("UPDATE chunks SET sentences=? WHERE id=?", (blob, cid))
        return cid


def _blob(data: Path) -> bytes:
    with open_pipeline(data) as p:
        row = p.store.conn.execute(
            "SELECT sentences FROM chunks WHERE id=?", (min(p.store.chunk_ids()),)
        ).fetchone()
        return bytes(row[0])


SENTENCE_DAMAGE: dict[str, Callable[[bytes], object]] = {
    "truncated": lambda b: b[: len(b) // 2],
    "longer": lambda b: b + b"\x01" * 40,
    "header count garbled": lambda b: np.asarray([10**6, 384], np.int32).tobytes() + b[8:],
    "negative count": lambda b: np.asarray([-3, 384], np.int32).tobytes() + b[8:],
    "other dimension": lambda b: pack_sentences([(0, 5)], np.ones((1, 7), np.float32) / 7**0.5),
    "offsets past the passage": lambda b: pack_sentences(
        [(0, 10**6)], np.ones((1, 384), np.float32) / 384**0.5
    ),
    "empty": lambda b: b"",
    "text instead of bytes": lambda b: "garbage",
}


@pytest.mark.parametrize("damage", list(SENTENCE_DAMAGE))
def test_a_garbled_sentence_vector_blob_never_crashes_and_check_reports_it(
    data: Path, nd: Nd, damage: str
) -> None:
    """A damaged sentence-vector blob: `ask` skips it (logged) and still answers; the
    announcement summary too; `check` reports the passage; `reindex` repairs it."""
    cid = _set_blob(data, SENTENCE_DAMAGE[damage](_blob(data)))
    for _ in range(2):
        r = nd("ask", "--json", QUESTION)
        assert r.code == 0, r.err
        assert json.loads(r.out)["answer"]["text"] == ANSWER
    with open_pipeline(data) as p:
        for a in p.list_articles():
            central_sentence(p.store, a.id)
    r = nd("check")
    assert r.code == 1
    (line,) = r.out.strip().splitlines()
    assert "damaged sentence vectors" in line and f"passage {cid}" in line, line
    assert nd("reindex", "-q").code == 0
    assert nd("check").code == 0


@pytest.mark.parametrize("value", ["abc", "", "1.5", "9" * 5000 + "x"])
def test_a_non_numeric_generation_is_one_line_and_reindex_repairs_it(
    data: Path, nd: Nd, value: str
) -> None:
    with open_pipeline(data) as p:
        p.store.conn.execute("UPDATE meta SET value=? WHERE key='generation'", (value,))
    for args in (("ask", QUESTION), ("search", "chess"), ("remove", "Bakery wins bread prize")):
        line = nd(*args).one_error_line()
        assert "meta.generation" in line and "newsdesk reindex" in line, line
    r = nd("check")
    assert r.code == 1 and "meta.generation" in r.out
    assert nd("stats").code == 0
    r = nd("reindex", "-q")
    assert r.code == 0, r.err
    assert json.loads(nd("ask", "--json", QUESTION).out)["answer"]["text"] == ANSWER
    assert nd("check").code == 0


@pytest.mark.parametrize("family", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("sq8", [False, True])
def test_damaged_vector_check_passes_every_healthy_index_type(family: str, sq8: bool) -> None:
    from index.storage.faiss_index import VectorIndex

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(1200, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(10, 1210, dtype=np.int64)
    index = VectorIndex.build(family, sq8, ids, vecs)  # type: ignore[arg-type]
    assert index.damaged_vectors(batch=500) == (0, None)
    bad = np.stack([vecs[0] * 40.0, np.zeros(32, np.float32)])
    index.add(np.asarray([5000, 5001], np.int64), bad)
    assert index.damaged_vectors(batch=500) == (2, 5000)
    if family == "flat" and not sq8:
        index.add(np.asarray([6000], np.int64), np.full((1, 32), np.nan, np.float32))
        assert index.damaged_vectors(batch=500) == (3, 5000)
