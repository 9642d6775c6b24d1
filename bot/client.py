"""The Discord client: loads the index in ``setup_hook``, loads the cogs, syncs commands.

Engine calls (embedding, search, indexing, SQLite) run in worker threads via
:meth:`NewsdeskBot.run_sync`, so the event loop keeps heart-beating and answering. Errors from
slash commands are translated in one place, :meth:`NewsdeskBot.handle_app_error`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from index.community.feedback import FeedbackStore
from index.config import Settings
from index.errors import ArticleNotFoundError
from index.feeds.scopes import ScopeResolver
from index.models import Answer, Article, Hit
from index.pipeline import Pipeline
from index.search.scope import Selection
from index.written.client import display_url, endpoint
from index.written.generate import GeneratedAnswer

from . import command_sync
from . import formatting as fmt
from .cooldown import AutocompleteGate, UserCooldowns
from .interactions import NO_MENTIONS, InputError, describe_error, send_error
from .redact import redact_secret
from .scoping import scope_chain
from .threads import ThreadMemory

log = logging.getLogger("newsdesk.bot")

T = TypeVar("T")

# the cogs, each a module with ``async def setup(bot)``, loaded in this order by ``setup_hook``
# (their commands are registered, and synced, in this order)
INITIAL_EXTENSIONS = (
    "bot.cogs.ask",
    "bot.cogs.articles",
    "bot.cogs.admin",
    "bot.cogs.subscriptions",
    "bot.cogs.scopes",
    "bot.cogs.brief",
    "bot.cogs.feedback",
    "bot.cogs.forum",
)


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
    if d.forum_channels and not d.message_content:
        out.append(
            "discord.forum_channels is set but discord.message_content is false: forum posts "
            "arrive without their first message, so only their titles are asked"
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
        self.scopes = ScopeResolver(self.pipeline)  # channel scopes (index/feeds/scopes.py)
        # answers sent, votes on them (community.sqlite3, opened on first use): bot.views
        self.feedback = FeedbackStore(settings.data_dir, settings.privacy)
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
        self.threads = ThreadMemory(settings.data_dir, settings.privacy)  # for follow-ups

    # -- engine access (always in a worker thread) -------------------------------------------------
    async def run_sync(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def scope_for(self, channel: object) -> Selection | None:
        """What a question in ``channel`` is answered from: its scope (a thread's own, else its
        parent's), or None for every article (unbound channels, DMs)."""
        chain = scope_chain(channel)
        return await self.run_sync(self.scopes.for_channels, chain) if chain else None

    async def scope_article_ids(self, channel: object) -> frozenset[str] | None:
        """The articles a bound ``channel`` is answered from (None: every article)."""
        scope = await self.scope_for(channel)
        return None if scope is None else await self.run_sync(self.scopes.article_ids, scope)

    async def ask(
        self, question: str, channel: object = None, context: Sequence[str] = ()
    ) -> Answer:
        """A question asked in ``channel`` (its scope, if bound); ``context``: the thread's
        earlier questions, for a follow-up."""
        scope = await self.scope_for(channel)
        kwargs: dict[str, Any] = {}
        if scope is not None:
            kwargs["scope"] = scope
        if context:
            kwargs["context"] = list(context)
        return await self.run_sync(self.pipeline.ask, question, **kwargs)

    async def generate(
        self,
        question: str,
        on_update: Callable[[GeneratedAnswer], None] | None = None,
        channel: object = None,
        context: Sequence[str] = (),
    ) -> GeneratedAnswer:
        """A streamed, verified written answer ([llm]); the extractive one if that fails.
        ``context``: the thread's earlier questions, for a follow-up."""
        kwargs: dict[str, Any] = {"stream": True, "on_update": on_update}
        scope = await self.scope_for(channel)
        if scope is not None:
            kwargs["scope"] = scope
        if context:
            kwargs["context"] = list(context)
        return await self.pipeline.agenerate(question, **kwargs)

    async def search(self, query: str, k: int = 5, channel: object = None) -> list[Hit]:
        scope = await self.scope_for(channel)
        if scope is None:
            return await self.run_sync(self.pipeline.search, query, k)
        return await self.run_sync(self.pipeline.search, query, k, scope=scope)

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
        await self.threads.load()
        for name in INITIAL_EXTENSIONS:
            try:
                await self.load_extension(name)
            except commands.ExtensionFailed as e:  # the cog's own error, as before extensions
                raise e.original from None
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
        await self.threads.drain()  # answers on their way to a thread: their questions kept
        await super().close()
        self.scopes.close()
        self.feedback.close()
        self.threads.close()
        if self._owns_pipeline:
            self.pipeline.close()

    # -- errors ------------------------------------------------------------------------------------
    async def handle_app_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "?"
        if self.is_closed():  # shut down mid-command: nobody to tell, and no traceback
            log.info("/%s was not finished: the bot shut down", name)
            return
        await send_error(interaction, describe_error(error, f"/{name}"))

    # -- command sync ------------------------------------------------------------------------------
    async def sync_commands(self) -> None:
        """Sync globally, or to ``discord.guild_ids``; only when the command set changed
        (:mod:`bot.command_sync`). The targets actually PUT are recorded in :attr:`synced`."""
        d = self.settings
        await command_sync.sync_commands(self.tree, d.data_dir, d.discord.guild_ids, self.synced)


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
