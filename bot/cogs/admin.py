"""Admin commands: ``/add``, ``/remove``, ``/reindex``, ``/stats`` (Manage Server only).

Registered with ``default_permissions(manage_guild=True)`` (Discord hides them from others) and
checked again at run time by :func:`bot.checks.is_manager`, because a server can change who may
use a command, and because all servers share one index: only the servers, users and roles the
operator names in ``[discord]`` may change or read it (``admin_guild_ids``, ``admin_user_ids``,
``admin_role_ids``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.errors import IndexBusyError

from .. import formatting_admin as fmt_admin
from ..checks import check_url, guild_only, manager_only, may_administer
from ..interactions import NO_MENTIONS, defer
from ..jobs import JobMessage
from ..relay import ProgressRelay

if TYPE_CHECKING:
    from ..client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.admin")


class AdminCog(commands.Cog):
    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot
        self._busy: str | None = None
        self._busy_since = 0.0

    @contextlib.asynccontextmanager
    async def exclusive(self, what: str) -> AsyncIterator[None]:
        """One index update at a time; a second one is refused at once (before deferring)."""
        if self._busy is not None or self.bot.pipeline.writing:
            running = self._busy or "another update"
            since = time.monotonic() - self._busy_since if self._busy else 0
            started = f", started {since:.0f} s ago" if self._busy else ""
            raise IndexBusyError(
                f"The index is being updated ({running}{started}); "
                "questions are still answered. Try again when it finishes."
            )
        self._busy, self._busy_since = what, time.monotonic()
        try:
            yield
        finally:
            self._busy = None

    def _job(self, interaction: discord.Interaction, command: str) -> JobMessage:
        """Where the job reports: the deferred reply, then (after 14 minutes, or when Discord
        refuses the token) a channel message or a DM (:class:`bot.jobs.JobMessage`)."""
        return JobMessage(interaction, command, clock=self.bot.clock)

    def _relay(self, job: JobMessage, action: str) -> ProgressRelay:
        async def show(stage: str, done: int, total: int, seconds: float) -> None:
            await job.show(fmt_admin.progress_message(action, stage, done, total, seconds))

        return ProgressRelay(show, interval=self.bot.progress_interval)

    @app_commands.command(name="add", description="Add a web page or an RSS/Atom feed (admins)")
    @app_commands.describe(url="http(s) address of a web page or an RSS/Atom feed")
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def add(self, interaction: discord.Interaction, url: str) -> None:
        url = check_url(url)
        async with self.exclusive("/add"):
            await defer(interaction, ephemeral=False)
            job = self._job(interaction, "/add")
            relay = self._relay(job, "Indexing")
            log.info("/add %s by %s", url, interaction.user.id)
            report = await relay.run(self.bot.pipeline.add, [url])
            await relay.settle()
            for skipped in report.skipped:  # shown to the member without addresses
                log.info("/add %s skipped %s", url, skipped)
            await job.finish(fmt_admin.add_report_message(url, report))

    @app_commands.command(name="remove", description="Remove an article from the index (admins)")
    @app_commands.describe(article="Start typing a title and pick a suggestion")
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def remove(self, interaction: discord.Interaction, article: str) -> None:
        async with self.exclusive("/remove"):
            # defer first: matching a title can take seconds in a large index (an unknown
            # title then becomes a private message and the public "thinking…" is removed)
            await defer(interaction, ephemeral=False)
            job = self._job(interaction, "/remove")
            found = await self.bot.find_article(article)
            t0 = time.perf_counter()
            removed = await self.bot.run_sync(self.bot.pipeline.remove, found.id)
            log.info("/remove %s by %s", removed.id, interaction.user.id)
            await job.finish(fmt_admin.removed_message(removed, time.perf_counter() - t0))

    @remove.autocomplete("article")
    async def remove_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if not await may_administer(interaction):
            return []
        return await self.bot.title_choices(current, interaction.user.id)

    @app_commands.command(
        name="reindex", description="Rebuild every passage and vector from the stored articles"
    )
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def reindex(self, interaction: discord.Interaction) -> None:
        async with self.exclusive("/reindex"):
            await defer(interaction, ephemeral=False)
            job = self._job(interaction, "/reindex")
            relay = self._relay(job, "Re-indexing")
            log.info("/reindex by %s", interaction.user.id)
            report = await relay.run(self.bot.pipeline.reindex)
            await relay.settle()
            await job.finish(fmt_admin.reindex_report_message(report))

    @app_commands.command(name="stats", description="What is indexed: articles, passages, model")
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def stats(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        stats = await self.bot.run_sync(self.bot.pipeline.stats)
        await interaction.edit_original_response(
            embed=fmt_admin.stats_embed(stats), allowed_mentions=NO_MENTIONS
        )


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.admin")``)."""
    await bot.add_cog(AdminCog(bot))
