"""Tests proving that tests/fakes/discord/ can drive a real discord.py bot over loopback."""

from __future__ import annotations

import asyncio
import io
import json
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import discord
import discord.gateway
import discord.http
import discord.utils
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import CommandNotAvailable, FakeDiscord, run_bot


@dataclass
class World:
    fake: FakeDiscord
    guild: int
    channel: int
    user: int
    admin: int


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(heartbeat_interval_ms=200)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    guild = fake.add_guild("Newsroom")
    channel = fake.add_channel(guild, "general")
    user = fake.add_user("alice")
    admin = fake.add_user("boss")
    fake.add_member(guild, user)
    fake.add_member(guild, admin, admin=True)
    return World(fake, guild, channel, user, admin)


def make_bot(*, message_content: bool = True, members: bool = False) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = message_content
    intents.members = members
    return commands.Bot(command_prefix="!", intents=intents, help_command=None)


async def test_connects_ready_with_guild(world: World) -> None:
    fake = world.fake
    bot = make_bot(members=True)
    original_base = discord.http.Route.BASE
    async with run_bot(fake, bot):
        assert fake.base_url == discord.http.Route.BASE
        assert bot.user is not None and bot.user.id == fake.application_id
        assert bot.application_id == fake.application_id
        guild = bot.get_guild(world.guild)
        assert guild is not None and guild.name == "Newsroom"
        assert guild.me is not None and guild.me.id == fake.application_id
        channel = guild.get_channel(world.channel)
        assert isinstance(channel, discord.TextChannel) and channel.name == "general"
        member = guild.get_member(world.admin)
        assert member is not None and member.guild_permissions.manage_guild
        assert guild.chunked and len(guild.members) == 3
        late = fake.add_user("late")
        fake.add_member(world.guild, late)  # GUILD_MEMBER_ADD
        await fake.wait_for(lambda: guild.get_member(late) is not None)
        assert [m.id for m in await guild.query_members(user_ids=[late])] == [late]  # op 8
        assert fake.identifies == 1
        # discord.py asks for transport compression; the fake speaks what it asked for.
        expected = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
        assert fake.gateway_queries[0]["compress"] == expected
        assert fake.gateway_queries[0]["encoding"] == "json"
        paths = [(m, p) for m, p, _ in fake.requests]
        assert ("GET", "/users/@me") in paths
        assert ("GET", "/oauth2/applications/@me") in paths
    assert original_base == discord.http.Route.BASE
    assert bot.is_closed()
    await fake.wait_for(lambda: fake.disconnects == 1, timeout=5)
    assert fake.unexpected == []
    assert fake.errors == []


