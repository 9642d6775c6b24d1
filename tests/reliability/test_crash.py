"""Crash safety: `newsdesk index` / `newsdesk reindex` killed with SIGKILL at many points.

After every kill the index must load in a fresh process view, answer a question, be exactly the
state before the write or the state after it (never a mix), and be consistent: every FAISS id
has its passage row and vice versa, the BM25 ids are the passage ids, ``meta.generation`` names
an existing generation folder (``Pipeline.check()`` verifies all of it, checksums included).
Leftover ``.tmp`` folders are harmless and removed by the next write.

Half of the kills land at a random time before the process publishes (start-up, reading,
chunking, embedding); the other half wait for the next generation's ``.tmp`` folder to appear
and then a random fraction of the time the calibration run took to write and rename it, or to
finish, so the window "files written → renamed → SQLite commit → clean-up" is hit many times.
A kill point where the run had already ended does not count; another is tried. Figures (kill
points, outcomes) go to a JSON file in the pytest tmp dir and are quoted in
docs/reliability.md.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from index.config import FetchSettings
from index.ingest.sources import collect
from index.storage.local import GEN_DIR
from tests.conftest import ROOT
from tests.fakes.corpus import (
    WORDS,
    IndexState,
    figures_path,
    index_state,
    open_pipeline,
    write_corpus,
    write_figures,
)

KILLS = 22
SEED = 20240611
STABLE = range(0, 150)  # never rewritten
CHANGING = range(150, 300)  # rewritten (a new edition) by every `index` run
QUESTION = "Who opened the exhibition in Town7?"
EXPECTED_QUOTE = f"The mayor of Town7 opened the {WORDS[7]} exhibition."


def hashes_of(folder: Path) -> dict[str, str]:
    docs = collect([str(folder)], FetchSettings()).documents
    return {d.article_id: d.content_hash for d in docs}


def tmp_dirs(data: Path) -> list[str]:
    root = data / GEN_DIR
    return (
        sorted(p.name for p in root.iterdir() if p.name.endswith(".tmp")) if root.is_dir() else []
    )


def leftovers(data: Path, generation: int) -> dict[str, int]:
    """``.tmp`` folders and the next generation's folder (renamed, not committed), by mtime."""
    root = data / GEN_DIR
    names = [*tmp_dirs(data), f"{generation + 1:08d}"]
    return {n: (root / n).stat().st_mtime_ns for n in names if (root / n).is_dir()}


def newsdesk(data: Path, config: Path, *args: str) -> list[str]:
    """The command line of a `newsdesk` subprocess (hash embedder: no model to load)."""
    return [
        sys.executable,
        "-m",
        "index.cli",
        "--config",
        str(config),
        "--data-dir",
        str(data),
        *args,
    ]


