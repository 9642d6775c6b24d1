"""Answering an interaction: the helpers every cog shares, and the one translation of errors.

Every reply built from article text uses :data:`NO_MENTIONS`. An interaction is acknowledged
first (:func:`defer`, which also decides whether the answer is private) and then edited; an
error reaches the member through :func:`send_error` as one line (:func:`describe_error`),
whatever state the interaction is in, and an unexpected one is logged with a short reference
the member can quote.
"""

from __future__ import annotations

import contextlib
import logging
import secrets

import discord
from discord import app_commands

from index.errors import NewsdeskError

from . import formatting as fmt

log = logging.getLogger("newsdesk.bot")

NO_MENTIONS = discord.AllowedMentions.none()


class InputError(NewsdeskError):
    """Something a Discord user typed cannot be used (shown to them, ephemeral)."""


class NotAllowedHere(app_commands.CheckFailure):
    """An admin command outside the servers, users and roles the operator named; ``str()`` is
    the message shown to the member (it names the config key the operator can set)."""


def new_ref() -> str:
    """A short reference that ties a user-facing error to its log entry."""
    return secrets.token_hex(3).upper()


def describe_error(error: BaseException, where: str) -> str:
    """The message a person sees for ``error``; unexpected errors are logged with a ref."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, NewsdeskError):
        text = str(error)
        if fmt.public_error(text) != text:  # the user sees less: the operator gets the detail
            log.info("%s: %s", where, text)
        return fmt.error_message(text)
    if isinstance(error, app_commands.CommandOnCooldown):
        return fmt.cooldown_message(error.retry_after)
    if isinstance(error, app_commands.MissingPermissions):
        return "Only members with the **Manage Server** permission can use this command."
    if isinstance(error, NotAllowedHere):
        return fmt.error_message(str(error))
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        # Discord still shows an older version of the command; the new one is being synced
        return "This command has just been updated: please try again in a minute."
    ref = new_ref()
    log.error("unexpected error in %s (ref %s)", where, ref, exc_info=error)
    return fmt.unexpected_error_message(ref)


async def defer(interaction: discord.Interaction, *, ephemeral: bool) -> None:
    """Acknowledge now ("thinking…"); the answer follows by editing the deferred reply."""
    interaction.extras["ephemeral"] = ephemeral
    await interaction.response.defer(thinking=True, ephemeral=ephemeral)


async def send_error(interaction: discord.Interaction, text: str) -> None:
    """Show ``text`` privately, whatever state the interaction is in; never leave "thinking…"."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        deferred = interaction.response.type in (
            discord.InteractionResponseType.deferred_channel_message,
            discord.InteractionResponseType.deferred_message_update,
        )
        if deferred and interaction.extras.get("ephemeral"):
            await interaction.edit_original_response(
                content=text, embed=None, allowed_mentions=NO_MENTIONS
            )
            return
        if deferred:
            # a public "thinking…" message: remove it, then answer privately
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as e:
        log.warning("could not report an error to %s: %s", interaction.user.id, e)
