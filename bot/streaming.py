"""Show a growing written answer by editing one Discord message at most once per interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("newsdesk.bot.streaming")

T = TypeVar("T")


class StreamRelay(Generic[T]):
    """Throttled edits of a streamed answer: the latest state is shown, never a queue of them.

    :meth:`update` (on the event loop) stores the newest state; a task shows it so that an
    edit starts at least ``interval`` seconds after the previous one finished (the deferral
    counting as the first). A
    failed edit is logged and the stream goes on. :meth:`finish` stops the task -- waiting for
    an edit in flight, so that no stale state can land after the final one --, waits out the
    interval if anything was shown, then shows the final state.
    """

    def __init__(self, show: Callable[[T], Awaitable[None]], *, interval: float = 1.0) -> None:
        self._show = show
        self.interval = interval
        self._latest: T | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._started = time.monotonic()
        self.show_times: list[float] = []
        self._pump = asyncio.create_task(self._run(), name="newsdesk-stream")

    @property
    def last_shown(self) -> float | None:
        return self.show_times[-1] if self.show_times else None

    def update(self, state: T) -> None:
        self._latest = state
        self._wake.set()

    async def _run(self) -> None:
        last = self._started
        while not self._closed.is_set():
            await self._wake.wait()
            wait = self.interval - (time.monotonic() - last)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), wait)
            if self._closed.is_set():
                return
            self._wake.clear()
            state, self._latest = self._latest, None
            if state is None:
                continue
            try:
                await self._show(state)
            except Exception as e:  # a failed partial edit must not lose the answer
                log.warning("could not show the answer so far: %s", e)
            # spaced from when the edit was done, so edits also reach Discord spaced
            last = time.monotonic()
            self.show_times.append(last)

    async def close(self) -> None:
        """Stop showing partial states (waits for an edit in flight)."""
        self._closed.set()
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump

    async def finish(self, final: T) -> None:
        """Show ``final``: at once if nothing was shown yet, else ``interval`` after the last."""
        await self.close()
        if self.last_shown is not None:
            wait = self.interval - (time.monotonic() - self.last_shown)
            if wait > 0:
                await asyncio.sleep(wait)
        await self._show(final)
        self.show_times.append(time.monotonic())
