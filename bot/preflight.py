"""``newsdesk run --check``: what the bot would do with this config, without connecting.

Everything here is read from the settings and the token itself (a bot token starts with its
application id in base64), so it works offline, before the bot is invited anywhere: whether the
token is there, the gateway intents it will ask for (and which are privileged, i.e. must be
switched on in the developer portal), the invite URL with exactly the permissions it uses, where
its slash commands go and where it answers.
"""

from __future__ import annotations

import base64
import binascii
from typing import TextIO

import discord

from index.config import Settings

from .client import intent_warnings, intents_for

PRIVILEGED_INTENTS = ("members", "presences", "message_content")


def application_id_from_token(token: str) -> int | None:
    """The application (bot user) id at the start of a bot token, or None if it has none."""
    head = token.split(".", 1)[0]
    try:
        text = base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isdigit() and 15 <= len(text) <= 21 else None


def required_permissions(settings: Settings) -> dict[str, str]:
    """Exactly what the bot uses, as ``{discord.py name: name in Discord's settings}``: see
    the channels it answers in, post answers (embeds) and announcements, reply to questions
    (a reply needs Read Message History), and open answer threads."""
    perms = {
        "view_channel": "View Channels",
        "send_messages": "Send Messages",
        "embed_links": "Embed Links",
        "read_message_history": "Read Message History",
    }
    if settings.discord.reply_in_thread:
        perms["create_public_threads"] = "Create Public Threads"
        perms["send_messages_in_threads"] = "Send Messages in Threads"
    return perms


def permissions_value(settings: Settings) -> int:
    return discord.Permissions(**dict.fromkeys(required_permissions(settings), True)).value


def invite_url(application_id: int | None, settings: Settings) -> str:
    client_id = str(application_id) if application_id else "YOUR_APPLICATION_ID"
    perms = permissions_value(settings)
    return (
        f"https://discord.com/oauth2/authorize?client_id={client_id}"
        f"&permissions={perms}&integration_type=0&scope=bot+applications.commands"
    )


def _ids(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def describe(settings: Settings) -> tuple[list[str], bool]:
    """The report's lines, and whether the bot could start (a token is there)."""
    d = settings.discord
    token = settings.discord_token
    app_id = application_id_from_token(token) if token else None
    lines = []
    if not token:
        lines.append(
            "token:       DISCORD_TOKEN is not set: the bot cannot start (developer portal → "
            "Bot → Reset Token, then export DISCORD_TOKEN=…)"
        )
    elif app_id is None:
        lines.append(
            "token:       DISCORD_TOKEN is set, but it does not start with an application id: "
            "is it the bot token (Bot → Reset Token), not the client secret?"
        )
    else:
        lines.append(f"token:       DISCORD_TOKEN is set (application id {app_id})")

    intents = intents_for(settings)
    asked = [name for name, on in intents if on]
    privileged = [name for name in asked if name in PRIVILEGED_INTENTS]
    lines.append(f"intents:     {', '.join(asked)}")
    if privileged:
        lines.append(
            f"privileged:  {', '.join(privileged)}: enable it in the developer portal "
            "(Bot → Privileged Gateway Intents) or the bot is refused at start"
        )
    else:
        lines.append("privileged:  none (nothing to enable in the developer portal)")

    names = ", ".join(required_permissions(settings).values())
    lines.append(f"permissions: {permissions_value(settings)} ({names})")
    lines.append(f"invite:      {invite_url(app_id, settings)}")

    if d.guild_ids:
        lines.append(
            f"commands:    synced to servers {_ids(d.guild_ids)} only (instant; none elsewhere)"
        )
    else:
        lines.append(
            "commands:    synced globally (every server the bot is in; set discord.guild_ids "
            "for instant updates while testing)"
        )
    dms = "and in the bot's DMs" if d.answer_dms else "not in DMs"
    lines.append(
        f"             /ask, /search, /article, /brief in servers {dms}; admin ones in servers"
    )

    answers = []
    if d.answer_mentions:
        answers.append("mentions in any channel it can see")
    if d.answer_dms:
        answers.append("DMs")
    if d.channel_ids:
        answers.append(f"every message in channels {_ids(d.channel_ids)}")
    lines.append(f"answers:     {'; '.join(answers) or 'slash commands only'}")
    if d.reply_in_thread:
        lines.append("             answers open a thread; follow-ups there are questions")
    admins = []
    admin_guilds = d.admin_guild_ids or d.guild_ids
    if admin_guilds:
        admins.append(f"Manage Server in servers {_ids(admin_guilds)}")
    if d.admin_user_ids:
        admins.append(f"users {_ids(d.admin_user_ids)}")
    if d.admin_role_ids:
        admins.append(f"roles {_ids(d.admin_role_ids)}")
    admins.append("the application's owner")
    lines.append(f"admins:      {'; '.join(admins)}")
    if not admin_guilds:
        lines.append(
            "             (no admin server: set discord.admin_guild_ids to let server "
            "managers use /add, /reindex, …)"
        )
    announce = sorted({f.channel for f in settings.feeds if f.channel})
    announce += sorted({f.channel for f in settings.folders if f.channel} - set(announce))
    if announce:
        lines.append(f"announces:   new articles in channels {_ids(announce)}")
    if d.shard_count:
        shards = _ids(d.shard_ids) if d.shard_ids else "all"
        lines.append(f"shards:      {shards} of {d.shard_count}")

    lines += [f"warning:     {w}" for w in intent_warnings(settings)]
    return lines, bool(token)


def run_check(settings: Settings, out: TextIO) -> int:
    """Print the report to ``out``; 0 when the bot could start, else 1."""
    lines, ok = describe(settings)
    for line in lines:
        print(line, file=out)
    return 0 if ok else 1
