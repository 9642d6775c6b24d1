"""The Milvus backend: same answers as FAISS, readers during writes, the writer lease, crash
recovery, migration without re-embedding, lazy imports, and processes sharing one Milvus.

Milvus Lite runs embedded in a temp dir (one process), or as `milvus-lite server` on a loopback
port for the tests with several processes.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.config import Settings, load_settings
from index.embedding.hashing import HashEmbedder
from index.errors import ConfigError, IndexBusyError, NewsdeskError
from index.models import Document
from index.pipeline import Pipeline
from tests.conftest import HASH_CONFIG, HASH_MIN_CONFIDENCE, HASH_RERANKER, milvus_available

pytestmark = pytest.mark.skipif(not milvus_available(), reason="pip install -e '.[milvus]'")

ROOT = Path(__file__).resolve().parent.parent.parent

DOCS = [
    Document(
        f"/news/{name}.txt",
        title,
        text,
    )
    for name, title, text in [
        (
            "volcano",
            "Volcano erupts on remote island",
            "A volcano on the island of Tern erupted on Tuesday. Ash rose twelve kilometres into "
            "the sky.\n\nScientists at the Tern Observatory said the eruption was the largest "
            "since 1982. Dr. Ana Ruiz said lava reached the sea within hours.",
        ),
        (
            "chess",
            "Chess champion keeps her title",
            "The world chess champion defended her title in Madrid. She won the final game with "
            "the black pieces after six hours.\n\nHer opponent resigned on move 61. The prize "
            "fund was two million euros.",
        ),
        (
            "bakery",
            "Bakery wins bread prize",
            "A small bakery in Lyon won the national bread prize on Sunday. The baker, Paul "
            "Martin, uses a sourdough starter that is forty years old.\n\nThe prize comes with a "
            "contract to supply the presidential palace for a year.",
        ),
    ]
]
QUESTIONS = [
    "Which move did the opponent resign on?",
    "How high did the ash rise?",
    "Where is the bakery that won the prize?",
    "How old is the sourdough starter?",
    "What is the boiling point of liquid nitrogen?",
]


def make_settings(data_dir: Path, backend: str, **store: object) -> Settings:
    s = load_settings(data_dir=data_dir)
    s.answer.min_confidence = HASH_MIN_CONFIDENCE
    s.answer.reranker = HASH_RERANKER
    s.store.backend = backend  # type: ignore[assignment]
    for k, v in store.items():
        setattr(s.store, k, v)
    return s


@pytest.fixture
def milvus_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", "milvus")


@pytest.fixture
def mpipe(milvus_settings: Settings) -> Iterator[Pipeline]:
    p = Pipeline(milvus_settings, HashEmbedder())
    yield p
    p.close()


def answer_key(p: Pipeline, q: str, mode: str) -> tuple[object, ...]:
    a = p.ask(q, mode=mode)
    quote = (a.quote.text, a.quote.chunk_id, a.quote.start) if a.quote else None
    return quote, [(h.chunk_id, h.text) for h in a.passages], a.suggestions


def test_same_answers_and_scores_as_faiss(tmp_path: Path) -> None:
    pipes = {
        b: Pipeline(make_settings(tmp_path / b, b), HashEmbedder()) for b in ("faiss", "milvus")
    }
    try:
        for p in pipes.values():
            p.add_documents(DOCS[:2])
            p.add_documents(DOCS[1:])  # one unchanged, one new
            p.add_documents([Document(DOCS[0].source, DOCS[0].title, DOCS[0].text + " Updated.")])
        for mode in ("hybrid", "dense", "bm25"):
            for q in QUESTIONS:
                f, m = pipes["faiss"].ask(q, mode=mode), pipes["milvus"].ask(q, mode=mode)
                assert answer_key(pipes["faiss"], q, mode) == answer_key(pipes["milvus"], q, mode)
                assert [h.score for h in m.passages] == pytest.approx(
                    [h.score for h in f.passages], abs=1e-5
                )
                assert m.confidence == pytest.approx(f.confidence, abs=1e-5)
        answered = pipes["milvus"].ask(QUESTIONS[0])
        assert answered.quote is not None and "move 61" in answered.quote.text
        assert pipes["faiss"].stats().chunks == pipes["milvus"].stats().chunks
        assert pipes["milvus"].stats().index_type == "milvus-flat"
        assert pipes["milvus"].check() == []
    finally:
        for p in pipes.values():
            p.close()


def test_switching_backend_is_one_config_line(tmp_path: Path, corpus_dir: Path) -> None:
    from index.cli import main

    cfg = tmp_path / "milvus.toml"
    cfg.write_text(HASH_CONFIG + '[store]\nbackend = "milvus"\n', encoding="utf-8")
    base = ["--config", str(cfg), "--data-dir", str(tmp_path / "data"), "-q"]
    out = io.StringIO()
    assert main([*base, "index", str(corpus_dir)], out=out) == 0
    assert main([*base, "ask", "--json", "Which move did the opponent resign on?"], out=out) == 0
    answer = json.loads(out.getvalue().strip().splitlines()[-1])
    assert "move 61" in answer["answer"]["text"]
    out = io.StringIO()
    assert main([*base, "stats", "--json"], out=out) == 0
    stats = json.loads(out.getvalue())
    assert (stats["articles"], stats["index_type"]) == (3, "milvus-flat")
    assert (tmp_path / "data" / "milvus.db").is_dir()  # Milvus Lite, nothing else
    assert not (tmp_path / "data" / "newsdesk.db").exists()
    assert main([*base, "check"], out=io.StringIO()) == 0


def test_readers_keep_answering_while_a_writer_adds(mpipe: Pipeline) -> None:
    """Reader threads answer throughout a series of writes (embedded Milvus Lite: one process;
    the test with several processes is below)."""
    mpipe.add_documents(DOCS)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen_counts: set[int] = set()
    answers = 0

    def reader() -> None:
        nonlocal answers
        while not stop.is_set():
            try:
                a = mpipe.ask("Tern Observatory volcano eruption ash", mode="bm25")
                assert a.passages[0].title == DOCS[0].title
                for h in a.passages:
                    text = mpipe.get_article(h.article_id).text
                    assert text[h.start : h.end] == h.text
                with mpipe.reading() as snap:
                    seen_counts.add(len(snap.vectors))
                answers += 1
            except BaseException as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(6):
        mpipe.add_documents(
            [Document(f"/news/extra{i}.txt", f"Extra {i}", f"Harbour news number {i}. " * 5)]
        )
    mpipe.remove("Extra 0")
    mpipe.reindex()  # a new set of passages; the old ones stay for readers still on them
    mpipe.add_documents([Document("/news/last.txt", "Last", "Ferry news. " * 5)])
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[0]
    assert answers > 0
    assert mpipe.stats().articles == 3 + 5 + 1
    assert len(seen_counts) > 1  # the readers went through several generations
    assert mpipe.check() == []


def test_interrupted_write_leaves_no_trace(
    mpipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that dies before its switch: readers see the old generation, the next writer
    deletes the rows it left and undoes its removal marks."""
    from index.storage.milvus import MilvusBackend
    from index.storage.milvus.lease import WriterLease

    mpipe.add_documents(DOCS[:2])
    before = answer_key(mpipe, QUESTIONS[0], "hybrid")
    gen = mpipe.store.generation()

    def crash(self: object) -> None:
        raise RuntimeError("killed before the switch")

    monkeypatch.setattr(WriterLease, "check", crash)
    changed = Document(DOCS[1].source, DOCS[1].title, "Nothing about chess any more.")
    with pytest.raises(RuntimeError, match="killed"):
        mpipe.add_documents([changed, DOCS[2]])
    monkeypatch.undo()
    reader = Pipeline(mpipe.settings, HashEmbedder())
    try:
        assert reader.store.generation() == gen
        assert answer_key(reader, QUESTIONS[0], "hybrid") == before
        assert reader.stats().articles == 2
        reader.add_documents([DOCS[2]])  # recovers first
        backend = reader.backend
        assert isinstance(backend, MilvusBackend)
        state = backend.read_state()
        name = state["passages_collection"]
        assert not backend.query(name, f"gen > {state['generation']}", ["id"])
        assert not backend.query(name, "dead != 0", ["id"])  # the crashed removal is undone
        assert answer_key(reader, QUESTIONS[0], "hybrid")[0] == before[0]  # chess is intact
        assert reader.stats().articles == 3
        assert reader.check() == []
    finally:
        reader.close()


