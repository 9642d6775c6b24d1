"""Help-forum mode and follow-ups in threads (bot.cogs.forum, bot.threads) on the fake Discord."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import discord
import pytest

from index.community.db import DB_NAME
from index.community.forum import ForumStore
from index.config import Settings
from tests.conftest import DiscordWorld
from tests.fakes.discord.common import P_SEND_MESSAGES_IN_THREADS

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"
CHESS_Q = "Where did the chess champion defend her title?"
NOWHERE = "quantum chromodynamics lattice"
FOLLOWING = "*Following up on: “"


@pytest.fixture
def forum(discord_world: DiscordWorld, bot_settings: Settings) -> int:
    forum_id: int = discord_world.fake.add_forum(discord_world.guild, "help")
    bot_settings.discord.forum_channels = [forum_id]
    bot_settings.discord.message_content = True
    return forum_id


async def quiet(fake: Any, channel: int, count: int, wait: float = 0.4) -> bool:
    """After ``wait`` seconds the bot has still posted exactly ``count`` messages there."""
    await asyncio.sleep(wait)
    return len(fake.messages[channel]) == count


def description(msg: dict[str, Any]) -> str:
    return str(msg["embeds"][0]["description"])


@pytest.mark.parametrize("order", ["thread_first", "message_first", "thread_only"])
async def test_a_forum_post_is_answered_once_in_its_thread(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    forum: int,
    bot_settings: Settings,
    order: str,
) -> None:
    fake = discord_world.fake
    async with start_bot():
        tid, starter = await fake.create_forum_post(
            forum, discord_world.user, "Bread prize", BREAD_Q, order=order
        )
        await fake.wait_for(lambda: fake.messages[tid], timeout=8)
        (answer,) = fake.messages[tid]
        assert answer["embeds"][0]["title"] == f"Bread prize: {BREAD_Q}"
        assert "Lyon" in description(answer)
        assert FOLLOWING not in description(answer)
        (post,) = [r for r in fake.request_log if r.path == f"/channels/{tid}/messages"]
        assert post.body["allowed_mentions"]["parse"] == []
        # the starter's MESSAGE_CREATE delivered again (a resumed session): not a second answer
        await fake.dispatch("MESSAGE_CREATE", copy.deepcopy(starter))
        assert await quiet(fake, tid, 1)
        assert fake.messages[forum] == []
    store = ForumStore(bot_settings.data_dir)
    assert store.post_outcome(tid) == "answered"
    assert store.questions(tid) == [f"Bread prize: {BREAD_Q}"]
    store.close()
    assert fake.errors == [] and fake.unexpected == []


async def test_the_title_alone_without_message_content(
    discord_world: DiscordWorld, start_bot: StartBot, forum: int, bot_settings: Settings
) -> None:
    bot_settings.discord.message_content = False
    fake = discord_world.fake
    async with start_bot():
        tid, _ = await fake.create_forum_post(
            forum, discord_world.user, BREAD_Q, "see title, thanks"
        )
        await fake.wait_for(lambda: fake.messages[tid], timeout=8)
        assert fake.messages[tid][0]["embeds"][0]["title"] == BREAD_Q


async def test_abstention_is_silent_by_default(
    discord_world: DiscordWorld, start_bot: StartBot, forum: int, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    async with start_bot():
        tid, _ = await fake.create_forum_post(forum, discord_world.user, "Physics", NOWHERE)
        assert await quiet(fake, tid, 0, wait=1.0)
    store = ForumStore(bot_settings.data_dir)
    assert store.post_outcome(tid) == "abstained"
    store.close()


async def test_abstention_message_when_configured(
    discord_world: DiscordWorld, start_bot: StartBot, forum: int, bot_settings: Settings
) -> None:
    bot_settings.discord.forum_abstain_message = True
    fake = discord_world.fake
    async with start_bot():
        tid, _ = await fake.create_forum_post(forum, discord_world.user, "Physics", NOWHERE)
        await fake.wait_for(lambda: fake.messages[tid], timeout=8)
        (msg,) = fake.messages[tid]
        assert msg["content"] == "I could not find this in the articles."
        assert msg["embeds"] == []
        assert await quiet(fake, tid, 1)


async def test_no_second_answer_after_a_restart_and_offline_posts_are_caught_up(
    discord_world: DiscordWorld, start_bot: StartBot, forum: int, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    async with start_bot():
        tid, starter = await fake.create_forum_post(forum, discord_world.user, "Bread", BREAD_Q)
        await fake.wait_for(lambda: fake.messages[tid], timeout=8)
    # while the bot is away: a new post
    later, _ = await fake.create_forum_post(
        forum, discord_world.user, "Chess", CHESS_Q, order="offline"
    )
    async with start_bot():
        await fake.wait_for(lambda: fake.messages[later], timeout=8)  # caught up at READY
        assert "Chess champion keeps her title" in description(fake.messages[later][0])
        await fake.dispatch("MESSAGE_CREATE", copy.deepcopy(starter))  # seen again
        assert await quiet(fake, tid, 1)
        assert await quiet(fake, later, 1, wait=0.1)
    assert (bot_settings.data_dir / DB_NAME).is_file()


async def test_posts_by_the_bot_and_other_bots_and_other_forums_are_ignored(
    discord_world: DiscordWorld, start_bot: StartBot, forum: int
) -> None:
    fake = discord_world.fake
    other_forum = fake.add_forum(discord_world.guild, "other")
    robot = fake.add_user("robot", bot=True)
    async with start_bot() as bot:
        channel = bot.get_channel(forum)
        assert isinstance(channel, discord.ForumChannel)
        own = await channel.create_thread(name="Digest", content=BREAD_Q)
        tid, _ = await fake.create_forum_post(forum, robot, "Bread", BREAD_Q)
        elsewhere, _ = await fake.create_forum_post(other_forum, discord_world.user, "B", BREAD_Q)
        await asyncio.sleep(0.5)
        assert len(fake.messages[own.thread.id]) == 1  # its own starter only
        assert fake.messages[tid] == [] and fake.messages[elsewhere] == []


@pytest.mark.parametrize("cached", [True, False])
async def test_missing_permissions_are_logged_once(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    forum: int,
    caplog: pytest.LogCaptureFixture,
    cached: bool,
) -> None:
    """Without Send Messages in Threads: one log line per forum, no crash, no answer. Known
    from the cache (``cached``), or learnt from Discord's 403 when the cache is stale."""
    fake = discord_world.fake
    if cached:
        fake.set_permission_overwrite(forum, fake.bot_id, deny=P_SEND_MESSAGES_IN_THREADS)
    async with start_bot():
        if not cached:
            fake.set_permission_overwrite(
                forum, fake.bot_id, deny=P_SEND_MESSAGES_IN_THREADS, dispatch=False
            )
        with caplog.at_level(logging.WARNING, logger="newsdesk"):
            first, _ = await fake.create_forum_post(forum, discord_world.user, "A", BREAD_Q)
            second, _ = await fake.create_forum_post(forum, discord_world.user, "B", CHESS_Q)
            await asyncio.sleep(1.0)
        assert fake.messages[first] == [] and fake.messages[second] == []
        lines = [r for r in caplog.records if "cannot answer posts in forum" in r.getMessage()]
        assert len(lines) == 1 and str(forum) in lines[0].getMessage()
        # the bot still answers elsewhere
        await fake.send_message(
            discord_world.channel, discord_world.user, BREAD_Q, mention_bot=True
        )
        await fake.wait_for(lambda: fake.messages[discord_world.channel], timeout=8)
    assert fake.errors == []