def start(data: Path, config: Path, op: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        newsdesk(data, config, "-q", *op),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for_new(
    proc: subprocess.Popen[bytes], present: Callable[[], bool], timeout: float = 60
) -> float:
    """Seconds from now until ``present()`` holds for something ``proc`` made (or it ends).

    Something already there (left by an earlier kill) does not count: the writer removes it
    first (``.tmp`` folders when it takes the lock, a renamed, uncommitted generation just
    before it writes its own), so wait for it to vanish and come back.
    """
    t0 = time.monotonic()
    stale = present()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        now = present()
        if stale and not now:
            stale = False
        elif now and not stale:
            break
        time.sleep(0.0005)
    return time.monotonic() - t0


def wait_for_publishing(data: Path, proc: subprocess.Popen[bytes]) -> float:
    """Until ``proc`` creates its ``.tmp`` generation folder."""
    return wait_for_new(proc, lambda: bool(tmp_dirs(data)))


def calibrate(data: Path, config: Path, op: list[str]) -> tuple[float, float, float]:
    """Run ``op`` to the end: seconds until its ``.tmp`` folder appears, until it is renamed to
    the next generation, and until the process exits."""
    final = data / GEN_DIR / f"{index_state(data, files=False).generation + 1:08d}"
    t0 = time.monotonic()
    proc = start(data, config, op)
    publishing = wait_for_publishing(data, proc)
    renamed = publishing + wait_for_new(proc, final.is_dir)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return publishing, renamed, time.monotonic() - t0


def verify(data: Path, pre: IndexState, post_hashes: dict[str, str]) -> str:
    """Consistent, answering, and either ``pre`` or the state after the write: which one."""
    st = index_state(data, files=False)
    assert (data / GEN_DIR / f"{st.generation:08d}").is_dir()
    with open_pipeline(data) as p:
        # FAISS ids == passage ids == BM25 ids, checksums, meta, offsets, no orphan passages
        assert p.check() == []
        ans = p.ask(QUESTION)
        assert ans.quote is not None and ans.quote.text == EXPECTED_QUOTE
        art = p.get_article(ans.quote.article_id)
        assert art.text[ans.quote.start : ans.quote.end] == ans.quote.text
    if st == pre:
        return "old"
    assert st.generation == pre.generation + 1, (st.generation, pre.generation)
    assert st.hashes == post_hashes, "articles of the old and the new state mixed"
    assert st.chunk_ids != pre.chunk_ids
    return "new"


@pytest.mark.slow
def test_sigkill_at_many_points_leaves_old_or_new_state(
    tmp_path: Path, hash_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rnd = random.Random(SEED)
    data = tmp_path / "data"
    stable = write_corpus(tmp_path / "stable", STABLE)
    changing = write_corpus(tmp_path / "changing", CHANGING, version=0)
    with open_pipeline(data) as p:
        p.add([str(stable), str(changing)])
    stable_hashes = hashes_of(stable)

    edition = 1
    write_corpus(changing, CHANGING, version=edition)
    timing = {
        "index": calibrate(data, hash_config, ["index", str(changing)]),
        "reindex": calibrate(data, hash_config, ["reindex"]),
    }

    outcomes: Counter[str] = Counter()
    kill_points: list[dict[str, object]] = []
    k = 0  # kill points tried; those where the run had already ended do not count
    while sum(not str(p["outcome"]).startswith("finished") for p in kill_points) < KILLS:
        assert k < 2 * KILLS, kill_points
        op = "index" if k % 2 == 0 else "reindex"
        if op == "index":
            edition += 1
            write_corpus(changing, CHANGING, version=edition)
            post = {**stable_hashes, **hashes_of(changing)}
            argv = ["index", str(changing)]
        else:
            argv = ["reindex"]
        pre = index_state(data, files=False)
        before = leftovers(data, pre.generation)
        if op == "reindex":
            post = pre.hashes
        publishing, renamed, total = timing[op]
        proc = start(data, hash_config, argv)
        t0 = time.monotonic()
        if k % 4 < 2:  # start-up, reading, chunking, embedding: before it publishes
            mode = "timed"
            time.sleep(rnd.uniform(0.1, 1.0) * publishing)
        elif k % 4 == 2:  # once its .tmp folder appears: while the files are written
            mode = "writing files"
            wait_for_publishing(data, proc)
            time.sleep(rnd.uniform(0.0, 1.0) * max(renamed - publishing, 0.005))
        else:  # once the folder is renamed: SQLite commit, clean-up, exit
            mode = "renamed"
            wait_for_new(proc, (data / GEN_DIR / f"{pre.generation + 1:08d}").is_dir)
            time.sleep(rnd.uniform(0.0, 0.9) * max(total - renamed, 0.005))
        at = time.monotonic() - t0
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
        finished = proc.returncode == 0  # it ended before the signal
        outcome = verify(data, pre, post)
        after = leftovers(data, pre.generation)
        new = sorted(n for n, t in after.items() if before.get(n) != t)  # this run's
        label = "finished" if finished else outcome
        if any(n.endswith(".tmp") for n in new):
            label += " + .tmp left"
        elif outcome == "old" and new:
            label += " + renamed, uncommitted generation left"
        outcomes[label] += 1
        kill_points.append(
            {"op": op, "mode": mode, "at_s": round(at, 3), "outcome": label, "left": new}
        )
        k += 1

    # a last, uninterrupted write cleans whatever the kills left behind
    proc = start(data, hash_config, ["reindex"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert tmp_dirs(data) == []
    gens = sorted(int(p.name) for p in (data / GEN_DIR).iterdir())
    current = index_state(data).generation
    assert gens == [current - 1, current]
    check = subprocess.run(
        newsdesk(data, hash_config, "check"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0 and check.stdout.startswith("index OK: 300 articles"), check

    killed = [p for p in kill_points if not str(p["outcome"]).startswith("finished")]
    figures = {
        "kill_points_tried": len(kill_points),
        "killed_mid_run": len(killed),
        "outcomes": dict(outcomes),
        # seconds from start: .tmp folder appears, renamed to the next generation, exited
        "calibration_s": {op: [round(t, 3) for t in ts] for op, ts in timing.items()},
        "kill_points": kill_points,
    }
    write_figures(figures_path(tmp_path_factory.getbasetemp(), "crash"), figures)
    # the kills must actually have interrupted writes, on both sides of the commit
    assert len(killed) == KILLS >= 20, figures
    assert sum(n for o, n in outcomes.items() if o.startswith("old")) >= 5, figures
    assert sum(n for o, n in outcomes.items() if not o.startswith("old")) >= 3, figures
    assert any(".tmp left" in o or "uncommitted" in o for o in outcomes), figures
