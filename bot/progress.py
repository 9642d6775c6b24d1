"""Carry engine progress from a worker thread to throttled edits of a Discord message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("newsdesk.bot.progress")

T = TypeVar("T")
Show = Callable[[str, int, int, float], Awaitable[None]]  # (stage, done, total, seconds)


class ProgressRelay:
    """A thread-safe ``Progress`` callback whose updates are shown at most once per interval.

    The engine calls the relay from its worker thread; the relay only stores the latest state
    and wakes the event loop (``call_soon_threadsafe``). A task on the loop shows the latest
    state, waiting so that two shows are at least ``interval`` seconds apart. Intermediate
    states are skipped, never queued.
    """

    def __init__(
        self, show: Show, *, interval: float = 1.0, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self._show = show
        self.interval = interval
        self._loop = loop or asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._latest: tuple[str, int, int] | None = None
        self._wake = asyncio.Event()
        self._started = time.monotonic()
        self.shown = 0
        self.show_times: list[float] = []
        self.last_shown: float | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:  # worker thread
        with self._lock:
            self._latest = (stage, done, total)
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _pump(self) -> None:
        last = self._started  # the deferred "thinking…" counts as the first show
        while True:
            await self._wake.wait()
            wait = self.interval - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            with self._lock:
                latest = self._latest
            if latest is None:
                continue
            last = time.monotonic()
            try:
                await self._show(*latest, last - self._started)
            except Exception as e:  # a failed progress edit must not fail the work
                log.warning("progress update failed: %s", e)
            self.shown += 1
            self.show_times.append(last)
            self.last_shown = last

    async def settle(self) -> None:
        """Wait until the next show would be allowed (call before the final edit)."""
        if self.last_shown is not None:
            wait = self.interval - (time.monotonic() - self.last_shown)
            if wait > 0:
                await asyncio.sleep(wait)

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run ``fn(*args, progress=self)`` in a worker thread, showing progress meanwhile."""
        pump = asyncio.create_task(self._pump(), name="newsdesk-progress")
        try:
            return await asyncio.to_thread(fn, *args, progress=self)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