async def test_the_posters_follow_up_uses_the_post_as_context(
    discord_world: DiscordWorld, start_bot: StartBot, forum: int
) -> None:
    fake = discord_world.fake
    other = fake.add_user("bob")
    async with start_bot():
        tid, _ = await fake.create_forum_post(forum, discord_world.user, "Chess", CHESS_Q)
        await fake.wait_for(lambda: fake.messages[tid], timeout=8)
        await fake.send_message(tid, other, "I think it was in Paris")  # not the poster
        assert await quiet(fake, tid, 1)
        await fake.send_message(tid, discord_world.user, "and the prize?")
        await fake.wait_for(lambda: len(fake.messages[tid]) == 2, timeout=8)
        follow = fake.messages[tid][1]
        text = description(follow)
        assert text.startswith(f"{FOLLOWING}Chess: {CHESS_Q}”*")
        assert "Chess champion keeps her title" in text
        assert follow["embeds"][0]["title"] == "and the prize?"


async def test_follow_ups_in_a_bot_thread_use_context_after_a_restart_and_in_slash_ask(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.discord.reply_in_thread = True
    bot_settings.discord.message_content = True
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, CHESS_Q, mention_bot=True)
        tid = int(q["id"])
        await fake.wait_for(lambda: fake.messages[tid], timeout=20)
        assert FOLLOWING not in description(fake.messages[tid][0])
        # "when was that?" is no small talk in a thread with a question
        await fake.send_message(tid, discord_world.user, "when was that?")
        await fake.wait_for(lambda: len(fake.messages[tid]) == 2, timeout=20)
        text = description(fake.messages[tid][1])
        assert text.startswith(f"{FOLLOWING}{CHESS_Q}”*")
        assert "Chess champion keeps her title" in text
        # a question that stands on its own is asked as it is
        await fake.send_message(tid, discord_world.user, BREAD_Q)
        await fake.wait_for(lambda: len(fake.messages[tid]) == 3, timeout=20)
        assert FOLLOWING not in description(fake.messages[tid][2])
        assert "Lyon" in description(fake.messages[tid][2])
    async with start_bot():  # the thread's questions survive a restart
        inter = await fake.invoke_command(
            "ask",
            {"question": "and who was the baker?"},
            user_id=discord_world.user,
            guild_id=discord_world.guild,
            channel_id=tid,
        )
        await inter.wait_done()
        await fake.wait_for(lambda: inter.original and inter.original.get("embeds"), timeout=20)
        text = description(inter.original)
        assert text.startswith(f"{FOLLOWING}{BREAD_Q}”*")  # the newest anchor
        # the same /ask outside the thread: no context
        plain = await fake.invoke_command(
            "ask",
            {"question": "and who was the baker?"},
            user_id=discord_world.user,
            guild_id=discord_world.guild,
            channel_id=ch,
        )
        await plain.wait_done()
        await fake.wait_for(lambda: plain.original and plain.original.get("embeds"), timeout=20)
        assert FOLLOWING not in description(plain.original)
    store = ForumStore(bot_settings.data_dir)
    assert store.questions(tid) == [CHESS_Q, "when was that?", BREAD_Q, "and who was the baker?"]
    store.close()


