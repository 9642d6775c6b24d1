"""The Discord client: loads the index in ``setup_hook``, adds the cogs, syncs commands.

Engine calls (embedding, search, indexing, SQLite) run in worker threads via
:meth:`NewsdeskBot.run_sync`, so the event loop keeps heart-beating and answering. Errors from
slash commands are translated in one place, :meth:`NewsdeskBot.handle_app_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from index.config import Settings
from index.errors import ArticleNotFoundError, NewsdeskError
from index.models import Answer, Article, Hit
from index.pipeline import Pipeline
from index.written.client import display_url, endpoint
from index.written.generate import GeneratedAnswer

from . import formatting as fmt
from .cooldown import AutocompleteGate, UserCooldowns
from .redact import redact_secret

log = logging.getLogger("newsdesk.bot")

T = TypeVar("T")

NO_MENTIONS = discord.AllowedMentions.none()
COMMANDS_HASH_FILE = "discord-commands"  # + ".sha256" (global) or "-<guild id>.sha256"


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


class NewsdeskTree(app_commands.CommandTree["NewsdeskBot"]):
    async def on_error(
        self, interaction: discord.Interaction[NewsdeskBot], error: app_commands.AppCommandError
    ) -> None:
        await self.client.handle_app_error(interaction, error)


def intent_warnings(settings: Settings) -> list[str]:
    """Settings that silently lose messages without the Message Content intent: logged at
    start and printed by ``newsdesk run --check``."""
    d = settings.discord
    out = []
    if d.channel_ids and not d.message_content:
        out.append(
            "discord.channel_ids is set but discord.message_content is false: messages in "
            "those channels arrive without their text, so only mentions are answered"
        )
    if d.reply_in_thread and not d.message_content:
        out.append(
            "discord.reply_in_thread is on but discord.message_content is false: follow-up "
            "questions in the bot's threads arrive without their text, so only mentions "
            "there are answered (enable the Message Content intent and set "
            "message_content = true to answer every follow-up)"
        )
    return out


def intents_for(settings: Settings) -> discord.Intents:
    d = settings.discord
    intents = discord.Intents.none()
    intents.guilds = True  # channels and threads
    intents.guild_messages = True  # mentions and channel_ids questions
    intents.dm_messages = d.answer_dms
    intents.message_content = d.message_content  # privileged: only for non-mention messages
    return intents


def command_contexts(settings: Settings) -> app_commands.AppCommandContext:
    """Where Discord offers the commands by default: servers, and the bot's own DMs when
    ``discord.answer_dms``; never group DMs or other people's DMs (admin commands narrow this
    to servers with ``guild_only``)."""
    return app_commands.AppCommandContext(
        guild=True, dm_channel=settings.discord.answer_dms, private_channel=False
    )


def command_installs() -> app_commands.AppInstallationType:
    """Guild install only: if User Install is ever enabled in the developer portal, the
    commands still do not follow members into other people's DMs and group DMs."""
    return app_commands.AppInstallationType(guild=True, user=False)


def silence_voice_warnings() -> None:
    """discord.py warns at start that PyNaCl and davey (voice) are missing: the bot has no
    voice, so the warnings only alarm the operator."""
    discord.VoiceClient.warn_nacl = False
    if hasattr(discord.VoiceClient, "warn_dave"):
        discord.VoiceClient.warn_dave = False


