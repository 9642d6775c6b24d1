"""``/scope set | clear | show`` (Manage Server only): bind a channel to a knowledge scope.

A bound channel -- and every thread in it, forum posts included -- is answered only from its
scope's articles (index/feeds/scopes.py); unbound channels and DMs use every article. Bindings
set here live in ``community.sqlite3`` in the data dir and survive restarts; the config file's
``[[scopes]]`` may bind channels too (a binding set here wins for its channel).
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.feeds.models import iso_utc
from index.feeds.scopes import ScopeError, configured_scopes
from index.models import Scope, normalize_tags

from ..checks import manager_only, may_administer
from ..interactions import NO_MENTIONS, InputError, defer

if TYPE_CHECKING:
    from ..client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.scopes")

Place = app_commands.AppCommandChannel | app_commands.AppCommandThread
LIST_MAX = 1900  # characters of /scope show before "…"


def split_list(value: str | None, separators: str = ",;") -> tuple[str, ...]:
    """``"a, b; c"`` -> ("a", "b", "c"); articles split on ``;`` only (titles have commas)."""
    if not value:
        return ()
    return tuple(p.strip() for p in re.split(f"[{re.escape(separators)}]", value) if p.strip())


def scope_line(scope: Scope) -> str:
    """How a scope reads in a reply: its name and what it selects."""
    what = scope.describe()
    return f"**{scope.name}** ({what})" if scope.name and not scope.empty else what


class ScopeCog(commands.Cog):
    scope = app_commands.Group(
        name="scope",
        description="Answer a channel only from some articles (admins)",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=False, private_channel=False
        ),
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot

    @scope.command(name="set", description="Answer a channel and its threads only from a scope")
    @app_commands.describe(
        channel="The channel (its threads and forum posts too), or one thread",
        name="A scope of the config file ([[scopes]]), or a label for the one given here",
        feeds="Subscriptions: titles or addresses, separated by commas",
        tags="Article tags, separated by commas",
        folders="Folders on the bot's machine, separated by commas",
        articles="Article titles or ids, separated by semicolons",
    )
    @manager_only()
    async def set_scope(
        self,
        interaction: discord.Interaction,
        channel: Place,
        name: app_commands.Range[str, 1, 100] | None = None,
        feeds: app_commands.Range[str, 1, 1000] | None = None,
        tags: app_commands.Range[str, 1, 1000] | None = None,
        folders: app_commands.Range[str, 1, 1000] | None = None,
        articles: app_commands.Range[str, 1, 1000] | None = None,
    ) -> None:
        self._same_server(interaction, channel)
        try:
            tag_list = normalize_tags(split_list(tags))
        except ValueError as e:
            raise InputError(f"Nothing was bound: {e}.") from None
        scope = Scope(
            (name or "").strip(),
            split_list(feeds),
            split_list(folders),
            tag_list,
            split_list(articles, ";"),
        )
        if scope.empty and not scope.name:
            raise InputError(
                "Nothing was bound: give a scope name from the config file, or feeds, tags, "
                "folders or articles."
            )
        await defer(interaction, ephemeral=True)
        resolver = self.bot.scopes
        try:
            effective = await self.bot.run_sync(resolver.expand, scope)
        except ScopeError as e:
            raise InputError(f"Nothing was bound: {e}.") from None
        problems = await self.bot.run_sync(resolver.problems, effective)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InputError(f"Nothing was bound: {problems[0]}{more}.")
        selection = await self.bot.run_sync(resolver.selection, effective)
        count = await self.bot.run_sync(resolver.articles_in, selection)
        await self.bot.run_sync(
            resolver.bindings.set, channel.id, interaction.guild_id, scope, iso_utc(time.time())
        )
        log.info("/scope set %s by %s: %s", channel.id, interaction.user.id, scope.describe())
        where = channel.mention + (
            "" if isinstance(channel, app_commands.AppCommandThread) else " and its threads"
        )
        await interaction.edit_original_response(
            content=f"✅ {where} now answer only from {scope_line(effective)}: "
            f"{count:,} article{'s' if count != 1 else ''} today.",
            allowed_mentions=NO_MENTIONS,
        )

    @set_scope.autocomplete("name")
    async def name_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if not await may_administer(interaction):
            return []
        low = current.lower()
        names = [s.name for s, _ in configured_scopes(self.bot.pipeline)]
        return [app_commands.Choice(name=n, value=n) for n in names if low in n.lower()][:25]

    @scope.command(name="clear", description="Answer a channel from every article again")
    @app_commands.describe(channel="The channel or thread whose scope to remove")
    @manager_only()
    async def clear_scope(self, interaction: discord.Interaction, channel: Place) -> None:
        self._same_server(interaction, channel)
        await defer(interaction, ephemeral=True)
        resolver = self.bot.scopes
        removed = await self.bot.run_sync(resolver.bindings.clear, channel.id)
        still = await self.bot.run_sync(resolver.binding, [channel.id])
        if not removed and still is None:
            raise InputError(f"{channel.mention} has no scope: it is answered from every article.")
        log.info("/scope clear %s by %s", channel.id, interaction.user.id)
        if still is not None:
            text = (
                f"✅ Removed the scope set with /scope. The config file still binds "
                f"{channel.mention} to {scope_line(still[0])} (edit its [[scopes]] to change that)."
            )
        else:
            text = f"✅ {channel.mention} is answered from every article again."
        await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)

    @scope.command(name="show", description="Which channels are answered from which articles")
    @app_commands.describe(channel="Only this channel or thread (default: all of this server)")
    @manager_only()
    async def show_scope(
        self, interaction: discord.Interaction, channel: Place | None = None
    ) -> None:
        await defer(interaction, ephemeral=True)
        resolver = self.bot.scopes
        if channel is not None:
            self._same_server(interaction, channel)
            chain = [channel.id] + (
                [channel.parent_id] if isinstance(channel, app_commands.AppCommandThread) else []
            )
            found = await self.bot.run_sync(resolver.binding, chain)
            text = (
                f"{channel.mention} is answered from every article."
                if found is None
                else f"{channel.mention} is answered only from {scope_line(found[0])}"
                + (" (config file)." if found[1] is None else f" (set {found[1].set_at[:10]}).")
            )
        else:
            bound = await self.bot.run_sync(resolver.bindings.all, interaction.guild_id)
            lines = [
                f"<#{b.channel}> — {scope_line(await self.bot.run_sync(resolver.expand, b.scope))}"
                for b in bound
            ]
            guild = interaction.guild
            for sc, chs in configured_scopes(self.bot.pipeline):
                for ch in chs:
                    mine = guild is not None and guild.get_channel_or_thread(ch) is not None
                    if mine and all(b.channel != ch for b in bound):
                        lines.append(f"<#{ch}> — {scope_line(sc)} (config file)")
            if not lines:
                text = "No channel has a scope: every channel is answered from every article."
            else:
                text = (
                    "**Channel scopes** (threads follow their channel; others use every article)\n"
                )
                text += "\n".join(lines)
                if len(text) > LIST_MAX:
                    text = text[: LIST_MAX - 1].rsplit("\n", 1)[0] + "\n…"
        await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)

    @staticmethod
    def _same_server(interaction: discord.Interaction, channel: Place) -> None:
        if interaction.guild_id is None or channel.guild_id != interaction.guild_id:
            raise InputError("Pick a channel of this server.")


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.scopes")``)."""
    await bot.add_cog(ScopeCog(bot))
