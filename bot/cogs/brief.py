"""``/brief``: the newest articles, each with its most central sentence (no model call)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.search.brief import InvalidSinceError, parse_since

from .. import formatting_brief as fmt
from ..checks import question_cooldown
from ..interactions import NO_MENTIONS, InputError, defer

if TYPE_CHECKING:
    from ..client import NewsdeskBot

SINCE_OPTION_MAX = 40


class BriefCog(commands.Cog):
    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="brief", description="The newest articles, each with its most central sentence"
    )
    @app_commands.describe(
        since="Only articles from this window: 30m, 24h, 7d, 2w or a date like 2026-11-01",
        limit="How many articles at most (default 10)",
    )
    @app_commands.check(question_cooldown)
    async def brief(
        self,
        interaction: discord.Interaction,
        since: app_commands.Range[str, 1, SINCE_OPTION_MAX] | None = None,
        limit: app_commands.Range[int, 1, fmt.BRIEF_MAX_ARTICLES] = fmt.BRIEF_MAX_ARTICLES,
    ) -> None:
        cutoff = None
        if since is not None:  # instant: a bad window is refused before deferring
            try:
                cutoff = parse_since(since)
            except InvalidSinceError as e:
                raise InputError(f"`since`: {e}") from None
        await defer(interaction, ephemeral=False)
        ids = await self.bot.scope_article_ids(interaction.channel)  # a bound channel's scope
        found = await self.bot.run_sync(self.bot.pipeline.brief, cutoff, limit, ids)
        await interaction.edit_original_response(
            embeds=fmt.brief_embeds(found), allowed_mentions=NO_MENTIONS
        )


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.brief")``)."""
    await bot.add_cog(BriefCog(bot))
