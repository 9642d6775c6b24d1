"""Subscriptions: ``/subscribe``, ``/unsubscribe``, ``/subscriptions`` (Manage Server only), the
background polling of feeds and folders, and announcements of new articles.

Polling is an asyncio task: it wakes when the next subscription is due (at least every
:attr:`SubscriptionsCog.tick` seconds), runs one round of
:class:`index.feeds.engine.SyncEngine` in a
worker thread (fetching, reading files and embedding never block the event loop), then sends the
announcements waiting in the queue. Each announcement is marked sent once its message went out,
so it appears once; messages are batched (several embeds per message, a digest when many
articles arrive at once), respect Discord's limits and never ping anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.errors import NewsdeskError
from index.feeds.engine import SyncEngine
from index.feeds.models import Announcement, SyncResult
from index.models import normalize_tags

from .. import formatting as fmt
from .. import formatting_admin as fmt_admin
from ..checks import check_url, guild_only, manager_only, may_administer
from ..interactions import NO_MENTIONS, InputError, defer
from ..jobs import JobMessage

if TYPE_CHECKING:
    from ..client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.subscriptions")


class SubscriptionsCog(commands.Cog):
    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot
        self.engine = SyncEngine(bot.pipeline)
        self.tick = 60.0  # seconds: the longest the poller sleeps between looks at the list
        self.min_wait = 5.0  # seconds: the shortest (e.g. while the index is busy)
        self.rounds = 0  # rounds completed (tests and logs)
        self._round_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self._poll_forever(), name="newsdesk-subscriptions")

    async def cog_unload(self) -> None:
        await self.stop_polling()
        await asyncio.to_thread(self.engine.close)

    async def stop_polling(self) -> None:
        """Stop the background poller (rounds then run only through ``poll_now``)."""
        if self._task is not None:
            async with self._round_lock:  # let a round in progress finish (its thread too)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    # -- polling -----------------------------------------------------------------------------
    def wake(self) -> None:
        """Look at the subscriptions now instead of at the end of the current wait."""
        self._wake.set()

    async def _poll_forever(self) -> None:
        await self.bot.wait_until_ready()
        while not self.bot.is_closed():
            try:
                await self.poll_now()
                wait = await self._next_wait()
            except NewsdeskError as e:  # e.g. a damaged subscriptions.db: say so, keep going
                log.warning("subscriptions: %s", e)
                wait = self.tick
            except Exception:  # the poller must survive anything: log it and go on
                log.exception("subscription round failed")
                wait = self.tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()

    async def _next_wait(self) -> float:
        due = await asyncio.to_thread(self.engine.next_due)
        if due is None:
            return self.tick
        return max(self.min_wait, min(self.tick, due - self.engine.clock()))

    async def poll_now(self) -> list[SyncResult]:
        """One round: sync the subscriptions that are due, then send the announcements."""
        async with self._round_lock:
            results = await asyncio.to_thread(self.engine.run_due)
            for r in results:
                if not r.ok:
                    log.warning("subscription %s failed: %s", r.target, r.error)
            await self.announce_pending()
            self.rounds += 1
            return results

    # -- announcements -----------------------------------------------------------------------
    async def announce_pending(self) -> int:
        """Send the queued announcements, channel by channel; the number of articles sent."""
        pending = await asyncio.to_thread(self.engine.pending_announcements)
        by_channel: dict[int, list[Announcement]] = defaultdict(list)
        for item in pending:
            by_channel[item.channel].append(item)
        sent = 0
        for channel_id, items in by_channel.items():
            sent += await self._announce_in(channel_id, items)
        return sent

    async def _announce_in(self, channel_id: int, items: list[Announcement]) -> int:
        all_ids = [i.id for i in items]
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(channel_id)
            except (discord.NotFound, discord.Forbidden) as e:
                log.warning(
                    "cannot announce %d new articles: channel %d unavailable (%s)",
                    len(items),
                    channel_id,
                    e,
                )
                await asyncio.to_thread(self.engine.mark_announced, all_ids)
                return 0
            except discord.HTTPException as e:
                log.warning("cannot reach channel %d now (%s); will try again", channel_id, e)
                return 0
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("channel %d cannot hold messages: announcements dropped", channel_id)
            await asyncio.to_thread(self.engine.mark_announced, all_ids)
            return 0
        sent = 0
        max_each = self.bot.settings.sync.announce_max
        for embeds, ids in fmt_admin.announcement_messages(items, max_each):
            try:
                await channel.send(embeds=embeds, allowed_mentions=NO_MENTIONS)
            except discord.Forbidden as e:
                log.warning("no permission to announce in channel %d (%s)", channel_id, e)
                await asyncio.to_thread(self.engine.mark_announced, all_ids)
                return sent
            except discord.HTTPException as e:
                log.warning("announcement in channel %d failed (%s); will retry", channel_id, e)
                return sent
            await asyncio.to_thread(self.engine.mark_announced, ids)
            sent += len(ids)
        return sent

    # -- commands ----------------------------------------------------------------------------
    @app_commands.command(
        name="subscribe", description="Keep an RSS/Atom feed in sync with the index (admins)"
    )
    @app_commands.describe(
        url="http(s) address of an RSS or Atom feed",
        channel="Announce new articles in this channel (optional)",
        interval="Minutes between checks (default 30)",
        tags="Tags for its articles, separated by commas (for channel scopes: /scope)",
    )
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def subscribe(
        self,
        interaction: discord.Interaction,
        url: str,
        channel: discord.TextChannel | None = None,
        interval: app_commands.Range[int, 5, 10080] | None = None,
        tags: app_commands.Range[str, 1, 1000] | None = None,
    ) -> None:
        url = check_url(url)
        try:
            tag_list = normalize_tags(t for t in (tags or "").split(",") if t.strip())
        except ValueError as e:
            raise InputError(f"Not subscribed: {e}.") from None
        await defer(interaction, ephemeral=False)
        # the first sync of a large feed can outlive the 15-minute interaction token
        job = JobMessage(interaction, "/subscribe", clock=self.bot.clock)
        log.info("/subscribe %s by %s", url, interaction.user.id)
        async with self._round_lock:  # not in the middle of a polling round
            status, result = await asyncio.to_thread(
                self.engine.subscribe,
                "feed",
                url,
                interval=float(interval) if interval else None,
                channel=channel.id if channel else None,
                guild=interaction.guild_id,
                tags=tag_list,
            )
        await job.finish(fmt_admin.subscribed_message(status, result))
        self.wake()

    @app_commands.command(
        name="unsubscribe", description="Stop syncing a feed; its articles stay (admins)"
    )
    @app_commands.describe(feed="Start typing its title or address and pick a suggestion")
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def unsubscribe(self, interaction: discord.Interaction, feed: str) -> None:
        ref = fmt.clean(feed)
        if not ref:
            raise InputError("Name a subscription: start typing and pick a suggestion.")
        await defer(interaction, ephemeral=False)  # the database write may wait on a lock
        status = await asyncio.to_thread(self.engine.unsubscribe, ref, interaction.guild_id)
        log.info("/unsubscribe %s by %s", status.subscription.target, interaction.user.id)
        await interaction.edit_original_response(
            content=fmt_admin.unsubscribed_message(status), allowed_mentions=NO_MENTIONS
        )

    @unsubscribe.autocomplete("feed")
    async def unsubscribe_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None or not await may_administer(interaction):
            return []
        try:
            statuses = await asyncio.to_thread(self.engine.statuses, interaction.guild_id)
        except Exception:
            log.exception("autocomplete of subscriptions failed")
            return []
        q = current.strip().lower()
        choices = []
        for s in statuses:
            label = f"{s.name} {s.subscription.target}".lower()
            # only what this server may remove: its own, made with /subscribe
            if s.subscription.guild == interaction.guild_id and (not q or q in label):
                name = fmt.choice_name(s.name, s.subscription.label)
                choices.append(app_commands.Choice(name=name, value=f"#{s.id}"))
        return choices[: fmt.CHOICES_LIMIT]

    @app_commands.command(
        name="subscriptions", description="Subscribed feeds and folders with their status"
    )
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        statuses = await asyncio.to_thread(self.engine.statuses, interaction.guild_id)
        await interaction.edit_original_response(
            embed=fmt_admin.subscriptions_embed(statuses), allowed_mentions=NO_MENTIONS
        )


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.subscriptions")``)."""
    await bot.add_cog(SubscriptionsCog(bot))
