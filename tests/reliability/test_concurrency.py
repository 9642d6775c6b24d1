"""Readers keep answering from the previous generation while a writer re-indexes; one writer.

- threads of one process (the bot's situation: engine calls in worker threads),
- the asyncio variant through ``asyncio.to_thread``,
- a reader that is another Pipeline (another process's view),
- two writer processes at once: the second waits (and says so) or gives up after
  ``NEWSDESK_LOCK_TIMEOUT``; ``newsdesk check`` is clean afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from index.embedding.hashing import HashEmbedder
from index.errors import IndexBusyError
from index.pipeline import Pipeline
from tests.conftest import ROOT
from tests.fakes.corpus import hash_settings, open_pipeline, write_corpus

N_ARTICLES = 60
QUESTIONS = [f"Who opened the exhibition in Town{i}?" for i in (3, 17, 29, 41, 58)]


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    """A data dir with N_ARTICLES generated articles."""
    corpus = write_corpus(tmp_path / "corpus", range(N_ARTICLES))
    data = tmp_path / "data"
    with open_pipeline(data) as p:
        p.add([str(corpus)])
    return data


def expected_answers(p: Pipeline) -> dict[str, str]:
    out = {}
    for q in QUESTIONS:
        ans = p.ask(q)
        assert ans.quote is not None, q
        out[q] = ans.quote.text
    return out


def _ask_loop(
    p: Pipeline,
    writer: Pipeline,
    expected: dict[str, str],
    stop: threading.Event,
    during_write: list[bool],
    errors: list[str],
) -> None:
    i = 0
    while not stop.is_set() or i < len(QUESTIONS):
        q = QUESTIONS[i % len(QUESTIONS)]
        i += 1
        writing = writer.writing
        try:
            ans = p.ask(q)
        except Exception as e:  # any failure is a test failure, reported below
            errors.append(f"{q}: {type(e).__name__}: {e}")
            continue
        got = ans.quote.text if ans.quote else None
        if got != expected[q]:
            errors.append(f"{q}: expected {expected[q]!r}, got {got!r}")
        else:
            during_write.append(writing and writer.writing)


def _run_readers_during_reindex(reader: Pipeline, writer: Pipeline, rounds: int) -> list[bool]:
    """Four reader threads ask in a loop while ``writer`` re-indexes ``rounds`` times."""
    expected = expected_answers(reader)
    gen0 = writer.store.generation()
    stop = threading.Event()
    during_write: list[bool] = []
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=_ask_loop, args=(reader, writer, expected, stop, during_write, errors)
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    try:
        for _ in range(rounds):
            writer.reindex()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, (len(errors), errors[:5])
    assert writer.store.generation() == gen0 + rounds
    assert reader.check() == []
    return during_write


def test_threads_keep_answering_during_reindex(indexed: Path) -> None:
    with open_pipeline(indexed) as p:
        during_write = _run_readers_during_reindex(p, p, rounds=3)
    assert len(during_write) >= 4 * len(QUESTIONS)
    assert sum(during_write) >= 4  # answered while a re-index was running, not only after


def test_another_pipeline_keeps_answering_during_reindex(indexed: Path) -> None:
    """A reader with its own Pipeline (like another process) follows the generations."""
    with open_pipeline(indexed) as reader, open_pipeline(indexed) as writer:
        during_write = _run_readers_during_reindex(reader, writer, rounds=3)
        assert reader.snapshot().generation == writer.store.generation()
    assert sum(during_write) >= 4


async def test_asyncio_to_thread_keeps_answering_during_reindex(indexed: Path) -> None:
    with open_pipeline(indexed) as p:
        expected = expected_answers(p)
        gen0 = p.store.generation()

        async def reindex_three_times() -> None:
            for _ in range(3):
                await asyncio.to_thread(p.reindex)  # how the bot runs /reindex

        writer = asyncio.create_task(reindex_three_times())
        answered = during_write = 0
        while not writer.done() or answered < len(QUESTIONS):
            writing = p.writing
            batch = await asyncio.gather(*(asyncio.to_thread(p.ask, q) for q in QUESTIONS))
            for q, ans in zip(QUESTIONS, batch, strict=True):
                assert ans.quote is not None and ans.quote.text == expected[q], q
            answered += len(batch)
            during_write += len(batch) if writing and p.writing else 0
        await writer
        assert during_write >= len(QUESTIONS)
        assert p.store.generation() == gen0 + 3
        assert p.check() == []


def test_reader_starts_again_when_its_generation_vanishes(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader reads generation N, then (before it loads N's files) a writer elsewhere
    publishes twice and removes N: the reader starts again on the newest generation."""
    with open_pipeline(indexed) as reader, open_pipeline(indexed) as writer:
        expected = expected_answers(writer)
        reader2 = Pipeline(reader.settings, reader.embedder)  # nothing loaded yet
        gen = reader2.store.generation()
        real_load = reader2._load_snapshot
        seen: list[int] = []

        def load(g: int) -> Any:
            seen.append(g)
            if len(seen) == 1:  # between reading N and loading it
                writer.reindex()
                writer.reindex()
                assert not (indexed / "generations" / f"{g:08d}").exists()
            return real_load(g)

        monkeypatch.setattr(reader2, "_load_snapshot", load)
        ans = reader2.ask(QUESTIONS[0])
        assert ans.quote is not None and ans.quote.text == expected[QUESTIONS[0]]
        assert seen == [gen, gen + 2]
        reader2.close()