class NewsdeskBot(commands.Bot):
    def __init__(
        self, settings: Settings, pipeline: Pipeline | None = None, **options: Any
    ) -> None:
        silence_voice_warnings()
        super().__init__(
            command_prefix=commands.when_mentioned,  # unused: no prefix commands
            intents=intents_for(settings),
            help_command=None,
            allowed_mentions=NO_MENTIONS,
            tree_cls=NewsdeskTree,
            allowed_contexts=command_contexts(settings),
            allowed_installs=command_installs(),
            **options,
        )
        self.settings = settings
        self._owns_pipeline = pipeline is None
        self.pipeline = pipeline if pipeline is not None else Pipeline(settings)
        d = settings.discord
        self.cooldowns = UserCooldowns(d.cooldown_rate, d.cooldown_seconds)
        self.autocomplete_gate = AutocompleteGate(d.autocomplete_seconds)
        self.progress_interval = 1.0  # seconds between progress edits of /add and /reindex
        self.stream_interval = 1.0  # seconds between edits of a streamed written answer
        # the clock that ages interaction tokens (bot.jobs); tests may substitute their own
        self.clock: Callable[[], float] = time.monotonic
        self.created_at = time.perf_counter()
        self.load_seconds: float | None = None
        self.ready_seconds: float | None = None
        self.synced: list[str] = []  # sync targets actually PUT at this start ("global", ids)

    # -- engine access (always in a worker thread) -------------------------------------------------
    async def run_sync(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def ask(self, question: str) -> Answer:
        return await self.run_sync(self.pipeline.ask, question)

    async def generate(
        self, question: str, on_update: Callable[[GeneratedAnswer], None] | None = None
    ) -> GeneratedAnswer:
        """A streamed, verified written answer ([llm]); the extractive one if that fails."""
        return await self.pipeline.agenerate(question, stream=True, on_update=on_update)

    async def search(self, query: str, k: int = 5) -> list[Hit]:
        return await self.run_sync(self.pipeline.search, query, k)

    async def find_article(self, ref: str) -> Article:
        """An article by id, source or exact title; otherwise a message naming close titles."""
        ref = fmt.clean(ref)
        if not ref:
            raise InputError("Name an article: start typing its title and pick a suggestion.")
        try:
            return await self.run_sync(self.pipeline.get_article, ref)
        except ArticleNotFoundError as e:
            if "several articles" in str(e):
                raise
            rows = await self.run_sync(self.pipeline.match_titles, ref, 3)
            hint = ""
            if rows:
                hint = " Did you mean: " + "; ".join(f"“{r.title}”" for r in rows) + "?"
            raise ArticleNotFoundError(
                f"No indexed article matches “{ref}”.{hint} "
                "Pick one of the suggestions shown while you type."
            ) from None

    async def title_choices(
        self, current: str, user_id: int | None = None
    ) -> list[app_commands.Choice[str]]:
        """Autocomplete: ≤ 25 titles (prefix, then substring, then fuzzy), value = article id.

        With ``user_id``, behind the per-user :class:`AutocompleteGate`
        (``discord.autocomplete_seconds``): one user's keystrokes cost at most one look-up
        per window, so nobody can keep the worker threads busy for everyone else.
        """
        if user_id is None:
            return await self._title_choices(current)
        return await self.autocomplete_gate.run(user_id, lambda: self._title_choices(current))

    async def _title_choices(self, current: str) -> list[app_commands.Choice[str]]:
        try:
            rows = await self.run_sync(self.pipeline.match_titles, current, fmt.CHOICES_LIMIT)
        except Exception:
            log.exception("autocomplete failed for %r", current[:100])
            return []
        choices = []
        for r in rows[: fmt.CHOICES_LIMIT]:
            date = (r.published or "")[:10]
            choices.append(app_commands.Choice(name=fmt.choice_name(r.title, date), value=r.id))
        return choices

    # -- lifecycle ---------------------------------------------------------------------------------
    def _warm_up(self) -> None:
        self.pipeline.snapshot()  # the current index generation (FAISS + BM25)
        self.pipeline.embedder.embed_query("warm up")  # loads the model

    async def setup_hook(self) -> None:
        t0 = time.perf_counter()
        await self.run_sync(self._warm_up)
        self.load_seconds = time.perf_counter() - t0
        stats = await self.run_sync(self.pipeline.stats)
        log.info(
            "index loaded in %.1f s: %d articles, %d passages, model %s",
            self.load_seconds,
            stats.articles,
            stats.chunks,
            stats.model,
        )
        from .cogs.admin import AdminCog
        from .cogs.articles import ArticlesCog
        from .cogs.ask import AskCog
        from .cogs.subscriptions import SubscriptionsCog

        await self.add_cog(AskCog(self))
        await self.add_cog(ArticlesCog(self))
        await self.add_cog(AdminCog(self))
        await self.add_cog(SubscriptionsCog(self))
        llm = self.settings.llm
        if llm.enabled:
            log.info(
                "written answers from %s (model %s), verified against the passages",
                display_url(endpoint(llm)),
                llm.model,
            )
        for warning in intent_warnings(self.settings):
            log.warning("%s", warning)
        await self.sync_commands()

    async def on_ready(self) -> None:
        if self.ready_seconds is None:
            self.ready_seconds = time.perf_counter() - self.created_at
            log.info(
                "ready in %.1f s as %s (%s guilds)", self.ready_seconds, self.user, len(self.guilds)
            )

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: questions are handled by the ask cog's listener."""

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        redact_secret(token)  # defence in depth: no log record carries it, whoever logs it
        redact_secret(self.settings.llm.api_key)  # the [llm] API key, likewise
        await super().start(token, reconnect=reconnect)

    async def close(self) -> None:
        await super().close()
        if self._owns_pipeline:
            self.pipeline.close()

    # -- errors ------------------------------------------------------------------------------------
    async def handle_app_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "?"
        await send_error(interaction, describe_error(error, f"/{name}"))

    # -- command sync ------------------------------------------------------------------------------
    def _hash_path(self, guild_id: int | None) -> Path:
        suffix = "" if guild_id is None else f"-{guild_id}"
        return Path(self.settings.data_dir) / f"{COMMANDS_HASH_FILE}{suffix}.sha256"

    def _digest(self, guild: discord.abc.Snowflake | None) -> str:
        payload = {
            "application_id": self.application_id,
            "commands": [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @staticmethod
    def _read_hash(path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError:
            return None

    @staticmethod
    def _write_hash(path: Path, digest: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(digest + "\n", encoding="utf-8")
        os.replace(tmp, path)

    async def _sync_target(self, guild_id: int | None) -> None:
        guild = discord.Object(guild_id) if guild_id is not None else None
        target = "global" if guild_id is None else f"guild {guild_id}"
        digest = self._digest(guild)
        path = self._hash_path(guild_id)
        if await self.run_sync(self._read_hash, path) == digest:
            log.info("slash commands unchanged for %s: not syncing", target)
            return
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as e:
            log.error("could not sync slash commands to %s: %s", target, e)
            return
        await self.run_sync(self._write_hash, path, digest)
        self.synced.append(target)
        log.info("synced %d slash commands to %s", len(synced), target)

    async def sync_commands(self) -> None:
        """Sync globally, or to ``discord.guild_ids``; only when the command set changed.

        A hash of the command payloads (and the application id) is kept per target in the data
        dir. Switching between global and guild commands clears the side no longer used.
        """
        guild_ids = list(dict.fromkeys(self.settings.discord.guild_ids))
        if guild_ids:
            for gid in guild_ids:
                self.tree.copy_global_to(guild=discord.Object(gid))
            for gid in guild_ids:
                await self._sync_target(gid)
            # leave no stale global copies behind (they would show twice)
            self.tree.clear_commands(guild=None)
            if self._hash_path(None).exists():
                await self._sync_target(None)
        else:
            await self._sync_target(None)
        # guilds we synced to before but are no longer configured: clear their copies
        stale = sorted(Path(self.settings.data_dir).glob(f"{COMMANDS_HASH_FILE}-*.sha256"))
        for path in stale:
            gid_text = path.name[len(COMMANDS_HASH_FILE) + 1 : -len(".sha256")]
            if not gid_text.isdigit() or int(gid_text) in guild_ids:
                continue
            gid = int(gid_text)
            self.tree.clear_commands(guild=discord.Object(gid))
            try:
                await self.tree.sync(guild=discord.Object(gid))
                log.info("cleared slash commands from guild %d (no longer in guild_ids)", gid)
            except discord.HTTPException as e:
                log.warning("could not clear slash commands from guild %d: %s", gid, e)
            with contextlib.suppress(OSError):
                path.unlink()


class ShardedNewsdeskBot(NewsdeskBot, commands.AutoShardedBot):
    """The same bot over several gateway shards (``discord.shard_count`` / ``shard_ids``).

    Each process runs its ``shard_ids`` (all shards when empty); processes on other machines run
    the others, all answering from one shared ``[store]`` backend (README "Scaling out").
    """

    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        d = settings.discord
        super().__init__(
            settings, pipeline, shard_count=d.shard_count, shard_ids=list(d.shard_ids) or None
        )

    async def sync_commands(self) -> None:
        """Slash commands are global to the application: only the process that runs shard 0
        registers them, so several processes never race to sync."""
        shard_ids = self.settings.discord.shard_ids
        if shard_ids and 0 not in shard_ids:
            log.info("not syncing slash commands: shard 0 runs in another process")
            return
        await super().sync_commands()


def create_bot(settings: Settings, pipeline: Pipeline | None = None) -> NewsdeskBot:
    """A :class:`NewsdeskBot`, or a :class:`ShardedNewsdeskBot` when shards are configured."""
    if settings.discord.shard_count:
        return ShardedNewsdeskBot(settings, pipeline)
    return NewsdeskBot(settings, pipeline)
