"""Who may run a command and what a command accepts: the checks the cogs share.

Admin commands are registered with ``default_permissions(manage_guild=True)`` (Discord hides them
from others) and checked again at run time by :func:`is_manager`, because a server can change who
may use a command, and because all servers share one index: only the servers, users and roles the
operator names in ``[discord]`` may change or read it (``admin_guild_ids``, ``admin_user_ids``,
``admin_role_ids``). Questions share one per-user rate (:func:`question_cooldown`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast
from urllib.parse import urlsplit

import discord
from discord import app_commands

from index.config import Settings

from .interactions import InputError, NotAllowedHere

if TYPE_CHECKING:
    from .client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.admin")  # refusals are the admin commands' story

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


def question_cooldown(interaction: discord.Interaction) -> bool:
    """App-command check: the per-user question rate (shared with message questions)."""
    bot = cast("NewsdeskBot", interaction.client)
    retry = bot.cooldowns.hit(interaction.user.id)
    if retry is not None:
        raise app_commands.CommandOnCooldown(bot.cooldowns.bucket(interaction.user.id), retry)
    return True


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
