"""Per-user question cooldown shared by slash commands and message questions."""

from __future__ import annotations

import time
from collections.abc import Callable

from discord import app_commands


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
