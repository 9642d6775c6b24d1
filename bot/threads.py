"""The questions the bot answered in each thread, for follow-ups ("when was that?").

Threads that count: those the bot opened for an answer (``discord.reply_in_thread``) and the
help-forum posts it answered (:mod:`bot.cogs.forum`). Their questions are stored in
``<data_dir>/community.sqlite3`` (:class:`index.community.forum.ForumStore`), so a follow-up
after a restart still has its context; the set of such thread ids is cached in memory so that
deciding whether a message is a question never waits for the disk.

Discord shows an answer to everyone before its response reaches the bot, so a quick follow-up
can arrive while the bot is still posting the answer and storing its question. The posting is
wrapped in :meth:`ThreadMemory.delivering`; :meth:`ThreadMemory.context` waits for it (at most
``SETTLE_SECONDS``), so the follow-up sees the question it follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path

import discord

from index.community.forum import ForumStore
from index.config import PrivacySettings
from index.models import Answer
from index.search import followup, smalltalk
from index.written.generate import GeneratedAnswer

from . import formatting as fmt

log = logging.getLogger("newsdesk.bot.threads")

FOLLOW_UP_CHARS = 300  # the earlier question shown above a follow-up's answer
# help-forum posts made while the bot was offline, answered at READY (bot.cogs.forum): at most
# this many per forum, the newest, created in the last CATCH_UP_HOURS
CATCH_UP_POSTS = 10
CATCH_UP_HOURS = 24.0
# how long a message in a thread waits for an answer still being posted there (and its question
# stored) before it is read without that context
SETTLE_SECONDS = 15.0


class ThreadMemory:
    """Per thread, the questions the bot answered there (oldest first)."""

    def __init__(self, data_dir: Path, privacy: PrivacySettings | None = None) -> None:
        self.store = ForumStore(data_dir, privacy)  # privacy.retention_days applies
        self._known: set[int] = set()
        self._delivering: dict[int, list[asyncio.Event]] = {}  # thread id -> answers in flight

    async def load(self) -> None:
        """Read which threads have questions (once, at start)."""
        try:
            self._known = await asyncio.to_thread(self.store.threads)
        except Exception as e:  # a damaged community file must not stop the bot
            log.warning("could not read the thread questions: %s", e)

    def knows(self, thread_id: int) -> bool:
        return thread_id in self._known

    @contextlib.asynccontextmanager
    async def delivering(self, thread_id: int | None) -> AsyncIterator[None]:
        """Around posting an answer to thread ``thread_id`` (None: not a thread) and remembering
        its question: :meth:`context` for that thread waits until the block is left."""
        if thread_id is None:
            yield
            return
        done = asyncio.Event()
        self._delivering.setdefault(thread_id, []).append(done)
        try:
            yield
        finally:
            done.set()
            waiting = self._delivering[thread_id]
            waiting.remove(done)
            if not waiting:
                del self._delivering[thread_id]

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` s) for every answer being posted to a thread, so that a
        shutdown does not lose the question of an answer already on its way."""
        await _wait_all([done for events in self._delivering.values() for done in events], timeout)

    async def settle(self, thread_id: int) -> None:
        """Wait (at most SETTLE_SECONDS) for the answers being posted to the thread."""
        await _wait_all(list(self._delivering.get(thread_id, ())), SETTLE_SECONDS)

    async def context(self, channel: object) -> list[str]:
        """The earlier questions of ``channel`` when it is a thread the bot answered in (after
        any answer still being posted there)."""
        if not isinstance(channel, discord.Thread):
            return []
        await self.settle(channel.id)
        if channel.id not in self._known:
            return []
        try:
            return await asyncio.to_thread(self.store.questions, channel.id)
        except Exception as e:
            log.warning("could not read the questions of thread %s: %s", channel.id, e)
            return []

    async def remember(self, thread_id: int, question: str) -> None:
        """Add ``question`` to the thread's questions; a failure is logged, never raised."""
        self._known.add(thread_id)
        try:
            await asyncio.to_thread(self.store.remember, thread_id, question)
        except Exception as e:
            log.warning("could not remember the question in thread %s: %s", thread_id, e)

    async def remember_sent(self, sent: discord.Message | None, question: str) -> None:
        """After an answer was posted: remember the question when it went to a thread the bot
        opened, or one it already answered in (a forum post); not in other people's threads,
        where only mentions are questions."""
        if sent is None or not isinstance(sent.channel, discord.Thread):
            return
        thread = sent.channel
        if thread.owner_id == sent.author.id or thread.id in self._known:
            await self.remember(thread.id, question)

    def close(self) -> None:
        self.store.close()


async def _wait_all(events: Sequence[asyncio.Event], timeout: float) -> None:
    """Until every event is set, or ``timeout`` seconds have passed."""
    if not events:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            for done in events:
                await done.wait()


def is_forum_starter(message: discord.Message, forum_ids: Collection[int]) -> bool:
    """The first message of a post in one of ``forum_ids`` (its id is the thread's). A
    starter that arrived before its thread is known (a partial channel) counts too: the forum
    cog looks the thread up."""
    ch = message.channel
    if not forum_ids or message.guild is None or message.id != ch.id:
        return False
    if isinstance(ch, discord.Thread):
        return ch.parent_id in forum_ids
    return isinstance(ch, discord.PartialMessageable)


def is_follow_up_noise(kind: str | None, question: str, context: Sequence[str]) -> bool:
    """A message small talk would drop as noise ("when was that?", "why?") that is a
    follow-up in a thread with earlier questions: it is asked, with them as context."""
    return kind == "noise" and bool(context) and followup.needs_context(question)


def classify(question: str, context: Sequence[str]) -> str | None:
    """:func:`smalltalk.classify`, except that a contentless follow-up is a question."""
    kind = smalltalk.classify(question)
    return None if is_follow_up_noise(kind, question, context) else kind


def follow_up_line(based_on: str) -> str:
    """The line above a follow-up's answer: which earlier question it built on."""
    return f"*Following up on: “{fmt.fit(based_on, FOLLOW_UP_CHARS)}”*"


def answer_embed(answer: Answer) -> discord.Embed:
    """:func:`fmt.answer_embed`, with the follow-up line first when the answer built on an
    earlier question of the thread."""
    return _with_follow_up(fmt.answer_embed(answer), answer.follows_up)


def generated_embed(gen: GeneratedAnswer) -> discord.Embed:
    """:func:`fmt.generated_embed` (a written answer), with the follow-up line likewise."""
    return _with_follow_up(fmt.generated_embed(gen), gen.answer.follows_up)


def _with_follow_up(embed: discord.Embed, based_on: str | None) -> discord.Embed:
    if based_on:
        line = follow_up_line(based_on)
        embed.description = f"{line}\n\n{embed.description or ''}".rstrip()
        embed = fmt.enforce_limits(embed)
    return embed
