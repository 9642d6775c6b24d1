"""The fake Discord's forum channels: posts by users and by the bot, the event order, and
what Discord rejects (no message, a long name, sending to the forum itself, no permission)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest
from discord.ext import commands
from discord.http import Route

from tests.fakes.discord import FakeDiscord, run_bot
from tests.fakes.discord.common import P_SEND_MESSAGES


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(heartbeat_interval_ms=200)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_bot() -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    return commands.Bot(command_prefix="!", intents=intents, help_command=None)


async def test_a_user_post_is_a_thread_whose_starter_has_its_id(fake: FakeDiscord) -> None:
    guild = fake.add_guild()
    forum = fake.add_forum(guild, "help")
    user = fake.add_user("alice")
    bot = make_bot()
    events: list[tuple[str, int, object]] = []

    @bot.listen()
    async def on_thread_create(thread: discord.Thread) -> None:
        events.append(("thread", thread.id, thread.parent))

    @bot.listen()
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        events.append(("message", message.id, message.content))

    async with run_bot(fake, bot):
        assert isinstance(bot.get_channel(forum), discord.ForumChannel)
        tid, starter = await fake.create_forum_post(forum, user, "Apple Pay?", "What did Ma say?")
        await fake.wait_for(lambda: len(events) == 2)
        assert int(starter["id"]) == tid
        assert [e[0] for e in events] == ["thread", "message"]
        assert events[0][1] == events[1][1] == tid
        assert isinstance(events[0][2], discord.ForumChannel)
        assert events[1][2] == "What did Ma say?"
        thread = bot.get_channel(tid)
        assert isinstance(thread, discord.Thread) and thread.owner_id == user
        assert thread.name == "Apple Pay?" and thread.type is discord.ChannelType.public_thread
        # the starter can be fetched; replies in the post's thread work
        fetched = await thread.fetch_message(tid)
        assert fetched.content == "What did Ma say?"
        await thread.send("an answer")
        assert fake.messages[tid][-1]["content"] == "an answer"

        events.clear()
        tid2, _ = await fake.create_forum_post(forum, user, "Other", "text", order="message_first")
        await fake.wait_for(lambda: len(events) == 2)
        assert [e[0] for e in events] == ["message", "thread"] and events[0][1] == tid2

        events.clear()
        tid3, _ = await fake.create_forum_post(forum, user, "Third", "body", order="thread_only")
        await fake.wait_for(lambda: events)
        assert events == [("thread", tid3, bot.get_channel(forum))]


async def test_the_bot_creates_a_post(fake: FakeDiscord) -> None:
    guild = fake.add_guild()
    forum = fake.add_forum(guild)
    bot = make_bot()
    async with run_bot(fake, bot):
        channel = bot.get_channel(forum)
        assert isinstance(channel, discord.ForumChannel)
        created = await channel.create_thread(name="Weekly digest", content="Hello")
        assert created.thread.id == created.message.id
        assert created.message.content == "Hello"
        assert fake.messages[created.thread.id][0]["content"] == "Hello"
        events = [e for e, d in fake.dispatched if d.get("id") == str(created.thread.id)]
        assert events == ["THREAD_CREATE", "MESSAGE_CREATE"]


async def test_the_fake_rejects_what_discord_rejects(fake: FakeDiscord) -> None:
    guild = fake.add_guild()
    forum = fake.add_forum(guild)
    bot = make_bot()
    async with run_bot(fake, bot):
        route = Route("POST", "/channels/{channel_id}/threads", channel_id=forum)
        before = set(fake.channels)

        async def rejected(body: object) -> discord.HTTPException:
            with pytest.raises(discord.HTTPException) as err:
                await bot.http.request(route, json=body)
            return err.value

        no_message = await rejected({"name": "A post"})
        assert (no_message.status, no_message.code) == (400, 50035)
        assert "In message" in no_message.text  # the required field is named
        long_name = await rejected({"name": "x" * 101, "message": {"content": "hi"}})
        assert (long_name.status, long_name.code) == (400, 50035)
        no_name = await rejected({"message": {"content": "hi"}})
        assert (no_name.status, no_name.code) == (400, 50035)
        empty = await rejected({"name": "A post", "message": {"content": "  "}})
        assert (empty.status, empty.code) == (400, 50006)
        too_long = await rejected({"name": "A post", "message": {"content": "x" * 2001}})
        assert (too_long.status, too_long.code) == (400, 50035)
        assert set(fake.channels) == before  # nothing was created

        # a message straight to the forum channel
        send = Route("POST", "/channels/{channel_id}/messages", channel_id=forum)
        with pytest.raises(discord.HTTPException) as err:
            await bot.http.request(send, json={"content": "hi"})
        assert (err.value.status, err.value.code) == (400, 50008)

        # no Send Messages in the forum: no post
        fake.set_permission_overwrite(forum, guild, deny=P_SEND_MESSAGES)
        with pytest.raises(discord.Forbidden) as denied:
            await bot.http.request(route, json={"name": "A post", "message": {"content": "hi"}})
        assert denied.value.code == 50013
        assert set(fake.channels) == before


async def test_create_forum_post_checks_its_arguments(fake: FakeDiscord) -> None:
    guild = fake.add_guild()
    forum = fake.add_forum(guild)
    text = fake.add_channel(guild)
    user = fake.add_user("alice")
    with pytest.raises(ValueError, match="not a forum"):
        await fake.create_forum_post(text, user, "title", "body")
    with pytest.raises(ValueError, match="title"):
        await fake.create_forum_post(forum, user, "x" * 101, "body")
    with pytest.raises(ValueError, match="first message"):
        await fake.create_forum_post(forum, user, "title", "")
