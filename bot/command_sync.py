"""Slash-command sync at start: only when the command set changed, and only where it changed.

Discord rate-limits command registration (a PUT per target), and every sync makes clients
re-fetch the commands, so a restart must not re-register an unchanged set. A hash of the command
payloads (and the application id) is kept per target in the data dir:
``discord-commands.sha256`` (global) or ``discord-commands-<guild id>.sha256``. Switching between
global and guild commands clears the side no longer used.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger("newsdesk.bot")

COMMANDS_HASH_FILE = "discord-commands"  # + ".sha256" (global) or "-<guild id>.sha256"

Tree = app_commands.CommandTree[Any]


def hash_path(data_dir: str | Path, guild_id: int | None) -> Path:
    suffix = "" if guild_id is None else f"-{guild_id}"
    return Path(data_dir) / f"{COMMANDS_HASH_FILE}{suffix}.sha256"


def commands_digest(tree: Tree, guild: discord.abc.Snowflake | None) -> str:
    payload = {
        "application_id": tree.client.application_id,
        "commands": [c.to_dict(tree) for c in tree.get_commands(guild=guild)],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_hash(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _write_hash(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(digest + "\n", encoding="utf-8")
    os.replace(tmp, path)


async def _sync_target(
    tree: Tree, data_dir: str | Path, guild_id: int | None, synced: list[str]
) -> None:
    guild = discord.Object(guild_id) if guild_id is not None else None
    target = "global" if guild_id is None else f"guild {guild_id}"
    digest = commands_digest(tree, guild)
    path = hash_path(data_dir, guild_id)
    if await asyncio.to_thread(_read_hash, path) == digest:
        log.info("slash commands unchanged for %s: not syncing", target)
        return
    try:
        done = await tree.sync(guild=guild)
    except discord.HTTPException as e:
        log.error("could not sync slash commands to %s: %s", target, e)
        return
    await asyncio.to_thread(_write_hash, path, digest)
    synced.append(target)
    log.info("synced %d slash commands to %s", len(done), target)


async def sync_commands(
    tree: Tree, data_dir: str | Path, guild_ids: Sequence[int], synced: list[str]
) -> None:
    """Sync globally, or to ``guild_ids``; only when the command set changed.

    Each target actually PUT is appended to ``synced`` ("global", "guild <id>").
    """
    guild_ids = list(dict.fromkeys(guild_ids))
    if guild_ids:
        for gid in guild_ids:
            tree.copy_global_to(guild=discord.Object(gid))
        for gid in guild_ids:
            await _sync_target(tree, data_dir, gid, synced)
        # leave no stale global copies behind (they would show twice)
        tree.clear_commands(guild=None)
        if hash_path(data_dir, None).exists():
            await _sync_target(tree, data_dir, None, synced)
    else:
        await _sync_target(tree, data_dir, None, synced)
    # guilds we synced to before but are no longer configured: clear their copies
    stale = sorted(Path(data_dir).glob(f"{COMMANDS_HASH_FILE}-*.sha256"))
    for path in stale:
        gid_text = path.name[len(COMMANDS_HASH_FILE) + 1 : -len(".sha256")]
        if not gid_text.isdigit() or int(gid_text) in guild_ids:
            continue
        gid = int(gid_text)
        tree.clear_commands(guild=discord.Object(gid))
        try:
            await tree.sync(guild=discord.Object(gid))
            log.info("cleared slash commands from guild %d (no longer in guild_ids)", gid)
        except discord.HTTPException as e:
            log.warning("could not clear slash commands from guild %d: %s", gid, e)
        with contextlib.suppress(OSError):
            path.unlink()
