"""Admin commands: ``/add``, ``/remove``, ``/reindex``, ``/stats`` (Manage Server only).

Registered with ``default_permissions(manage_guild=True)`` (Discord hides them from others) and
checked again at run time by :func:`is_manager`, because a server can change who may use a
command, and because all servers share one index: only the servers, users and roles the operator
names in ``[discord]`` may change or read it (``admin_guild_ids``, ``admin_user_ids``,
``admin_role_ids``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import discord
from discord import app_commands
from discord.ext import commands

from index.config import Settings
from index.errors import IndexBusyError

from .. import formatting as fmt
from ..client import NO_MENTIONS, InputError, NotAllowedHere, defer
from ..jobs import JobMessage
from ..progress import ProgressRelay

if TYPE_CHECKING:
    from ..client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.admin")

T = TypeVar("T")


def admin_guilds(settings: Settings) -> set[int]:
    """The servers whose managers may use admin commands: ``admin_guild_ids``, else
    ``guild_ids`` (the servers the commands are registered in), else none."""
    d = settings.discord
    return set(d.admin_guild_ids or d.guild_ids)


async def is_manager(interaction: discord.Interaction) -> bool:
    """The run-time check behind every admin command (and their autocompletes).

    Every server answers from the one shared index, and a public bot can be added to any
    server: Manage Server there must not be enough to change or read what the others share.
    Allowed: the users in ``discord.admin_user_ids`` and the application's owner (anywhere),
    members holding a role in ``discord.admin_role_ids``, and members with Manage Server in
    the servers :func:`admin_guilds` names. Checked at run time, so a config change (restart)
    or a server changing who sees the commands never widens it.
    """
    if interaction.guild is None:
        raise app_commands.NoPrivateMessage()
    bot = interaction.client
    settings: Settings = bot.settings  # type: ignore[attr-defined]
    d = settings.discord
    user = interaction.user
    if user.id in d.admin_user_ids:
        return True
    roles = user.roles if isinstance(user, discord.Member) else []
    if any(role.id in d.admin_role_ids for role in roles):
        return True
    if await _is_owner(bot, user):
        return True
    if not interaction.permissions.manage_guild:
        raise app_commands.MissingPermissions(["manage_guild"])
    if interaction.guild.id in admin_guilds(settings):
        return True
    log.warning(
        "admin command /%s refused: user %s in server %s, which is not an admin server",
        interaction.command.name if interaction.command else "?",
        user.id,
        interaction.guild.id,
    )
    raise NotAllowedHere(
        "Admin commands are not enabled in this server: this bot's index is shared by every "
        "server it is in. The bot's operator can allow them here by adding this server's id "
        f"({interaction.guild.id}) to `discord.admin_guild_ids` in the config (or your user "
        "id to `discord.admin_user_ids`)."
    )


async def _is_owner(bot: object, user: discord.abc.User) -> bool:
    """The application's owner (or a member of its team), as Discord reports it."""
    is_owner = getattr(bot, "is_owner", None)
    if is_owner is None:
        return False
    try:
        return bool(await is_owner(user))
    except discord.HTTPException as e:  # the application info could not be fetched
        log.warning("cannot tell whether %s owns the application: %s", user.id, e)
        return False


async def may_administer(interaction: discord.Interaction) -> bool:
    """:func:`is_manager` as a yes/no, for autocompletes (which Discord runs without checks)."""
    try:
        return await is_manager(interaction)
    except app_commands.CheckFailure:
        return False


def manager_only() -> Callable[[T], T]:
    return app_commands.check(is_manager)


def guild_only() -> Callable[[T], T]:
    """Offered in servers only, declared to Discord (``contexts: [0]``): with the tree's
    defaults (guild install, bot DMs when ``answer_dms``) an admin command would otherwise
    also appear in the bot's DMs."""
    contexts = app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    only = app_commands.guild_only()

    def decorator(f: T) -> T:
        return contexts(only(f))

    return decorator


def check_url(url: str) -> str:
    """Only http(s) addresses: a Discord user must never make the bot read local files."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in url)
    ):
        raise InputError(
            "Give the http(s) address of a web page or an RSS/Atom feed, "
            "e.g. https://example.com/story.html"
        )
    return url


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
            await job.show(fmt.progress_message(action, stage, done, total, seconds))

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
            await job.finish(fmt.add_report_message(url, report))

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
            await job.finish(fmt.removed_message(removed, time.perf_counter() - t0))

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
            await job.finish(fmt.reindex_report_message(report))

    @app_commands.command(name="stats", description="What is indexed: articles, passages, model")
    @app_commands.default_permissions(manage_guild=True)
    @guild_only()
    @manager_only()
    async def stats(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        stats = await self.bot.run_sync(self.bot.pipeline.stats)
        await interaction.edit_original_response(
            embed=fmt.stats_embed(stats), allowed_mentions=NO_MENTIONS
        )
