"""Throttled edits of one Discord message: the latest state is shown, never a queue of them.

Two uses share one mechanism, :class:`Relay`:

- a written answer growing on the event loop (``bot.cogs.ask``): :meth:`Relay.update` with
  each state, then :meth:`Relay.finish` with the final one;
- engine progress arriving from a worker thread (``bot.cogs.admin``): :class:`ProgressRelay`,
  a thread-safe ``Progress`` callback that runs the work and feeds a :class:`Relay`.

Discord rate-limits message edits (about 5 per 5 s per channel), and an edit that waits in
discord.py's queue shows an old state when it lands: so only the newest state is kept, and a
task shows it so that an edit starts at least ``interval`` seconds after the previous one
finished (the deferral counting as the first). A failed edit is logged and the work goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger("newsdesk.bot.relay")

T = TypeVar("T")
S = TypeVar("S")
Show = Callable[[str, int, int, float], Awaitable[None]]  # (stage, done, total, seconds)


class Relay(Generic[S]):
    """Show the newest state given to :meth:`update` at most once per ``interval`` (module doc).

    Created on the event loop, where its task starts at once. :meth:`update` is for the loop,
    :meth:`update_threadsafe` for a worker thread. :meth:`close` stops the task -- waiting for an
    edit in flight, so that no stale state can land after the final one --; :meth:`finish`
    closes, waits out the interval if anything was shown, then shows the final state.
    """

    def __init__(
        self,
        show: Callable[[S], Awaitable[None]],
        *,
        interval: float = 1.0,
        failed: str = "could not show the answer so far",
        name: str = "newsdesk-stream",
        started: float | None = None,
    ) -> None:
        self._show = show
        self.interval = interval
        self._failed = failed  # the log line of a failed edit, before ": <error>"
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()  # _latest, when a worker thread updates
        self._latest: S | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        # the first show comes ``interval`` after this (the deferral counts as the first show)
        self._started = time.monotonic() if started is None else started
        self.show_times: list[float] = []
        self._pump = asyncio.create_task(self._run(), name=name)

    @property
    def last_shown(self) -> float | None:
        return self.show_times[-1] if self.show_times else None

    def update(self, state: S) -> None:
        """Keep ``state`` as the one to show next (on the event loop)."""
        with self._lock:
            self._latest = state
        self._wake.set()

    def update_threadsafe(self, state: S) -> None:
        """:meth:`update` from another thread: store, then wake the loop."""
        with self._lock:
            self._latest = state
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._wake.set)

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
            with self._lock:
                state, self._latest = self._latest, None
            if state is None:
                continue
            try:
                await self._show(state)
            except Exception as e:  # a failed partial edit must not lose the answer or the work
                log.warning("%s: %s", self._failed, e)
            # spaced from when the edit was done, so edits also reach Discord spaced
            last = time.monotonic()
            self.show_times.append(last)

    async def close(self) -> None:
        """Stop showing partial states (waits for an edit in flight)."""
        self._closed.set()
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump

    async def settle(self) -> None:
        """Wait until the next show would be allowed (call before a final edit)."""
        if self.last_shown is not None:
            wait = self.interval - (time.monotonic() - self.last_shown)
            if wait > 0:
                await asyncio.sleep(wait)

    async def finish(self, final: S) -> None:
        """Show ``final``: at once if nothing was shown yet, else ``interval`` after the last."""
        await self.close()
        await self.settle()
        await self._show(final)
        self.show_times.append(time.monotonic())


class ProgressRelay:
    """A thread-safe ``Progress`` callback whose updates are shown at most once per interval.

    :meth:`run` runs the work in a worker thread with ``progress=self``; the engine calls the
    relay from that thread, and a :class:`Relay` on the loop shows the latest
    ``(stage, done, total)`` with the seconds since the relay was made. Intermediate states are
    skipped, never queued. Call :meth:`settle` before the final edit.
    """

    def __init__(self, show: Show, *, interval: float = 1.0) -> None:
        self._show = show
        self.interval = interval
        self._started = time.monotonic()  # the deferred "thinking…" counts as the first show
        self._relay: Relay[tuple[str, int, int]] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:  # worker thread
        if self._relay is not None:
            self._relay.update_threadsafe((stage, done, total))

    async def _show_state(self, state: tuple[str, int, int]) -> None:
        await self._show(*state, time.monotonic() - self._started)

    async def settle(self) -> None:
        """Wait until the next show would be allowed (call before the final edit)."""
        if self._relay is not None:
            await self._relay.settle()

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run ``fn(*args, progress=self)`` in a worker thread, showing progress meanwhile."""
        self._relay = Relay(
            self._show_state,
            interval=self.interval,
            failed="progress update failed",
            name="newsdesk-progress",
            started=self._started,
        )
        try:
            return await asyncio.to_thread(fn, *args, progress=self)
        finally:
            await self._relay.close()