async def test_a_follow_up_sent_before_the_bot_heard_back_from_discord_has_its_context(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    """The answer shows in the thread before Discord's response reaches the bot (latency); a
    follow-up typed in that gap is still a follow-up, not small talk dropped for lack of
    context -- and the thread's questions are stored in the order they were asked."""
    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.discord.reply_in_thread = True
    bot_settings.discord.message_content = True
    fake.delay_responses("POST", r"/channels/\d+/messages", 1.5)
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, CHESS_Q, mention_bot=True)
        tid = int(q["id"])
        await fake.wait_for(lambda: fake.messages[tid], timeout=20)
        await fake.send_message(tid, discord_world.user, "when was that?")  # at once
        await fake.wait_for(lambda: len(fake.messages[tid]) == 2, timeout=20)
        text = description(fake.messages[tid][1])
        assert text.startswith(f"{FOLLOWING}{CHESS_Q}”*")
        assert "Chess champion keeps her title" in text
    # the bot stopped while the second answer's response was still on its way: close() waited
    store = ForumStore(bot_settings.data_dir)
    assert store.questions(tid) == [CHESS_Q, "when was that?"]
    store.close()


async def test_the_posters_quick_follow_up_waits_for_the_answer_being_posted(
    discord_world: DiscordWorld, start_bot: StartBot, forum: int
) -> None:
    """A poster's follow-up that arrives while the bot is still hearing back about its answer
    is answered with the post as context (it is no longer dropped as 'not a question place')."""
    fake = discord_world.fake
    fake.delay_responses("POST", r"/channels/\d+/messages", 1.5)
    async with start_bot():
        tid, _ = await fake.create_forum_post(forum, discord_world.user, "Chess", CHESS_Q)
        await fake.wait_for(lambda: fake.messages[tid], timeout=20)
        await fake.send_message(tid, discord_world.user, "and the prize?")  # at once
        await fake.wait_for(lambda: len(fake.messages[tid]) == 2, timeout=20)
        text = description(fake.messages[tid][1])
        assert text.startswith(f"{FOLLOWING}Chess: {CHESS_Q}”*")


def test_run_check_describes_forum_mode(bot_settings: Settings) -> None:
    from bot.client import intent_warnings
    from bot.preflight import describe, required_permissions

    d = bot_settings.discord
    d.forum_channels = [123456789012345678]
    assert "send_messages_in_threads" in required_permissions(bot_settings)
    assert "create_public_threads" not in required_permissions(bot_settings)
    lines, _ = describe(bot_settings)
    text = "\n".join(lines)
    assert "each new post in forums 123456789012345678, once (silent when" in text
    assert any(
        "forum_channels is set but discord.message_content is false" in w
        for w in intent_warnings(bot_settings)
    )
    d.message_content = True
    d.forum_abstain_message = True
    assert intent_warnings(bot_settings) == []
    assert "once; the poster's follow-ups there" in "\n".join(describe(bot_settings)[0])


async def test_the_catch_up_is_bounded_to_the_newest_posts(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    forum: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot import threads

    monkeypatch.setattr(threads, "CATCH_UP_POSTS", 2)
    fake = discord_world.fake
    posts = [
        (
            await fake.create_forum_post(
                forum, discord_world.user, f"Q{i}", BREAD_Q, order="offline"
            )
        )[0]
        for i in range(3)
    ]
    archived, _ = await fake.create_forum_post(
        forum, discord_world.user, "Old", CHESS_Q, order="offline"
    )
    fake.channels[archived]["thread_metadata"]["archived"] = True
    async with start_bot():
        await fake.wait_for(lambda: fake.messages[posts[1]] and fake.messages[posts[2]], timeout=8)
        assert await quiet(fake, posts[0], 0), [len(fake.messages[p]) for p in posts]
        assert fake.messages[archived] == []
