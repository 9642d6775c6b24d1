"""``/article``: an article card, with title autocomplete."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from .. import formatting as fmt
from .. import formatting_brief
from ..interactions import NO_MENTIONS, defer

if TYPE_CHECKING:
    from ..client import NewsdeskBot


class ArticlesCog(commands.Cog):
    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="article", description="Show an indexed article: title, source, date, opening"
    )
    @app_commands.describe(
        query="Start typing a title and pick a suggestion",
        summary="Show its three most central sentences instead of the opening",
    )
    async def article(
        self, interaction: discord.Interaction, query: str, summary: bool = False
    ) -> None:
        # defer first: an unknown title is matched against every title (seconds at 50,000
        # articles); the error then arrives privately and the "thinking…" is removed
        await defer(interaction, ephemeral=False)
        found = await self.bot.find_article(query)
        embed = fmt.article_embed(found)
        if summary:  # three verbatim sentences, in article order (index/search/summary.py)
            told = await self.bot.run_sync(self.bot.pipeline.summarize, found.id, 3)
            embed = formatting_brief.summary_embed(told)
        await interaction.edit_original_response(embed=embed, allowed_mentions=NO_MENTIONS)

    @article.autocomplete("query")
    async def article_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.bot.title_choices(current, interaction.user.id)


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.articles")``)."""
    await bot.add_cog(ArticlesCog(bot))
