"""Which channel ids decide a question's scope (see bot/cogs/scopes.py): a thread's own, then
its parent's (a text or forum channel); a server channel's own; none in a DM."""

from __future__ import annotations

import discord


def scope_chain(channel: object) -> list[int]:
    """The ids to look a binding up by, most specific first ([] in DMs: every article)."""
    if channel is None or isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return []
    guild = getattr(channel, "guild", None) or getattr(channel, "guild_id", None)
    cid = getattr(channel, "id", None)
    if guild is None or cid is None:
        return []
    parent = getattr(channel, "parent_id", None)
    if isinstance(channel, discord.Thread) and parent:
        return [int(cid), int(parent)]
    return [int(cid)]