def test_second_writer_thread_is_refused_at_once(indexed: Path) -> None:
    with open_pipeline(indexed) as p, p.writer():
        t0 = time.monotonic()
        with pytest.raises(IndexBusyError, match="already being updated"):
            p.reindex()
        assert time.monotonic() - t0 < 5  # refused, not queued


def _cli(
    data: Path, config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "index.cli",
            "--config",
            str(config),
            "--data-dir",
            str(data),
            *args,
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


HOLDER = """
import sys, time
from pathlib import Path
from tests.fakes.corpus import open_pipeline

data, go = Path(sys.argv[1]), Path(sys.argv[2])

def progress(stage: str, done: int, total: int) -> None:
    if stage == "chunking" and done == 1:  # inside the writer: hold the lock until told
        print("locked", flush=True)
        while not go.exists():
            time.sleep(0.01)

with open_pipeline(data) as p:
    p.reindex(progress=progress)
print("done", flush=True)
"""


@pytest.mark.slow
def test_two_writer_processes(indexed: Path, hash_config: Path, tmp_path: Path) -> None:
    extra = write_corpus(tmp_path / "extra", range(1000, 1002))
    go = tmp_path / "go"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(indexed), str(go)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        gen = open_pipeline(indexed).store.generation()
        # a second writer with a short lock timeout says it waits, then gives up; no change
        refused = _cli(
            indexed, hash_config, "index", str(extra), env={"NEWSDESK_LOCK_TIMEOUT": "0.3"}
        )
        out, err = refused.communicate(timeout=60)
        assert refused.returncode == 1, (out, err)
        lines = err.strip().splitlines()
        assert any("another newsdesk process is updating" in ln and "waiting" in ln for ln in lines)
        assert lines[-1].startswith("newsdesk: error: another newsdesk process is updating")
        assert "Traceback" not in err
        # a patient one logs that it waits, and writes once the first has finished
        waiting = _cli(
            indexed, hash_config, "index", str(extra), env={"NEWSDESK_LOCK_TIMEOUT": "120"}
        )
        assert waiting.stderr is not None
        for line in iter(waiting.stderr.readline, ""):
            if "another newsdesk process is updating" in line:
                break
        assert "waiting" in line, line
        assert waiting.poll() is None
        assert open_pipeline(indexed).store.generation() == gen  # nothing written meanwhile
        go.touch()
        assert holder.wait(60) == 0
        out2, err2 = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, err2
        assert "2 added" in out2
    finally:
        go.touch()
        holder.wait(60)
    with open_pipeline(indexed) as p:
        assert p.store.generation() == gen + 2  # the re-index, then the patient writer
        assert p.check() == []
    check = _cli(indexed, hash_config, "check")
    cout, cerr = check.communicate(timeout=60)
    assert check.returncode == 0, (cout, cerr)
    assert cout.startswith(f"index OK: {N_ARTICLES + 2} articles, ")


def test_lock_timeout_in_process(indexed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the lock: this one waits NEWSDESK_LOCK_TIMEOUT, then refuses."""
    from filelock import FileLock

    monkeypatch.setenv("NEWSDESK_LOCK_TIMEOUT", "0.3")
    other = FileLock(str(indexed / "write.lock"))
    other.acquire()
    try:
        with open_pipeline(indexed) as p, pytest.raises(IndexBusyError, match="another newsdesk"):
            p.reindex()
    finally:
        other.release()
    with Pipeline(hash_settings(indexed), HashEmbedder()) as p:
        p.reindex()
        assert p.check() == []
