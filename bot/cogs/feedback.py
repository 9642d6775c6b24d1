"""Feedback: the 👍 / 👎 buttons under answers (:mod:`bot.views`), ``/feedback`` and ``/gaps``.

The buttons are registered here as a dynamic item, so clicks on answers sent before a restart
are routed to :class:`bot.views.VoteButton`. ``/feedback`` and ``/gaps`` read the feedback log
(the questions members asked, in every server the bot is in): admin commands, registered with
``default_permissions(manage_guild=True)`` and checked by :func:`bot.checks.is_manager`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.community.gaps import Gap, group_questions
from index.community.periods import parse_span

from .. import formatting_feedback as fmt_feedback
from ..checks import guild_only, manager_only
from ..interactions import NO_MENTIONS, InputError, defer
from ..views import VoteButton

if TYPE_CHECKING:
    from ..client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.feedback")

SINCE_DESCRIBE = "Only questions from this span before now, e.g. 24h, 7d, 2w (default: all kept)"


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return time.time() - parse_span(text)
    except Exception as e:
        raise InputError(f"{e}. Example: since:7d") from None


class FeedbackCog(commands.Cog):
    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot

    @app_commands.command(name="feedback", description="How members rated the answers (admins)")
    @app_commands.describe(since=SINCE_DESCRIBE)
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def feedback(
        self,
        interaction: discord.Interaction,
        since: app_commands.Range[str, 1, 12] | None = None,
    ) -> None:
        start = _since(since)
        await defer(interaction, ephemeral=True)
        summary = await self.bot.run_sync(self.bot.feedback.summary, start)
        await interaction.edit_original_response(
            embed=fmt_feedback.feedback_embed(summary, since), allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(
        name="gaps", description="The ten most asked questions the articles do not answer (admins)"
    )
    @app_commands.describe(since=SINCE_DESCRIBE)
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def gaps(
        self,
        interaction: discord.Interaction,
        since: app_commands.Range[str, 1, 12] | None = None,
    ) -> None:
        start = _since(since)
        await defer(interaction, ephemeral=True)

        def top() -> tuple[list[Gap], int]:
            rows = self.bot.feedback.gap_rows(start)
            return group_questions(rows, limit=fmt_feedback.GAPS_SHOWN), len(rows)

        groups, total = await self.bot.run_sync(top)
        await interaction.edit_original_response(
            embed=fmt_feedback.gaps_embed(groups, total, since), allowed_mentions=NO_MENTIONS
        )


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.feedback")``)."""
    bot.add_dynamic_items(VoteButton)  # clicks on any answer's buttons, also after a restart
    await bot.add_cog(FeedbackCog(bot))


async def teardown(bot: NewsdeskBot) -> None:
    bot.remove_dynamic_items(VoteButton)
