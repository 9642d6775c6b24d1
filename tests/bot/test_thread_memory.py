"""bot.threads.ThreadMemory: waiting for answers still being posted to a thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot import threads
from bot.threads import ThreadMemory


async def test_drain_waits_for_a_question_on_its_way(tmp_path: Path) -> None:
    memory = ThreadMemory(tmp_path)
    started = asyncio.Event()

    async def answer() -> None:
        async with memory.delivering(7):
            started.set()
            await asyncio.sleep(0.2)  # Discord's response is late
            await memory.remember(7, "Who won?")

    task = asyncio.create_task(answer())
    await started.wait()
    await memory.drain()
    assert memory.knows(7) and memory.store.questions(7) == ["Who won?"]
    await task
    memory.close()


async def test_settle_waits_only_for_its_own_thread_and_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "SETTLE_SECONDS", 0.3)
    memory = ThreadMemory(tmp_path)
    stuck = asyncio.Event()

    async def never_done() -> None:
        async with memory.delivering(1):
            await stuck.wait()

    task = asyncio.create_task(never_done())
    await asyncio.sleep(0)
    other = asyncio.create_task(memory.settle(2))  # another thread: no wait
    await asyncio.sleep(0)
    assert other.done()
    waiting = asyncio.create_task(memory.settle(1))  # its own thread: it waits ...
    await asyncio.sleep(0)
    assert not waiting.done()
    await waiting  # ... for a delivery that never ends: given up after SETTLE_SECONDS
    assert 1 in memory._delivering and not stuck.is_set()
    stuck.set()
    await task
    assert memory._delivering == {}  # nothing left behind
    async with memory.delivering(None):  # not a thread: nothing recorded
        assert memory._delivering == {}
    memory.close()
