"""/scope set | clear | show on the fake Discord: admins only, one-line errors, bindings that
survive a restart, and questions in a bound channel (and its threads, forum posts too) answered
only from its scope."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from index.config import ScopeSettings, Settings
from index.models import Document
from index.pipeline import Pipeline
from tests.conftest import DiscordWorld
from tests.fakes.discord import CommandNotAvailable

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

EPHEMERAL = 1 << 6
MANAGE_GUILD = 1 << 5
BREAD_Q = "Who won the national bread prize?"
COMET = Document(
    "/desk/science/comet.txt",
    "Comet seen over Tern",
    "Astronomers at the Tern Observatory saw a bright comet on Friday. "
    "The comet will return in the year 2061, they said.",
    tags=("science",),
)


@pytest.fixture
def scoped_pipeline(bot_pipeline: Pipeline) -> Pipeline:
    bot_pipeline.add_documents([COMET])
    return bot_pipeline


def admin_at(w: DiscordWorld, channel: int | None = None) -> dict[str, Any]:
    return {"user_id": w.admin, "guild_id": w.guild, "channel_id": channel or w.channel}


def reply_text(inter: Any) -> str:
    msg = inter.followups[-1] if inter.followups else inter.original
    assert msg is not None and msg["flags"] & EPHEMERAL, (inter, msg)
    return str(msg["content"])


async def answer_in(w: DiscordWorld, channel: int, question: str = BREAD_Q) -> str:
    """Ask by mention in ``channel``; the answer embed as one text (title, description, fields,
    footer)."""
    fake = w.fake
    before = len(fake.messages[channel])
    await fake.send_message(channel, w.user, question, mention_bot=True)
    await fake.wait_for(lambda: len(fake.messages[channel]) > before, timeout=10)
    msg = fake.messages[channel][-1]
    parts = [msg.get("content") or ""]
    for e in msg.get("embeds", []):
        parts += [e.get("title", ""), e.get("description", ""), str(e.get("footer", ""))]
        parts += [f"{f['name']} {f['value']}" for f in e.get("fields", [])]
    return "\n".join(parts)


async def scope(
    w: DiscordWorld, sub: str, options: dict[str, object], user: int | None = None
) -> Any:
    where = admin_at(w)
    if user is not None:
        where["user_id"] = user
    inter = await w.fake.invoke_command(f"scope {sub}", options, **where)
    await inter.wait_done()
    return inter


async def test_scope_is_an_admin_command(discord_world: DiscordWorld, start_bot: StartBot) -> None:
    fake = discord_world.fake
    async with start_bot():
        synced = {c["name"]: c for c in fake.synced_commands[None]}
        cmd = synced["scope"]
        assert int(cmd["default_member_permissions"]) == MANAGE_GUILD
        assert cmd["contexts"] == [0]
        assert {o["name"] for o in cmd["options"]} == {"set", "clear", "show"}
        with pytest.raises(CommandNotAvailable):
            await fake.invoke_command(
                "scope show",
                {},
                user_id=discord_world.user,
                guild_id=discord_world.guild,
                channel_id=discord_world.channel,
            )
        # a server lets everyone see it: the bot's own check refuses plain members
        cmd["default_member_permissions"] = None
        inter = await scope(
            discord_world,
            "set",
            {"channel": discord_world.channel, "tags": "science"},
            user=discord_world.user,
        )
        assert "Manage Server" in reply_text(inter)
    # nothing was bound
    async with start_bot() as bot:
        assert bot.scopes.bindings.all() == []


async def test_bound_channel_and_its_threads_answer_only_from_the_scope(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    scoped_pipeline: Pipeline,
    bot_settings: Settings,
) -> None:
    w, fake = discord_world, discord_world.fake
    science = fake.add_channel(w.guild, "science")
    async with start_bot():
        # unbound: the bakery answers
        assert "Lyon" in await answer_in(w, w.channel)
        inter = await scope(w, "set", {"channel": science, "tags": "Science"})
        text = reply_text(inter)
        assert text.startswith("✅") and f"<#{science}>" in text and "tags: science" in text
        assert "1 article" in text
        scoped = await answer_in(w, science)
        assert "Lyon" not in scoped and "Bakery" not in scoped and "bakery" not in scoped
        # a thread of the bound channel follows it; the unbound channel is unchanged
        thread = fake.add_thread(science, "bread talk", owner_id=w.user)
        in_thread = await answer_in(w, thread)
        assert "Lyon" not in in_thread and "Bakery" not in in_thread
        assert "Comet" in await answer_in(w, thread, "When will the comet return?")
        assert "Lyon" in await answer_in(w, w.channel)
        # /search in the bound channel lists only scoped passages
        inter = await fake.invoke_command(
            "search",
            {"query": "bread prize Lyon"},
            user_id=w.user,
            guild_id=w.guild,
            channel_id=science,
        )
        await inter.wait_done()
        content = (inter.followups[-1] if inter.followups else inter.original)["content"]
        assert "Bakery wins" not in content and "Comet seen over Tern" in content


async def test_forum_posts_follow_their_forum(
    discord_world: DiscordWorld, start_bot: StartBot, scoped_pipeline: Pipeline
) -> None:
    w, fake = discord_world, discord_world.fake
    forum = fake.add_channel(w.guild, "help", kind=15)
    async with start_bot():
        inter = await scope(w, "set", {"channel": forum, "tags": "science"})
        assert reply_text(inter).startswith("✅")
        post = fake.add_thread(forum, "Who won the bread prize?", owner_id=w.user)
        answer = await answer_in(w, post)
        assert "Lyon" not in answer and "Bakery" not in answer


async def test_set_refuses_bad_input_with_one_line(
    discord_world: DiscordWorld, start_bot: StartBot, scoped_pipeline: Pipeline
) -> None:
    w = discord_world
    async with start_bot() as bot:
        for options, expected in (
            ({}, "give a scope name from the config file, or feeds, tags"),
            ({"tags": "#news"}, "bad tag"),
            ({"feeds": "No Such Feed"}, "no subscription 'No Such Feed'"),
            ({"articles": "No such title; Comet seen over Tern"}, "no article"),
            ({"name": "nope"}, "no scope named 'nope'"),
        ):
            inter = await scope(w, "set", {"channel": w.channel, **options})
            text = reply_text(inter)
            assert expected in text and "\n" not in text, text
            assert text.startswith("Nothing was bound"), text
        assert bot.scopes.bindings.all() == []
        inter = await scope(w, "clear", {"channel": w.channel})
        assert "has no scope" in reply_text(inter)


async def test_bindings_survive_a_restart_and_clear_restores_everything(
    discord_world: DiscordWorld, start_bot: StartBot, scoped_pipeline: Pipeline
) -> None:
    w = discord_world
    async with start_bot():
        inter = await scope(
            w, "set", {"channel": w.channel, "articles": "Comet seen over Tern", "name": "desk"}
        )
        assert reply_text(inter).startswith("✅")
    async with start_bot():  # a new process: the binding is read back from community.sqlite3
        assert "Lyon" not in await answer_in(w, w.channel)
        inter = await scope(w, "show", {})
        text = reply_text(inter)
        assert f"<#{w.channel}>" in text and "Comet seen over Tern" in text
        inter = await scope(w, "show", {"channel": w.channel})
        assert "answered only from **desk**" in reply_text(inter)
        inter = await scope(w, "clear", {"channel": w.channel})
        assert "answered from every article again" in reply_text(inter)
        assert "Lyon" in await answer_in(w, w.channel)
        inter = await scope(w, "show", {})
        assert "No channel has a scope" in reply_text(inter)


async def test_config_scopes_bind_channels_and_a_runtime_binding_wins(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    scoped_pipeline: Pipeline,
    bot_settings: Settings,
) -> None:
    w = discord_world
    bot_settings.scopes = [ScopeSettings(name="science", channels=[w.channel], tags=["science"])]
    async with start_bot():
        assert "Lyon" not in await answer_in(w, w.channel)
        inter = await scope(w, "show", {})
        assert "**science**" in reply_text(inter) and "(config file)" in reply_text(inter)
        inter = await scope(w, "set", {"channel": w.channel, "articles": "Bakery wins bread prize"})
        assert reply_text(inter).startswith("✅")
        assert "Lyon" in await answer_in(w, w.channel)
        inter = await scope(w, "clear", {"channel": w.channel})
        assert "config file still binds" in reply_text(inter)
        assert "Lyon" not in await answer_in(w, w.channel)
        # naming the config scope binds another channel to it
        other = w.fake.add_channel(w.guild, "other")
        inter = await scope(w, "set", {"channel": other, "name": "science"})
        assert "**science**" in reply_text(inter)
        assert "Lyon" not in await answer_in(w, other)


async def test_brief_in_a_bound_channel_lists_only_its_articles(
    discord_world: DiscordWorld, start_bot: StartBot, scoped_pipeline: Pipeline
) -> None:
    w, fake = discord_world, discord_world.fake
    science = fake.add_channel(w.guild, "science")
    async with start_bot():
        inter = await scope(w, "set", {"channel": science, "tags": "science"})
        assert reply_text(inter).startswith("✅")

        async def brief(channel: int) -> str:
            inter = await fake.invoke_command(
                "brief", {}, user_id=w.user, guild_id=w.guild, channel_id=channel
            )
            await inter.wait_done()
            msg = inter.followups[-1] if inter.followups else inter.original
            return "\n".join(e.get("description", "") for e in msg["embeds"])

        scoped = await brief(science)
        assert scoped.startswith("1 article, newest first")
        assert "Comet seen over Tern" in scoped and "Bakery" not in scoped
        everything = await brief(w.channel)
        assert everything.startswith("4 articles") and "Bakery" in everything