def test_check_finds_damage(mpipe: Pipeline) -> None:
    from index.storage.milvus import MilvusBackend

    mpipe.add_documents(DOCS)
    assert mpipe.check() == []
    backend = mpipe.backend
    assert isinstance(backend, MilvusBackend)
    name = backend.read_state()["passages_collection"]
    backend.client.delete(name, filter="id == 1")  # a passage lost behind newsdesk's back
    problems = mpipe.check()
    assert len(problems) == 1 and "holds 2 passages, its state records 3" in problems[0]
    assert "newsdesk reindex" in problems[0]
    mpipe.reindex()
    assert mpipe.check() == []


def test_damaged_state_and_sentence_vectors_are_one_line_or_skipped(mpipe: Pipeline) -> None:
    """Milvus too: a garbled sentence-vector field never crashes a question (it is skipped);
    a non-numeric generation in the state row is one line, not a traceback."""
    from index.errors import IndexCorruptError
    from index.storage.milvus import MilvusBackend

    mpipe.add_documents(DOCS)
    backend = mpipe.backend
    assert isinstance(backend, MilvusBackend)
    good = {q: mpipe.ask(q).quote for q in QUESTIONS}
    name = backend.read_state()["passages_collection"]
    rows = backend.client.query(name, filter="id >= 0", output_fields=["*"])
    for i, row in enumerate(rows):
        row["sentences"] = ["!!not base64!!", "AAAA", "AQAAAAcAAAA="][i % 3]
    backend.client.upsert(name, rows)
    fresh = Pipeline(mpipe.settings, HashEmbedder())
    try:
        for q in QUESTIONS:
            ans = fresh.ask(q)  # answered from the passages split anew
            assert (ans.quote is None) == (good[q] is None)
        (problem,) = fresh.check()
        assert f"{len(rows)} passages have damaged sentence vectors" in problem, problem
        state = backend.read_state()
        state["generation"] = "abc"
        backend.client.upsert(
            backend.c_state, [{"key": "state", "value": json.dumps(state), "v": [0.0, 0.0]}]
        )
        fresh.close()
        fresh = Pipeline(mpipe.settings, HashEmbedder())
        with pytest.raises(IndexCorruptError, match="generation is not a number"):
            fresh.ask(QUESTIONS[0])
    finally:
        fresh.close()


