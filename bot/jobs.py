"""Where a long admin job (/add, /reindex, /subscribe, /remove) shows its progress and result.

An interaction token lasts 15 minutes (Discord); at 13–30 passages/s a re-index of 12–27k
passages outlives it, and every later edit of the deferred reply fails with 401. So a job
reports through a :class:`JobMessage`, which moves on instead of repeating a failing request:

1. the deferred reply, while its token is fresh (less than 14 minutes old on the bot's clock);
2. then a normal message in the command's channel that the bot owns and keeps editing;
3. if the bot cannot post there, a DM to the member who ran the command;
4. if neither works, nothing more is sent: one warning in the log says so, and the result is
   logged.

Each route is tried at most once: a route that fails is left for the next one, so a job never
produces a stream of failing requests. Throttling is the caller's
(:class:`bot.relay.ProgressRelay`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import discord

from . import formatting as fmt
from .interactions import NO_MENTIONS

log = logging.getLogger("newsdesk.bot.jobs")

TOKEN_LIFETIME = 15 * 60.0  # seconds an interaction token is valid (Discord)
TOKEN_MARGIN = 60.0  # leave the reply this long before the token expires


def token_gone(error: discord.HTTPException) -> bool:
    """The interaction's webhook no longer accepts this token (expired: 401 Invalid Webhook
    Token, 50027; or unknown: 404 Unknown Webhook, 10015)."""
    return error.status == 401 or error.code in (50027, 10015)


class JobMessage:
    """The progress and result of one long job, on the best route still open (module doc)."""

    def __init__(
        self,
        interaction: discord.Interaction,
        command: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interaction = interaction
        self.command = command  # "/reindex"
        self._clock = clock
        self._started = clock()  # the deferral: the token is at most seconds older
        self.route = "interaction"  # then "channel", "dm", or "none"
        self.message: discord.Message | None = None  # the message of the channel/DM route
        self._next = ["channel", "dm"]
        self.last = ""  # the latest content shown (or that could not be shown)

    def _token_fresh(self) -> bool:
        return self._clock() - self._started < TOKEN_LIFETIME - TOKEN_MARGIN

    async def show(self, content: str) -> None:
        """Show ``content`` (progress or the result); never raises for Discord errors."""
        self.last = content
        if self.route == "interaction":
            if not self._token_fresh():
                await self._move(content, token_valid=True)
                return
            try:
                await self.interaction.edit_original_response(
                    content=content, allowed_mentions=NO_MENTIONS
                )
                return
            except discord.HTTPException as e:
                if not token_gone(e):
                    log.warning("could not update the reply to %s: %s", self.command, e)
                    return
                log.info("the reply to %s can no longer be edited (%s)", self.command, e)
            await self._move(content, token_valid=False)
            return
        if self.message is not None:
            try:
                await self.message.edit(content=self._text(content), allowed_mentions=NO_MENTIONS)
                return
            except discord.HTTPException as e:
                log.warning(
                    "could not update the %s message of %s: %s", self.route, self.command, e
                )
            await self._move(content, token_valid=False)

    async def finish(self, content: str) -> None:
        """Show the result; when no route is left, the log has it."""
        await self.show(content)
        if self.route == "none":
            log.info("result of %s (not delivered): %s", self.command, content)

    def _text(self, content: str) -> str:
        user = self.interaction.user
        note = (
            f"-# {self.command} run by {user.mention}: Discord lets a command's reply be "
            "updated for 15 minutes only, so it continues here."
        )
        return fmt.clip(content, fmt.CONTENT_LIMIT - fmt.ulen(note) - 1) + "\n" + note

    async def _move(self, content: str, *, token_valid: bool) -> None:
        """Post ``content`` on the next open route; the last resort is a warning in the log."""
        while self._next:
            route = self._next.pop(0)
            try:
                if route == "channel":
                    channel = self.interaction.channel
                    if not isinstance(channel, discord.abc.Messageable):
                        continue
                    sent = await channel.send(self._text(content), allowed_mentions=NO_MENTIONS)
                else:
                    sent = await self.interaction.user.send(
                        self._text(content), allowed_mentions=NO_MENTIONS
                    )
            except discord.HTTPException as e:
                log.warning("cannot report %s by %s: %s", self.command, route, e)
                continue
            previous = self.route
            self.route, self.message = route, sent
            log.info("%s now reports in a %s message (%s)", self.command, route, sent.jump_url)
            if previous == "interaction" and token_valid:
                # the reply can still be edited once: point to where the job continues
                try:
                    await self.interaction.edit_original_response(
                        content=f"⏩ {self.command} continues here: {sent.jump_url}",
                        allowed_mentions=NO_MENTIONS,
                    )
                except discord.HTTPException as e:
                    log.info("could not point the reply of %s onwards: %s", self.command, e)
            return
        self.route, self.message = "none", None
        log.warning(
            "%s (by user %s) can no longer report to Discord: its reply expired after 15 "
            "minutes and the bot can neither post in channel %s nor send a DM; the job goes on "
            "and its result will be in this log",
            self.command,
            self.interaction.user.id,
            self.interaction.channel_id,
        )