async def test_heartbeats_are_acknowledged(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    async with run_bot(fake, bot):
        start = fake.heartbeats
        await fake.wait_for(lambda: fake.heartbeats >= start + 2, timeout=5)
        assert bot.latency < 1.0  # only finite if ACKs came back


async def test_mention_reply_with_allowed_mentions(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    seen: list[str] = []

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        seen.append(message.content)
        if bot.user is not None and bot.user in message.mentions:
            await message.channel.send(
                f"hi {message.author.mention}", allowed_mentions=discord.AllowedMentions.none()
            )

    async with run_bot(fake, bot):
        await fake.send_message(world.channel, world.user, "just chatting")
        sent = await fake.send_message(world.channel, world.user, "ping", mention_bot=True)
        assert sent["content"] == f"<@{fake.application_id}> ping"
        await fake.wait_for(lambda: len(fake.messages[world.channel]) == 1)
        reply = fake.messages[world.channel][0]
        assert reply["content"] == f"hi <@{world.user}>"
        assert reply["author"]["id"] == str(fake.application_id)
        assert reply["mentions"] == []  # AllowedMentions.none() suppressed the ping
        posts = [
            b
            for m, p, b in fake.requests
            if (m, p) == ("POST", f"/channels/{world.channel}/messages")
        ]
        assert isinstance(posts[0], dict)
        assert posts[0]["allowed_mentions"] == {"parse": []}
        assert seen == ["just chatting", f"<@{fake.application_id}> ping"]
        await asyncio.sleep(0.05)
        assert len(fake.messages[world.channel]) == 1  # no reply to the non-mention


async def test_message_content_intent_is_enforced(world: World) -> None:
    fake = world.fake
    bot = make_bot(message_content=False)
    seen: list[str] = []

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            seen.append(message.content)

    async with run_bot(fake, bot):
        await fake.send_message(world.channel, world.user, "secret words")
        await fake.send_message(world.channel, world.user, "hey", mention_bot=True)
        await fake.send_dm(world.user, "dm text")
        await fake.wait_for(lambda: len(seen) == 3)
    assert seen == ["", f"<@{fake.application_id}> hey", "dm text"]


async def test_dm_round_trip(world: World) -> None:
    fake = world.fake
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot and message.guild is None:
            await message.author.send(f"echo: {message.content}")

    async with run_bot(fake, bot):
        dm = await fake.send_dm(world.user, "hello bot")
        assert "guild_id" not in dm
        dm_channel = fake.dm_channel(world.user)
        await fake.wait_for(lambda: fake.messages[dm_channel])
        assert fake.messages[dm_channel][0]["content"] == "echo: hello bot"
        assert ("POST", "/users/@me/channels") in [(m, p) for m, p, _ in fake.requests]


async def test_slash_command_sync_defer_followup(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    seen: dict[str, object] = {}

    @bot.tree.command(name="ask", description="Ask the newsdesk a question")
    @app_commands.describe(question="What do you want to know?", limit="How many quotes")
    async def ask(interaction: discord.Interaction, question: str, limit: int = 3) -> None:
        await interaction.response.defer(thinking=True)
        seen["limit"] = limit
        seen["permissions"] = interaction.permissions.manage_guild
        await interaction.followup.send(f"answer to {question!r}")

    async with run_bot(fake, bot):
        synced = await bot.tree.sync()
        assert [c.name for c in synced] == ["ask"]
        assert fake.sync_calls == 1
        definition = fake.synced_commands[None][0]
        assert definition["name"] == "ask"
        assert [
            (o["name"], o["type"], o.get("required", False)) for o in definition["options"]
        ] == [
            ("question", 3, True),
            ("limit", 4, False),
        ]
        assert str(synced[0].id) == definition["id"]

        inter = await fake.invoke_command(
            "ask",
            {"question": "why?", "limit": 5},
            user_id=world.user,
            guild_id=world.guild,
            channel_id=world.channel,
        )
        await inter.wait_done()
        assert inter.deferred()
        assert inter.callbacks[0] == {"type": 5, "data": {}}
        assert not inter.ephemeral()
        assert [m["content"] for m in inter.followups] == ["answer to 'why?'"]
        assert inter.original is not None and inter.original["flags"] & 128  # still "thinking"
        assert seen == {"limit": 5, "permissions": False}
        assert [m["content"] for m in inter.all_messages()] == ["", "answer to 'why?'"]
        # interaction responses are not plain channel messages
        assert fake.messages[world.channel] == []

        admin_inter = await fake.invoke_command(
            "ask",
            {"question": "q"},
            user_id=world.user,
            guild_id=world.guild,
            channel_id=world.channel,
            admin=True,
        )
        await admin_inter.wait_done()
        assert seen == {"limit": 3, "permissions": True}

        bot.tree.copy_global_to(guild=discord.Object(world.guild))
        await bot.tree.sync(guild=discord.Object(world.guild))
        assert fake.sync_calls == 2
        assert [c["name"] for c in fake.synced_commands[world.guild]] == ["ask"]
        assert fake.synced_commands[world.guild][0]["guild_id"] == str(world.guild)
    assert fake.unexpected == []
    assert fake.errors == []


async def test_ephemeral_and_edit_original(world: World) -> None:
    fake = world.fake
    bot = make_bot()

    @bot.tree.command(name="secret", description="Whisper")
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("shh", ephemeral=True)

    @bot.tree.command(name="slow", description="Slow private answer")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.edit_original_response(content="done")

    async with run_bot(fake, bot):
        await bot.tree.sync()
        inter = await fake.invoke_command(
            "secret", user_id=world.user, guild_id=world.guild, channel_id=world.channel
        )
        await inter.wait_done()
        assert inter.callbacks[0]["type"] == 4
        assert inter.callbacks[0]["data"]["flags"] & 64
        assert inter.ephemeral() and not inter.deferred()
        assert inter.original is not None and inter.original["content"] == "shh"

        slow_inter = await fake.invoke_command(
            "slow", user_id=world.user, guild_id=world.guild, channel_id=world.channel
        )
        await slow_inter.wait_done()
        assert slow_inter.deferred() and slow_inter.ephemeral()
        assert slow_inter.edits == 1
        assert slow_inter.original is not None
        assert slow_inter.original["content"] == "done"
        assert slow_inter.original["flags"] == 64  # ephemeral kept, loading cleared
        patches = [p for m, p, _ in fake.requests if m == "PATCH"]
        assert patches == [f"/webhooks/{fake.application_id}/{slow_inter.token}/messages/@original"]


async def test_autocomplete_returns_choices(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    topics = ["politics", "python", "pytest", "sports"]
    typed: list[str] = []

    @bot.tree.command(name="search", description="Search articles")
    async def search(interaction: discord.Interaction, topic: str) -> None:
        await interaction.response.send_message(topic)

    @search.autocomplete("topic")
    async def topic_autocomplete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        typed.append(current)
        return [
            app_commands.Choice(name=t.title(), value=t) for t in topics if t.startswith(current)
        ]

    async with run_bot(fake, bot):
        await bot.tree.sync()
        choices = await fake.autocomplete(
            "search",
            {"topic": "py"},
            "topic",
            user_id=world.user,
            guild_id=world.guild,
            channel_id=world.channel,
        )
        assert choices == [
            {"name": "Python", "value": "python"},
            {"name": "Pytest", "value": "pytest"},
        ]
        assert typed == ["py"]


async def test_mention_creates_thread_and_replies_in_it(world: World) -> None:
    fake = world.fake
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if bot.user is not None and bot.user in message.mentions and not message.author.bot:
            thread = await message.create_thread(name="Answer: " + message.clean_content[:40])
            await thread.send("here is your answer")

    async with run_bot(fake, bot):
        question = await fake.send_message(world.channel, world.user, "what?", mention_bot=True)
        thread_id = int(question["id"])  # threads started from a message share its id
        await fake.wait_for(lambda: fake.messages[thread_id])
        assert fake.messages[thread_id][0]["content"] == "here is your answer"
        assert fake.messages[world.channel] == []
        thread = fake.channels[thread_id]
        assert thread["parent_id"] == str(world.channel) and thread["type"] == 11
        assert thread["name"].startswith("Answer: ")
        await fake.wait_for(lambda: isinstance(bot.get_channel(thread_id), discord.Thread))

        # A user message inside the thread reaches the bot with the thread as channel.
        got: list[discord.abc.MessageableChannel] = []

        @bot.listen("on_message")
        async def record(message: discord.Message) -> None:
            if not message.author.bot:
                got.append(message.channel)

        await fake.send_message(thread_id, world.user, "thanks")
        await fake.wait_for(lambda: got)
        assert isinstance(got[0], discord.Thread) and got[0].id == thread_id


async def test_thread_name_too_long_is_rejected(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    async with run_bot(fake, bot):
        msg = await fake.send_message(world.channel, world.user, "hi")
        channel = bot.get_channel(world.channel)
        assert isinstance(channel, discord.TextChannel)
        partial = channel.get_partial_message(int(msg["id"]))
        with pytest.raises(discord.HTTPException) as err:
            await partial.create_thread(name="x" * 101)
        assert err.value.status == 400 and err.value.code == 50035


async def test_deleted_channel_gives_not_found(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    quiet = fake.add_channel(world.guild, "quiet")
    async with run_bot(fake, bot):
        channel = bot.get_channel(world.channel)
        stale = bot.get_channel(quiet)
        assert isinstance(channel, discord.TextChannel) and isinstance(stale, discord.TextChannel)

        fake.delete_channel(world.channel)
        with pytest.raises(discord.NotFound) as err:
            await channel.send("anyone?")
        assert err.value.code == 10003
        with pytest.raises(discord.NotFound):
            await bot.fetch_channel(world.channel)
        await fake.wait_for(lambda: bot.get_channel(world.channel) is None)  # CHANNEL_DELETE

        fake.delete_channel(quiet, dispatch=False)
        with pytest.raises(discord.NotFound):
            await stale.send("still there?")
        assert bot.get_channel(quiet) is not None  # the bot was not told


async def test_message_limits_are_enforced(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    async with run_bot(fake, bot):
        channel = bot.get_channel(world.channel)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as err:
            await channel.send("x" * 2001)
        assert err.value.status == 400 and err.value.code == 50035
        with pytest.raises(discord.HTTPException) as err:
            await channel.send(embed=discord.Embed(description="y" * 4097))
        assert err.value.code == 50035
        with pytest.raises(discord.HTTPException) as err:
            await channel.send("   ")
        assert err.value.code == 50006
        ok = await channel.send("x" * 2000)
        edited = await ok.edit(content="short")
        assert edited.content == "short"
        assert fake.messages[world.channel][0]["content"] == "short"
        assert fake.messages[world.channel][0]["edited_timestamp"] is not None
        await ok.delete()
        assert fake.messages[world.channel] == []


async def test_attachments_download_and_upload(world: World) -> None:
    fake = world.fake
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot or not message.attachments:
            return
        data = await message.attachments[0].read()
        await message.reply(
            "got it", file=discord.File(io.BytesIO(data.upper()), filename="shout.txt")
        )

    async with run_bot(fake, bot):
        sent = await fake.send_message(
            world.channel,
            world.user,
            "see file",
            attachments=[{"filename": "a.txt", "data": b"abc"}],
        )
        await fake.wait_for(lambda: fake.messages[world.channel])
        reply = fake.messages[world.channel][0]
        assert reply["type"] == 19 and reply["message_reference"]["message_id"] == sent["id"]
        assert [a["filename"] for a in reply["attachments"]] == ["shout.txt"]
        assert fake.uploads[0]["data"] == b"ABC"
        url = reply["attachments"][0]["url"]
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert await resp.read() == b"ABC"


async def test_command_availability_and_option_checks(world: World) -> None:
    fake = world.fake
    bot = make_bot()

    @bot.tree.command(name="configure", description="Admin only")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def configure(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        await interaction.response.send_message(f"using {channel.mention}", ephemeral=True)

    async with run_bot(fake, bot):
        await bot.tree.sync()
        with pytest.raises(CommandNotAvailable):
            await fake.invoke_command(
                "configure",
                {"channel": world.channel},
                user_id=world.user,
                guild_id=world.guild,
                channel_id=world.channel,
            )
        with pytest.raises(AssertionError, match="no option"):
            await fake.invoke_command(
                "configure",
                {"chanel": world.channel},
                user_id=world.admin,
                guild_id=world.guild,
                channel_id=world.channel,
            )
        with pytest.raises(AssertionError, match="not been synced"):
            await fake.invoke_command(
                "nope", user_id=world.admin, guild_id=world.guild, channel_id=world.channel
            )
        inter = await fake.invoke_command(
            "configure",
            {"channel": world.channel},
            user_id=world.admin,
            guild_id=world.guild,
            channel_id=world.channel,
        )
        await inter.wait_done()
        assert inter.original is not None
        assert inter.original["content"] == f"using <#{world.channel}>"


async def test_late_interaction_response_is_rejected(world: World) -> None:
    fake = world.fake
    fake.interaction_response_timeout = 0.1
    bot = make_bot()
    errors: list[Exception] = []

    @bot.tree.command(name="sleepy", description="Too slow")
    async def sleepy(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            errors.append(exc)

    async with run_bot(fake, bot):
        await bot.tree.sync()
        inter = await fake.invoke_command(
            "sleepy", user_id=world.user, guild_id=world.guild, channel_id=world.channel
        )
        await fake.wait_for(lambda: errors)
        assert isinstance(errors[0], discord.NotFound) and errors[0].code == 10062
        assert inter.expired and inter.callbacks == []
        with pytest.raises(AssertionError, match="timed out"):
            await inter.wait_done(timeout=0.05)


async def test_button_click_updates_message(world: World) -> None:
    fake = world.fake
    bot = make_bot()

    class Counter(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=30)
            self.count = 0

        @discord.ui.button(label="+1", custom_id="counter:inc")
        async def inc(
            self, interaction: discord.Interaction, button: discord.ui.Button[Counter]
        ) -> None:
            self.count += 1
            await interaction.response.edit_message(content=f"count={self.count}", view=self)

    async with run_bot(fake, bot):
        channel = bot.get_channel(world.channel)
        assert isinstance(channel, discord.TextChannel)
        view = Counter()
        sent = await channel.send("count=0", view=view)
        inter = await fake.click_component(sent.id, "counter:inc", user_id=world.user)
        await inter.wait_done()
        assert inter.callback_types == [7]
        assert fake.messages[world.channel][0]["content"] == "count=1"


async def test_reconnect_resumes_session(world: World) -> None:
    fake = world.fake
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            await message.channel.send("still here")

    async with run_bot(fake, bot):
        await fake.request_reconnect()
        await fake.wait_for(lambda: fake.resumes == 1 and fake.connected)
        assert fake.identifies == 1 and fake.disconnects == 1
        await fake.send_message(world.channel, world.user, "hello?")
        await fake.wait_for(lambda: fake.messages[world.channel])


async def test_unimplemented_route_is_recorded(world: World) -> None:
    fake = world.fake
    bot = make_bot()
    async with run_bot(fake, bot):
        with pytest.raises(discord.NotFound):
            await bot.http.request(
                discord.http.Route("GET", "/guilds/{guild_id}/bans", guild_id=world.guild)
            )
    assert fake.unexpected == [("GET", f"/guilds/{world.guild}/bans")]


async def test_wait_for_timeout_message(fake: FakeDiscord) -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s"):
        await fake.wait_for(lambda: False, timeout=0.05)


@pytest.mark.parametrize("compress", [None, "zlib-stream"])
async def test_raw_gateway_handshake(fake: FakeDiscord, compress: str | None) -> None:
    fake.add_guild()
    url = fake.gateway_url + "?v=10&encoding=json" + (f"&compress={compress}" if compress else "")
    inflator = zlib.decompressobj()

    def decode(msg: aiohttp.WSMessage) -> dict[str, object]:
        if compress:
            assert msg.type == aiohttp.WSMsgType.BINARY
            data: dict[str, object] = json.loads(inflator.decompress(msg.data))
            return data
        assert msg.type == aiohttp.WSMsgType.TEXT
        data = json.loads(msg.data)
        return data

    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = decode(await ws.receive())
        assert hello["op"] == 10
        assert hello["d"] == {"heartbeat_interval": 200, "_trace": ["fakediscord"]}
        await ws.send_json({"op": 1, "d": None})
        assert decode(await ws.receive())["op"] == 11
        await ws.send_json({"op": 2, "d": {"token": "t", "intents": 1, "properties": {}}})
        ready = decode(await ws.receive())
        assert ready["t"] == "READY" and ready["s"] == 1
        guild_create = decode(await ws.receive())
        assert guild_create["t"] == "GUILD_CREATE"
    assert fake.heartbeats == 1 and fake.identifies == 1
    await fake.wait_for(lambda: fake.disconnects == 1, timeout=5)