def test_writer_lease_is_kept_in_milvus(milvus_settings: Settings) -> None:
    from index.storage.milvus import MilvusBackend

    a, b = MilvusBackend(milvus_settings), MilvusBackend(milvus_settings)
    try:
        busy = pytest.raises(IndexBusyError, match=f"pid {os.getpid()}")
        with a.writer(), busy, b.writer(wait=0.3):
            pass
        with b.writer(wait=0.3):  # released
            pass
    finally:
        a.close()
        b.close()


def test_expired_lease_is_taken_over(milvus_settings: Settings) -> None:
    from index.storage.milvus import MilvusBackend
    from index.storage.milvus.collections import DUMMY

    b = MilvusBackend(milvus_settings)
    try:
        b.ensure_state()
        stale = {"owner": "crashed-host:1:x", "expires": time.time() - 1, "host": "x", "pid": 1}
        b.client.upsert(b.c_state, [{"key": "writer", "value": json.dumps(stale), "v": DUMMY}])
        with b.writer(wait=0):
            pass
    finally:
        b.close()


def test_lease_admits_one_writer_at_a_time(milvus_settings: Settings) -> None:
    """Fischer's claim-wait-check with racing backends (as separate processes would be)."""
    from index.storage.milvus import MilvusBackend

    backends = [MilvusBackend(milvus_settings) for _ in range(3)]
    for b in backends:
        b.settle = 0.15  # as for a shared (remote) Milvus
    holders = 0
    most = 0
    done = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(b: MilvusBackend) -> None:
        nonlocal holders, most, done
        try:
            for _ in range(2):
                with b.writer(wait=30):
                    with lock:
                        holders += 1
                        most = max(most, holders)
                    time.sleep(0.05)
                    with lock:
                        holders -= 1
                        done += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(b,)) for b in backends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for b in backends:
        b.close()
    assert not errors, errors[0]
    assert (most, done) == (1, 6)


