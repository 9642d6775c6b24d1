"""Per-user question cooldown shared by slash commands and message questions, and the
per-user gate in front of title autocomplete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from discord import app_commands

T = TypeVar("T")


class UserCooldowns:
    """At most ``rate`` questions per ``per`` seconds for each user (a token bucket per user).

    Built on :class:`discord.app_commands.Cooldown`, so slash commands can raise the library's
    own :class:`~discord.app_commands.CommandOnCooldown` with it.
    """

    def __init__(self, rate: int, per: float, clock: Callable[[], float] = time.time) -> None:
        self.rate = max(1, int(rate))
        self.per = float(per)
        self._clock = clock
        self._buckets: dict[int, app_commands.Cooldown] = {}
        self._warned_until: dict[int, float] = {}

    @property
    def enabled(self) -> bool:
        return self.per > 0

    def bucket(self, user_id: int) -> app_commands.Cooldown:
        b = self._buckets.get(user_id)
        if b is None:
            if len(self._buckets) > 10_000:
                self._prune()
            b = self._buckets[user_id] = app_commands.Cooldown(self.rate, self.per)
        return b

    def hit(self, user_id: int) -> float | None:
        """Count one question; the seconds to wait if the user is over the rate, else None."""
        if not self.enabled:
            return None
        return self.bucket(user_id).update_rate_limit(self._clock())

    def should_warn(self, user_id: int, retry_after: float) -> bool:
        """True once per cooldown window: later questions in the window are dropped silently."""
        now = self._clock()
        if now < self._warned_until.get(user_id, 0.0):
            return False
        self._warned_until[user_id] = now + retry_after
        return True

    def _prune(self) -> None:
        now = self._clock()
        for uid, b in list(self._buckets.items()):
            if b.get_tokens(now) >= self.rate:
                del self._buckets[uid]
        for uid, until in list(self._warned_until.items()):
            if until <= now:
                del self._warned_until[uid]


@dataclass
class _Typing:
    seq: int = 0  # requests seen
    next_at: float = 0.0  # the earliest time of the next look-up
    running: bool = False
    last: list[Any] = field(default_factory=list)  # the choices of the latest look-up


class AutocompleteGate:
    """Per user: at most one autocomplete look-up at a time and one per ``per`` seconds.

    Discord sends an autocomplete request at every keystroke, and a client can send them far
    faster. A request that comes too soon waits for the rest of the window and is answered only
    if it is still the user's newest (the text they stopped at); superseded and overlapping
    requests get the user's previous choices at once. So one user costs at most one look-up per
    window, however fast they (or a script) type, and their last keystroke is still answered.
    """

    def __init__(self, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per = float(per)
        self._clock = clock
        self._users: dict[int, _Typing] = {}
        self.lookups = 0  # look-ups run (tests, logs)

    async def run(self, user_id: int, lookup: Callable[[], Awaitable[list[T]]]) -> list[T]:
        if self.per <= 0:
            self.lookups += 1
            return await lookup()
        st = self._users.get(user_id)
        if st is None:
            if len(self._users) > 10_000:
                self._prune()
            st = self._users[user_id] = _Typing()
        st.seq += 1
        mine = st.seq
        wait = st.next_at - self._clock()
        if wait > 0:
            await asyncio.sleep(min(wait, self.per))
            if st.seq != mine:  # a newer keystroke takes over
                return list(st.last)
        if st.running:
            return list(st.last)
        st.running = True
        st.next_at = self._clock() + self.per
        try:
            self.lookups += 1
            st.last = list(await lookup())
        finally:
            st.running = False
        return list(st.last)

    def _prune(self) -> None:
        now = self._clock()
        for uid, st in list(self._users.items()):
            if not st.running and st.next_at <= now:
                del self._users[uid]
