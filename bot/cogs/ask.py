"""Questions: ``/ask``, ``/search``, and messages (mentions, DMs, channel_ids, bot threads)."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from index.models import Answer
from index.search import smalltalk
from index.written.generate import GeneratedAnswer

from .. import formatting as fmt
from .. import threads
from ..checks import question_cooldown
from ..interactions import NO_MENTIONS, defer, describe_error
from ..relay import Relay
from ..threads import is_forum_starter
from ..views import answer_view

if TYPE_CHECKING:
    from ..client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.ask")

ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)
_USER_MENTION_RE = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION_RE = re.compile(r"<@&(\d+)>")
_CHANNEL_MENTION_RE = re.compile(r"<#(\d+)>")


QUESTION_OPTION_MAX = 6000  # Discord's cap on max_length


class AskCog(commands.Cog):
    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot
        # channels where the bot may not reply (no Read Message History): answered with plain
        # messages, logged once; forgotten when the channel's permissions change
        self._no_history: set[int] = set()
        # declare the engine's question limit on the options, so Discord stops the member
        # while typing instead of the bot refusing a long question afterwards
        limit = min(bot.settings.answer.max_question_chars, QUESTION_OPTION_MAX)
        for command, option in ((self.ask, "question"), (self.search, "query")):
            # this cog's copy of the command has its own dict, but shares the parameter
            # objects with the class: replace, never mutate (another bot may differ)
            params = command._params
            params[option] = dataclasses.replace(params[option], min_value=1, max_value=limit)

    # -- slash commands ----------------------------------------------------------------------------
    @app_commands.command(name="ask", description="Ask a question about the indexed articles")
    @app_commands.describe(
        question="Your question, e.g. What did Ma say about Apple Pay?",
        private="Only you see the answer (default: everyone in the channel)",
    )
    @app_commands.check(question_cooldown)
    async def ask(
        self, interaction: discord.Interaction, question: str, private: bool = False
    ) -> None:
        question = self.bot.pipeline.validate_question(question)  # instant, before deferring
        await defer(interaction, ephemeral=private)
        if self.bot.settings.llm.enabled:

            async def show(gen: GeneratedAnswer) -> None:
                view = await self._view(gen.answer, interaction) if gen.final else None
                await interaction.edit_original_response(
                    embed=threads.generated_embed(gen), allowed_mentions=NO_MENTIONS, view=view
                )

            followed = await self._written_answer(question, show, interaction.channel)
            if followed and not private and interaction.channel_id is not None:
                await self.bot.threads.remember(interaction.channel_id, question)
            return
        context = await self.bot.threads.context(interaction.channel)  # a follow-up in a thread
        answer = await self.bot.ask(question, interaction.channel, context)
        thread_id = interaction.channel_id if context and not private else None
        async with self.bot.threads.delivering(thread_id):
            await interaction.edit_original_response(
                embed=threads.answer_embed(answer),
                allowed_mentions=NO_MENTIONS,
                view=await self._view(answer, interaction),
            )
            if thread_id is not None:
                await self.bot.threads.remember(thread_id, question)

    @app_commands.command(name="search", description="List the passages that best match a query")
    @app_commands.describe(query="Words or a question to look for")
    @app_commands.check(question_cooldown)
    async def search(self, interaction: discord.Interaction, query: str) -> None:
        query = self.bot.pipeline.validate_question(query, "query")
        await defer(interaction, ephemeral=False)
        hits = await self.bot.search(query, channel=interaction.channel)
        await interaction.edit_original_response(
            content=fmt.search_message(query, hits), allowed_mentions=NO_MENTIONS
        )

    # -- messages ----------------------------------------------------------------------------------
    def _mentions_me(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None:
            return False
        if any(u.id == me.id for u in message.mentions):
            return True
        role = message.guild.self_role if message.guild else None
        return role is not None and role in message.role_mentions

    def _is_question_place(self, message: discord.Message, mentioned: bool) -> bool:
        d = self.bot.settings.discord
        ch = message.channel
        if message.guild is None:
            return d.answer_dms
        if mentioned and d.answer_mentions:
            return True
        if ch.id in d.channel_ids:
            return True
        if isinstance(ch, discord.Thread):
            if ch.parent_id in d.channel_ids:
                return True
            me = self.bot.user
            if d.reply_in_thread and me is not None and ch.owner_id == me.id:
                return True  # a thread the bot opened for an answer: follow-ups are questions
            if self.bot.threads.knows(ch.id) and message.author.id == ch.owner_id:
                return True  # a forum post the bot answered: its poster's follow-ups
        return False

    def question_text(self, message: discord.Message) -> str:
        """The message text without the bot's mention; other mentions as readable names."""
        text = message.content or ""
        me = self.bot.user
        if me is not None:
            text = re.sub(rf"<@!?{me.id}>", " ", text)
        role = message.guild.self_role if message.guild else None
        if role is not None:
            text = text.replace(f"<@&{role.id}>", " ")
        users = {u.id: u.display_name for u in message.mentions}
        roles = {r.id: r.name for r in message.role_mentions}
        guild = message.guild

        def user(m: re.Match[str]) -> str:
            return "@" + users.get(int(m.group(1)), "someone")

        def role_name(m: re.Match[str]) -> str:
            return "@" + roles.get(int(m.group(1)), "role")

        def channel(m: re.Match[str]) -> str:
            found = guild.get_channel_or_thread(int(m.group(1))) if guild else None
            return "#" + (found.name if found else "channel")

        text = _USER_MENTION_RE.sub(user, text)
        text = _ROLE_MENTION_RE.sub(role_name, text)
        text = _CHANNEL_MENTION_RE.sub(channel, text)
        return " ".join(text.split())

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return  # other bots and our own messages
        if message.webhook_id is not None or message.type not in ANSWERED_TYPES:
            return
        if is_forum_starter(message, self.bot.settings.discord.forum_channels):
            return  # a new post of a help forum: bot.cogs.forum answers it
        mentioned = self._mentions_me(message)
        if isinstance(message.channel, discord.Thread):  # an answer still being posted there
            await self.bot.threads.settle(message.channel.id)
        if not self._is_question_place(message, mentioned):
            return
        question = self.question_text(message)
        if not question:
            # a bare mention, or a DM with only an attachment: explain; in a channel, stay quiet
            if mentioned or message.guild is None:
                await self._reply(message, content=fmt.help_message(me.display_name))
            return
        context = await self.bot.threads.context(message.channel)  # a follow-up in a thread
        kind = threads.classify(question, context)
        if kind is not None:
            # "help" shows how to ask; "thanks", "hi", "42" get a short polite line when the
            # bot was addressed (mention or DM) and silence in a channel it merely listens to
            if mentioned or message.guild is None:
                text = (
                    fmt.help_message(me.display_name) if kind == "help" else smalltalk.REPLIES[kind]
                )
                await self._reply(message, content=text)
            return
        retry = self.bot.cooldowns.hit(message.author.id)
        if retry is not None:
            if self.bot.cooldowns.should_warn(message.author.id, retry):
                await self._reply(message, content=fmt.cooldown_message(retry))
            return
        log.info(
            "question from %s in %s (%d chars)",
            message.author.id,
            message.channel.id,
            len(question),
        )
        await self._typing(message.channel)
        if self.bot.settings.llm.enabled:
            await self._written_reply(message, question)
            return
        try:
            answer = await self.bot.ask(question, message.channel, context)
        except Exception as e:  # NewsdeskError → its message; anything else → a logged ref
            await self._reply(message, content=describe_error(e, "a message question"))
            return
        view = await self._view(answer, message)
        async with self.bot.threads.delivering(self._answer_thread(message)):
            sent = await self._deliver(message, question, threads.answer_embed(answer), view)
            await self.bot.threads.remember_sent(sent, question)

    async def _view(
        self, answer: Answer, where: discord.Message | discord.Interaction
    ) -> discord.ui.View | None:
        """Log the answer; its 👍 / 👎 buttons (None for an abstention): :mod:`bot.views`."""
        user = where.author if isinstance(where, discord.Message) else where.user
        return await answer_view(
            self.bot,
            answer,
            channel_id=where.channel.id if where.channel else None,
            guild_id=where.guild.id if where.guild else None,
            user_id=user.id,
        )

    # -- written answers ([llm]) -----------------------------------------------------------------
    async def _written_answer(
        self,
        question: str,
        show: Callable[[GeneratedAnswer], Awaitable[None]],
        channel: object = None,
    ) -> bool:
        """Stream a verified written answer into ``show`` (≤ 1 edit per stream_interval); the
        extractive answer when the endpoint fails. Errors of ``ask`` itself propagate. True when
        it followed up on the thread's earlier questions."""
        context = await self.bot.threads.context(channel)  # a follow-up in a thread
        relay: Relay[GeneratedAnswer] = Relay(show, interval=self.bot.stream_interval)
        try:
            gen = await self.bot.generate(question, relay.update, channel, context)
        except BaseException:
            await relay.close()
            raise
        await relay.finish(gen)
        return bool(context)

    async def _written_reply(self, message: discord.Message, question: str) -> None:
        """A message question: the first state is sent as the reply, later ones edit it."""
        sent: discord.Message | None = None

        async def show(gen: GeneratedAnswer) -> None:
            nonlocal sent
            embed = threads.generated_embed(gen)
            view = await self._view(gen.answer, message) if gen.final else None
            if sent is None:
                async with self.bot.threads.delivering(self._answer_thread(message)):
                    sent = await self._deliver(message, question, embed, view)
                    # remembered before the answer is final, so a quick follow-up finds it
                    await self.bot.threads.remember_sent(sent, question)
                return
            try:
                await sent.edit(embed=embed, allowed_mentions=NO_MENTIONS, view=view)
            except discord.HTTPException as e:
                log.warning("could not update the answer %s: %s", sent.id, e)

        try:
            await self._written_answer(question, show, message.channel)
        except Exception as e:  # NewsdeskError → its message; anything else → a logged ref
            await self._reply(message, content=describe_error(e, "a message question"))

    async def _typing(self, channel: discord.abc.Messageable) -> None:
        try:
            await channel.typing()
        except discord.HTTPException as e:
            log.debug("typing indicator failed in %s: %s", getattr(channel, "id", "?"), e)

    def _opens_thread(self, message: discord.Message) -> bool:
        """Whether :meth:`_deliver` answers ``message`` in a new thread (whose id is the
        message's)."""
        return self.bot.settings.discord.reply_in_thread and isinstance(
            message.channel, discord.TextChannel
        )

    def _answer_thread(self, message: discord.Message) -> int | None:
        """The thread the answer to ``message`` goes to: the one :meth:`_deliver` opens, the
        thread it was asked in, or None."""
        if self._opens_thread(message):
            return message.id
        ch = message.channel
        return ch.id if isinstance(ch, discord.Thread) else None

    async def _deliver(
        self,
        message: discord.Message,
        question: str,
        embed: discord.Embed,
        view: discord.ui.View | None = None,
    ) -> discord.Message | None:
        if self._opens_thread(message):
            try:
                thread = await message.create_thread(
                    name=fmt.thread_name(question), auto_archive_duration=1440
                )
            except discord.HTTPException as e:
                log.warning(
                    "could not open a thread in %s (%s); replying in place", message.channel.id, e
                )
            else:
                try:
                    return await thread.send(
                        embed=embed, allowed_mentions=NO_MENTIONS, view=_with(view)
                    )
                except discord.HTTPException as e:
                    log.warning("could not answer in thread %s: %s", thread.id, e)
                return None
        return await self._reply(message, embed=embed, view=view)

    async def _reply(
        self,
        message: discord.Message,
        *,
        content: str | None = None,
        embed: discord.Embed | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message | None:
        """Reply to the question; a vanished channel or message is logged, never raised.

        A reply needs Read Message History in the channel. Where an override removes it, the
        answer is a plain message that quotes the question instead (logged once per channel).
        """
        ch = message.channel
        if not self._may_reply(message):
            return await self._send_plain(message, content=content, embed=embed, view=view)
        reference = message.to_reference(fail_if_not_exists=False)
        try:
            if embed is not None:
                return await ch.send(
                    content,
                    embed=embed,
                    reference=reference,
                    allowed_mentions=NO_MENTIONS,
                    mention_author=False,  # explicit "replied_user": false
                    view=_with(view),
                )
            return await ch.send(
                content, reference=reference, allowed_mentions=NO_MENTIONS, mention_author=False
            )
        except discord.Forbidden as e:
            if e.code != 50013:  # Missing Access etc.: a plain message would fail as well
                log.warning("could not answer message %s in channel %s: %s", message.id, ch.id, e)
                return None
            self._log_no_history(ch.id, e)
            return await self._send_plain(message, content=content, embed=embed, view=view)
        except discord.HTTPException as e:
            log.warning("could not answer message %s in channel %s: %s", message.id, ch.id, e)
            return None

    def _may_reply(self, message: discord.Message) -> bool:
        """False where the bot's cached permissions lack Read Message History (a guild channel
        whose override removes it); the 403 fallback covers a stale cache."""
        guild = message.guild
        if guild is None or guild.me is None:
            return True
        ch = message.channel
        if ch.id in self._no_history:
            return False
        if not isinstance(ch, discord.abc.GuildChannel | discord.Thread):
            return True
        if ch.permissions_for(guild.me).read_message_history:
            return True
        self._log_no_history(ch.id, None)
        return False

    @commands.Cog.listener()
    async def on_guild_channel_update(
        self, before: discord.abc.GuildChannel, after: discord.abc.GuildChannel
    ) -> None:
        """Permissions may have changed: look again before the next answer there."""
        self._no_history.discard(after.id)
        for thread in getattr(after, "threads", []):
            self._no_history.discard(thread.id)

    def _log_no_history(self, channel_id: int, error: discord.HTTPException | None) -> None:
        if channel_id in self._no_history:
            return
        self._no_history.add(channel_id)
        log.warning(
            "no Read Message History in channel %s%s: answers there are plain messages that "
            "quote the question instead of replies (grant the permission to get replies)",
            channel_id,
            f" ({error})" if error is not None else "",
        )

    async def _send_plain(
        self,
        message: discord.Message,
        *,
        content: str | None,
        embed: discord.Embed | None,
        view: discord.ui.View | None = None,
    ) -> discord.Message | None:
        quote = fmt.quoted_question(message.author.mention, self.question_text(message))
        text = quote if not content else fmt.clip(f"{quote}\n{content}")
        try:
            if embed is not None:
                return await message.channel.send(
                    text, embed=embed, allowed_mentions=NO_MENTIONS, view=_with(view)
                )
            return await message.channel.send(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as e:
            log.warning(
                "could not answer message %s in channel %s: %s", message.id, message.channel.id, e
            )
            return None


def _with(view: discord.ui.View | None) -> Any:
    """``view=`` for a send: the buttons, or nothing at all (an abstention has none)."""
    return view if view is not None else discord.utils.MISSING


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.ask")``)."""
    await bot.add_cog(AskCog(bot))