def test_collections_are_created_safely_by_several_processes_at_once(
    milvus_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several writers (the bot's shards, a CLI beside the bot) and readers open a fresh
    store at once, while creating an index takes a while: the collection exists for a moment
    without its index (and, on Milvus Lite, "does not exist" for a moment after it does).
    Every one of them ends with the collections created, indexed and loaded; none fails."""
    from pymilvus import MilvusClient

    from index.storage.milvus import MilvusBackend

    create_index = MilvusClient.create_index

    def slow_index(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.4)  # the window in which the collection has no index yet
        return create_index(self, *args, **kwargs)

    monkeypatch.setattr(MilvusClient, "create_index", slow_index)
    backends = [MilvusBackend(milvus_settings) for _ in range(6)]
    errors: list[BaseException] = []
    seen: list[bool] = []

    def writer(i: int, b: MilvusBackend) -> None:
        try:
            time.sleep(0.05 * i)
            b.ensure_state()
            b.ensure_articles()
            b.ensure_passages(8)
        except BaseException as e:
            errors.append(e)

    def reader(b: MilvusBackend) -> None:
        try:
            for _ in range(150):
                seen.append(b.has(b.c_state))
                time.sleep(0.01)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i, b)) for i, b in enumerate(backends[:3])]
    threads += [threading.Thread(target=reader, args=(b,)) for b in backends[3:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors[0]
        assert seen and seen[-1] is True
        for b in backends:
            assert b.has(b.c_state) and b.has(b.c_articles) and b.has(b.c_passages(8))
    finally:
        for b in backends:
            b.close()


def test_collection_creation_rides_out_every_answer_a_racing_process_causes(
    milvus_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answers Milvus gives while another process creates the same collection, each
    forced once per step: "already exists" from create_collection and create_index (it won),
    "does not exist" and "no index" from load_collection (it is half-way through). Opening
    the store waits them out; a writer and a reader both end with the collections loaded."""
    from pymilvus import MilvusClient, MilvusException

    from index.storage.milvus import MilvusBackend

    failed: set[tuple[str, str, str]] = set()

    def once(step: str, message: str, real: Any, before: bool) -> Any:
        def call(self: MilvusClient, name: str, *args: Any, **kwargs: Any) -> Any:
            key = (step, name, message)
            if key not in failed:
                failed.add(key)
                if not before:
                    real(self, name, *args, **kwargs)  # it did happen, by the other process
                raise MilvusException(code=65535, message=message.format(name=name))
            return real(self, name, *args, **kwargs)

        return call

    load = MilvusClient.load_collection
    monkeypatch.setattr(
        MilvusClient,
        "create_collection",
        once("create", "collection {name} already exists", MilvusClient.create_collection, False),
    )
    monkeypatch.setattr(
        MilvusClient,
        "create_index",
        once("index", "index already exist on field v", MilvusClient.create_index, False),
    )

    def flaky_load(self: MilvusClient, name: str, *args: Any, **kwargs: Any) -> Any:
        for message in ("collection '{name}' does not exist", "no index on collection '{name}'"):
            key = ("load", name, message)
            if key not in failed:
                failed.add(key)
                raise MilvusException(code=100, message=message.format(name=name))
        return load(self, name, *args, **kwargs)

    monkeypatch.setattr(MilvusClient, "load_collection", flaky_load)
    writer, reader = MilvusBackend(milvus_settings), MilvusBackend(milvus_settings)
    try:
        writer.ensure_state()
        writer.ensure_articles()
        writer.ensure_passages(8)
        assert reader.has(reader.c_state) and reader.has(reader.c_articles)
        assert {k[0] for k in failed} == {"create", "index", "load"}
    finally:
        writer.close()
        reader.close()


def test_migrate_copies_without_reembedding(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index.cli import main
    from index.embedding import factory as embedder

    faiss_settings = make_settings(tmp_path / "data", "faiss")
    source = Pipeline(faiss_settings, HashEmbedder())
    source.add([str(corpus_dir)])
    source.remove("Bakery wins bread prize")  # ids with a gap
    source.add([str(corpus_dir / "bakery.html")])
    expected = {q: answer_key(source, q, "hybrid") for q in QUESTIONS}
    source.close()

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("migrate must not load the embedding model")

    monkeypatch.setattr(embedder, "make_embedder", no_model)
    cfg = tmp_path / "hash.toml"
    cfg.write_text(HASH_CONFIG, encoding="utf-8")
    target = tmp_path / "milvus" / "index.db"
    out = io.StringIO()
    args = ["--config", str(cfg), "--data-dir", str(tmp_path / "data"), "-q", "migrate"]
    assert main([*args, "--to", "milvus", "--uri", str(target)], out=out) == 0
    assert "nothing re-embedded" in out.getvalue() and 'backend = "milvus"' in out.getvalue()
    monkeypatch.undo()

    counting = HashEmbedder()
    migrated = Pipeline(make_settings(tmp_path / "data", "milvus", uri=str(target)), counting)
    try:
        assert counting.texts_embedded == 0
        for q in QUESTIONS:
            assert answer_key(migrated, q, "hybrid") == expected[q]
        assert counting.texts_embedded == len(QUESTIONS)  # the questions, nothing else
        assert migrated.check() == []
        assert migrated.stats().articles == 3
    finally:
        migrated.close()
    # a second migration into the same collections is refused, with one line
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sys, "stderr", err)
        assert main([*args, "--to", "milvus", "--uri", str(target)], out=io.StringIO()) == 1
    assert "already holds a newsdesk index" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_default_config_never_imports_milvus(tmp_path: Path, corpus_dir: Path) -> None:
    code = (
        "import sys\n"
        "from index.cli import main\n"
        f"cfg, data = {str(tmp_path / 'h.toml')!r}, {str(tmp_path / 'd')!r}\n"
        f"main(['--config', cfg, '--data-dir', data, '-q', 'index', {str(corpus_dir)!r}])\n"
        "main(['--config', cfg, '--data-dir', data, 'ask', 'Where is the bakery?'])\n"
        "main(['--config', cfg, '--data-dir', data, 'stats'])\n"
        "bad = sorted(m for m in sys.modules if 'milvus' in m or m == 'grpc')\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    (tmp_path / "h.toml").write_text(HASH_CONFIG, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0 and "clean" in r.stdout, r.stderr[-2000:]


def test_store_settings_are_validated(tmp_path: Path) -> None:
    cases = {
        '[store]\nbackend = "elastic"\n': "store.backend",
        '[store]\nuri = "milvus.internal"\n': "store.uri",
        '[store]\ntoken_env = "not a name"\n': "store.token_env",
        '[store]\ncollection_prefix = "9lives"\n': "store.collection_prefix",
        "[store]\nlease_seconds = 1\n": "store.lease_seconds",
        "[discord]\nshard_ids = [0]\n": "discord.shard_ids",
        "[discord]\nshard_count = 2\nshard_ids = [2]\n": "discord.shard_ids",
        "[discord]\nshard_count = 2\nshard_ids = [1, 1]\n": "discord.shard_ids",
        "[discord]\nshard_count = -1\n": "discord.shard_count",
    }
    for text, key in cases.items():
        cfg = tmp_path / "c.toml"
        cfg.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(cfg)
    cfg.write_text(
        '[store]\nbackend = "milvus"\nuri = "http://milvus.internal:19530"\n'
        "[discord]\nshard_count = 4\nshard_ids = [2, 3]\n",
        encoding="utf-8",
    )
    s = load_settings(cfg)
    assert (s.store.backend, s.discord.shard_ids) == ("milvus", [2, 3])


def test_unreachable_milvus_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    s = make_settings(tmp_path / "d", "milvus", uri=f"http://127.0.0.1:{port}")
    p = Pipeline(s, HashEmbedder())
    with pytest.raises(NewsdeskError, match=f"127.0.0.1:{port}") as e:
        p.stats()
    assert "\n" not in str(e.value)
    p.close()


# -- several processes on one Milvus (`milvus-lite server` on a loopback port) -------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[str]:
    """A Milvus Lite gRPC server in its own process: what several machines would share."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "milvus_lite",
            "server",
            "--data-dir",
            str(tmp_path / "srv"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"milvus-lite server did not start: {err[-1000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_processes_share_one_milvus(tmp_path: Path, milvus_server: str) -> None:
    """Two writer processes (one waits for the other's lease) and a reader process answering
    throughout, each with its own data dir: everything is in the shared Milvus."""
    from tests.fakes.corpus import write_corpus

    cfg = tmp_path / "shared.toml"
    cfg.write_text(
        HASH_CONFIG + f'[store]\nbackend = "milvus"\nuri = "{milvus_server}"\n', encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSDESK_LOCK_TIMEOUT": "120"}

    def newsdesk(n: int, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "index.cli",
                "--config",
                str(cfg),
                "--data-dir",
                str(tmp_path / f"proc{n}"),
                "-q",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    first = write_corpus(tmp_path / "c1", range(0, 3))
    assert newsdesk(0, "index", str(first)).wait(timeout=120) == 0
    writers = [
        newsdesk(1, "index", str(write_corpus(tmp_path / "c2", range(3, 40)))),
        newsdesk(2, "index", str(write_corpus(tmp_path / "c3", range(40, 80)))),
    ]
    asked = 0
    while any(w.poll() is None for w in writers) or asked < 2:
        r = newsdesk(3, "ask", "--json", "Who opened the exhibition in Town1?")
        out, err = r.communicate(timeout=120)
        assert r.returncode == 0, err
        answer = json.loads(out)
        assert answer["answer"] and "Town1" in answer["answer"]["text"]
        asked += 1
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    r = newsdesk(4, "stats", "--json")
    out, _ = r.communicate(timeout=120)
    assert json.loads(out)["articles"] == 80
    r = newsdesk(5, "check")
    assert r.wait(timeout=120) == 0
