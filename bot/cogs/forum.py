"""Help-forum mode: each new post of a ``discord.forum_channels`` forum is answered once, in
its thread, with the post's title and first message as the question.

Discord announces a post with THREAD_CREATE and then the starter message's MESSAGE_CREATE (the
starter has the thread's id); either may come first, and the second may never come. Whichever
arrives first takes the post: a THREAD_CREATE waits :data:`STARTER_WAIT` seconds for its
starter, then fetches it (and asks the title alone if that fails). Each post is *claimed* in
``community.sqlite3`` before it is answered (:class:`index.community.forum.ForumStore`), so it
is answered at most once, also after a restart. Posts made while the bot was offline are caught
up at READY: at most :data:`bot.threads.CATCH_UP_POSTS` per forum, created in the
last :data:`bot.threads.CATCH_UP_HOURS` hours. When the articles do not answer, the bot
stays silent unless ``discord.forum_abstain_message`` is on. The poster's follow-ups in an
answered post are questions with the post as context (:mod:`bot.threads`, :mod:`bot.cogs.ask`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from .. import formatting as fmt
from .. import threads
from ..interactions import NO_MENTIONS
from ..threads import is_forum_starter

if TYPE_CHECKING:
    from ..client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.forum")

STARTER_WAIT = 2.0  # seconds a THREAD_CREATE waits for its starter's MESSAGE_CREATE
NOT_FOUND_TEXT = "I could not find this in the articles."


def post_question(title: str, body: str, limit: int) -> str:
    """The question of a post: its title, then its first message (whitespace collapsed), cut
    to ``limit`` characters; the title alone when the body is empty or repeats it."""
    title, body = fmt.clean(title), fmt.clean(body)
    if not body or body.lower() == title.lower():
        text = title
    elif body.lower().startswith(title.lower()):
        text = body
    else:
        text = f"{title} {body}" if title.endswith(("?", ".", "!", ":")) else f"{title}: {body}"
    return text[:limit].strip()


class ForumCog(commands.Cog):
    def __init__(self, bot: NewsdeskBot) -> None:
        self.bot = bot
        self.forums = frozenset(bot.settings.discord.forum_channels)
        self._seen: set[int] = set()  # posts taken on by this process (claims are in the DB)
        self._starters: dict[int, asyncio.Future[discord.Message]] = {}
        self._no_access: set[int] = set()  # forums where an answer was refused: logged once
        self._caught_up = False

    # -- events ------------------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_thread_create(self, thread: discord.Thread) -> None:
        if thread.parent_id not in self.forums or thread.id in self._seen:
            return
        if self._is_mine(thread):
            return
        self._seen.add(thread.id)
        starter = thread.starter_message  # cached when the MESSAGE_CREATE came first
        if starter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._starters[thread.id] = waiter
            try:
                starter = await asyncio.wait_for(waiter, STARTER_WAIT)
            except TimeoutError:
                starter = await self._fetch_starter(thread)
            finally:
                self._starters.pop(thread.id, None)
        await self._answer_post(thread, starter)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not is_forum_starter(message, self.forums):
            return
        waiter = self._starters.get(message.channel.id)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)  # on_thread_create is waiting for it
            return
        if message.channel.id in self._seen:
            return
        self._seen.add(message.channel.id)
        thread = await self._thread_of(message)
        if thread is None or thread.parent_id not in self.forums or self._is_mine(thread):
            return
        await self._answer_post(thread, message)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Answer the posts made while the bot was offline (bounded; once per process)."""
        if self._caught_up or not self.forums:
            return
        self._caught_up = True
        since = discord.utils.utcnow() - datetime.timedelta(hours=threads.CATCH_UP_HOURS)
        for forum_id in sorted(self.forums):
            forum = self.bot.get_channel(forum_id)
            if not isinstance(forum, discord.ForumChannel):
                log.warning("discord.forum_channels: %s is not a forum the bot can see", forum_id)
                continue
            recent = [
                t
                for t in forum.threads
                if t.id not in self._seen
                and not self._is_mine(t)
                and not t.archived
                and discord.utils.snowflake_time(t.id) > since
            ]
            try:
                done = await self.bot.run_sync(
                    self.bot.threads.store.claimed, [t.id for t in recent]
                )
            except Exception as e:
                log.warning("forum catch-up skipped: %s", e)
                return
            todo = sorted((t for t in recent if t.id not in done), key=lambda t: t.id)
            for thread in todo[-threads.CATCH_UP_POSTS :]:  # the newest few, oldest first
                if thread.id in self._seen:
                    continue
                self._seen.add(thread.id)
                log.info("catching up on forum post %s in %s", thread.id, forum_id)
                await self._answer_post(thread, await self._fetch_starter(thread))

    # -- the answer ----------------------------------------------------------------------------
    def _is_mine(self, thread: discord.Thread) -> bool:
        me = self.bot.user
        return me is not None and thread.owner_id == me.id

    async def _thread_of(self, message: discord.Message) -> discord.Thread | None:
        ch = message.channel
        if isinstance(ch, discord.Thread):
            return ch
        guild = message.guild
        found = guild.get_thread(ch.id) if guild else None
        if found is not None:
            return found
        try:
            fetched = await self.bot.fetch_channel(ch.id)
        except discord.HTTPException as e:
            log.warning("could not look up the forum post %s: %s", ch.id, e)
            return None
        return fetched if isinstance(fetched, discord.Thread) else None

    async def _fetch_starter(self, thread: discord.Thread) -> discord.Message | None:
        try:
            return await thread.fetch_message(thread.id)
        except discord.HTTPException as e:  # deleted, or no Read Message History
            log.info("forum post %s: no first message (%s); asking its title", thread.id, e)
            return None

    def _may_answer(self, thread: discord.Thread) -> bool:
        """False (logged once per forum) where the bot's cached permissions cannot post in
        the forum's threads: the post is left unclaimed, for a later catch-up."""
        me = thread.guild.me
        if me is None:
            return True
        perms = thread.permissions_for(me)
        if perms.view_channel and perms.send_messages_in_threads:
            return True
        self._log_no_access(thread, "the bot lacks View Channel or Send Messages in Threads")
        return False

    def _log_no_access(self, thread: discord.Thread, why: object) -> None:
        forum = thread.parent_id or 0
        if forum in self._no_access:
            return
        self._no_access.add(forum)
        log.warning(
            "cannot answer posts in forum %s (%s): grant the bot View Channel, Send Messages in "
            "Threads and Read Message History there",
            forum,
            why,
        )

    async def _answer_post(self, thread: discord.Thread, starter: discord.Message | None) -> None:
        if starter is not None and (starter.author.bot or starter.webhook_id is not None):
            return  # posts by bots (ours included) and webhooks
        if not self._may_answer(thread):
            return
        store = self.bot.threads.store
        limit = self.bot.settings.answer.max_question_chars
        question = post_question(thread.name, starter.content if starter else "", limit)
        try:
            if not question or not await self.bot.run_sync(
                store.claim_post, thread.id, thread.parent_id or 0
            ):
                return  # answered before (e.g. by this bot before a restart)
        except Exception as e:
            log.warning("forum post %s not answered: %s", thread.id, e)
            return
        log.info("forum post %s in %s (%d chars)", thread.id, thread.parent_id, len(question))
        # the poster's quick follow-up waits for the answer and its question (bot.threads)
        async with self.bot.threads.delivering(thread.id):
            outcome, sent = await self._send_answer(thread, question)
            try:
                await self.bot.run_sync(store.finish_post, thread.id, outcome, sent)
            except Exception as e:
                log.warning("could not record forum post %s as %s: %s", thread.id, outcome, e)
            if outcome == "answered":
                await self.bot.threads.remember(thread.id, question)

    async def _send_answer(self, thread: discord.Thread, question: str) -> tuple[str, int | None]:
        """Post the answer in the thread: (outcome, the answer's message id)."""
        try:
            answer = await self.bot.ask(question, thread)
        except Exception as e:
            log.warning("forum post %s: could not answer: %s", thread.id, e)
            return "failed", None
        found = not answer.abstained and answer.smalltalk is None
        if not found and not self.bot.settings.discord.forum_abstain_message:
            return "abstained", None
        try:
            if found:
                sent = await thread.send(
                    embed=threads.answer_embed(answer), allowed_mentions=NO_MENTIONS
                )
            else:
                sent = await thread.send(NOT_FOUND_TEXT, allowed_mentions=NO_MENTIONS)
        except discord.Forbidden as e:
            self._log_no_access(thread, e)
            return "failed", None
        except discord.HTTPException as e:
            log.warning("could not answer forum post %s: %s", thread.id, e)
            return "failed", None
        return ("answered" if found else "abstained"), sent.id


async def setup(bot: NewsdeskBot) -> None:
    """The extension's entry point (``bot.load_extension("bot.cogs.forum")``)."""
    await bot.add_cog(ForumCog(bot))
