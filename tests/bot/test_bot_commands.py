"""Slash commands for everyone: /ask, /search, /article (with autocomplete), and their errors."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from index.config import Settings, load_settings
from index.models import Document
from index.pipeline import Pipeline
from tests.conftest import DiscordWorld

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"
EPHEMERAL = 1 << 6


def where(w: DiscordWorld, user: int | None = None) -> dict[str, int]:
    return {"user_id": user or w.user, "guild_id": w.guild, "channel_id": w.channel}


def reply_of(inter: Any) -> Any:
    """The message a person ends up seeing: the edited original, else the last followup."""
    if inter.followups:
        return inter.followups[-1]
    return inter.original


async def test_ask_defers_then_edits_the_answer(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await inter.wait_done()
        assert inter.callbacks[0] == {"type": 5, "data": {}}  # deferred, public, in time
        assert not inter.expired and not inter.ephemeral()
        assert inter.edits == 1 and not inter.followups
        msg = inter.original
        assert not msg["flags"] & 128  # no longer "thinking…"
        (embed,) = msg["embeds"]
        assert embed["title"] == BREAD_Q and "Lyon" in embed["description"]
        assert msg["mention_everyone"] is False and msg["mentions"] == []
        definition = next(c for c in fake.synced_commands[None] if c["name"] == "ask")
        options = [(o["name"], o["type"], o.get("required", False)) for o in definition["options"]]
        assert options == [("question", 3, True), ("private", 5, False)]
    assert fake.unexpected == [] and fake.errors == []


async def test_private_ask_is_ephemeral(discord_world: DiscordWorld, start_bot: StartBot) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command(
            "ask", {"question": BREAD_Q, "private": True}, **where(discord_world)
        )
        await inter.wait_done()
        assert inter.callbacks[0]["type"] == 5 and inter.callbacks[0]["data"]["flags"] == EPHEMERAL
        assert inter.ephemeral() and inter.original["flags"] & EPHEMERAL
        assert "Lyon" in inter.original["embeds"][0]["description"]
        # ephemeral messages are not echoed to the channel
        assert not any(
            ev == "MESSAGE_UPDATE" and d["id"] == inter.original["id"] for ev, d in fake.dispatched
        )


async def test_ask_in_a_dm(discord_world: DiscordWorld, start_bot: StartBot) -> None:
    fake = discord_world.fake
    async with start_bot():
        dm = fake.dm_channel(discord_world.user)
        inter = await fake.invoke_command(
            "ask", {"question": BREAD_Q}, user_id=discord_world.user, guild_id=None, channel_id=dm
        )
        await inter.wait_done()
        assert "Lyon" in inter.original["embeds"][0]["description"]


async def test_search_lists_passages_with_wrapped_links(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command(
            "search", {"query": "chess champion title"}, **where(discord_world)
        )
        await inter.wait_done()
        assert inter.deferred() and inter.edits == 1
        content = inter.original["content"]
        lines = content.splitlines()
        assert lines[0] == "**Top passages for** “chess champion title”"
        assert lines[1].startswith("**1. Chess champion keeps her title** — ")
        assert lines[1].endswith(" <https://news.example.com/chess>")
        assert any(line.endswith("(bakery.html)") for line in lines[2:])
        assert not re.search(r"(?<!<)https?://", content)  # no previews
        assert len(content) <= 2000


async def test_ten_concurrent_asks_are_all_answered(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    users = [fake.add_user(f"reader{i}") for i in range(10)]
    for u in users:
        fake.add_member(discord_world.guild, u)
    questions = [BREAD_Q, "When did the volcano erupt?", "Who defended the chess title?"]
    async with start_bot():
        inters = await asyncio.gather(
            *(
                fake.invoke_command(
                    "ask", {"question": questions[i % 3]}, **where(discord_world, u)
                )
                for i, u in enumerate(users)
            )
        )
        await asyncio.gather(*(i.wait_done(timeout=10) for i in inters))
        for i, inter in enumerate(inters):
            assert inter.callbacks[0]["type"] == 5 and not inter.expired
            assert inter.original["embeds"][0]["title"] == questions[i % 3]
        assert len({i.original["id"] for i in inters}) == 10


async def test_article_autocomplete_and_card(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    docs = [
        Document(
            f"https://news.example.com/report-{i}",
            f"Report {i:02d}: " + ("a very long headline about harbour cranes " * 4)[: 30 + i * 4],
            f"Harbour crane number {i} was repaired. It lifts {i} tonnes.",
            None,
            f"2024-02-{i % 28 + 1:02d}",
        )
        for i in range(30)
    ]
    bot_pipeline.add_documents(docs)
    async with start_bot():
        choices = await fake.autocomplete("article", {}, "query", **where(discord_world))
        assert len(choices) == 25
        assert all(1 <= len(c["name"]) <= 100 and len(c["value"]) <= 100 for c in choices)
        typed = await fake.autocomplete(
            "article", {"query": "Report 1"}, "query", **where(discord_world)
        )
        assert typed and all(c["name"].startswith("Report 1") for c in typed[:10])
        fuzzy = await fake.autocomplete(
            "article", {"query": "bakery bread"}, "query", **where(discord_world)
        )
        assert fuzzy and fuzzy[0]["name"].startswith("Bakery wins bread prize")

        target = next(c for c in typed if c["name"].startswith("Report 12"))
        inter = await fake.invoke_command(
            "article", {"query": target["value"]}, **where(discord_world)
        )
        await inter.wait_done()
        # deferred first (matching titles can take seconds at 50,000 articles), public
        assert inter.callback_types == [5] and not inter.ephemeral()
        card = inter.original["embeds"][0]
        assert card["title"].startswith("Report 12: a very long headline")
        fields = {f["name"]: f["value"] for f in card["fields"]}
        assert fields["Source"] == "[news.example.com](https://news.example.com/report-12)"
        assert fields["Published"] == "2024-02-13" and fields["Passages"] == "1"
        assert card["description"] == "Harbour crane number 12 was repaired. It lifts 12 tonnes."

        # typing an exact title without picking a suggestion works too
        inter = await fake.invoke_command(
            "article", {"query": "bakery wins bread prize"}, **where(discord_world)
        )
        await inter.wait_done()
        assert inter.original["embeds"][0]["title"] == "Bakery wins bread prize"


async def test_unknown_article_is_a_clear_ephemeral_reply(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command(
            "article", {"query": "Bakery wins bred price"}, **where(discord_world)
        )
        await inter.wait_done()
        msg = reply_of(inter)  # the public "thinking…" is removed, the error is private
        assert msg["flags"] & EPHEMERAL and inter.original_deleted
        text = msg["content"]
        assert text.startswith("No indexed article matches “Bakery wins bred price”.")
        assert "Did you mean: “Bakery wins bread prize”" in text


async def test_too_long_and_empty_questions_are_refused_privately(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot():
        # the limit is declared on the options (issue 18): Discord stops the member typing
        synced = {c["name"]: c for c in fake.synced_commands[None]}
        for name, option in (("ask", "question"), ("search", "query")):
            (opt,) = [o for o in synced[name]["options"] if o["name"] == option]
            assert (opt["min_length"], opt["max_length"]) == (1, 2000), opt
        with pytest.raises(AssertionError, match="longer than max_length"):
            await fake.invoke_command("ask", {"question": "x" * 5000}, **where(discord_world))

        # a client with an older definition (no max_length): the bot still refuses, privately
        for opt in synced["ask"]["options"]:
            opt.pop("max_length", None)
        inter = await fake.invoke_command("ask", {"question": "x" * 5000}, **where(discord_world))
        await inter.wait_done()
        assert inter.callback_types == [4] and inter.ephemeral()  # refused before deferring
        assert "too long" in inter.original["content"]
        assert "5,000" in inter.original["content"] and "2,000" in inter.original["content"]
        with pytest.raises(AssertionError, match="longer than Discord's 6000"):
            await fake.invoke_command("ask", {"question": "x" * 6001}, **where(discord_world))

        inter = await fake.invoke_command("search", {"query": "   "}, **where(discord_world))
        await inter.wait_done()
        assert inter.ephemeral() and "empty" in inter.original["content"]


async def test_empty_index_gives_a_friendly_message(
    discord_world: DiscordWorld, start_bot: StartBot, tmp_path: Path, fake_embedder: Any
) -> None:
    fake = discord_world.fake
    with Pipeline(load_settings(data_dir=tmp_path / "empty"), fake_embedder) as empty:
        async with start_bot(pipeline=empty):
            inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
            await inter.wait_done()
            msg = reply_of(inter)
            assert msg["flags"] & EPHEMERAL
            assert "nothing is indexed yet" in msg["content"]
            assert inter.original_deleted  # the public "thinking…" does not linger


async def test_ask_cooldown(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    bot_settings.discord.cooldown_rate = 2
    bot_settings.discord.cooldown_seconds = 30
    async with start_bot():
        for _ in range(2):
            ok = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
            await ok.wait_done()
            assert ok.original["embeds"]
        # /search shares the per-user budget; the third question is refused
        inter = await fake.invoke_command("search", {"query": BREAD_Q}, **where(discord_world))
        await inter.wait_done()
        assert inter.callback_types == [4] and inter.ephemeral()
        assert re.fullmatch(
            r"You're asking quickly — please wait \d+ s and ask again\.", inter.original["content"]
        )
        # message questions share it too
        await fake.send_message(
            discord_world.channel, discord_world.user, BREAD_Q, mention_bot=True
        )
        await fake.wait_for(lambda: fake.messages[discord_world.channel], timeout=5)
        assert "asking quickly" in fake.messages[discord_world.channel][0]["content"]


async def test_unexpected_error_in_a_command_is_reported_with_a_ref(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = discord_world.fake

    def boom(query: str, k: int | None = None) -> Any:
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(bot_pipeline, "search", boom)
    async with start_bot():
        with caplog.at_level(logging.ERROR, logger="newsdesk"):
            inter = await fake.invoke_command("search", {"query": BREAD_Q}, **where(discord_world))
            await inter.wait_done()
        msg = reply_of(inter)
        assert msg["flags"] & EPHEMERAL
        m = re.fullmatch(r"Something went wrong \(ref ([0-9A-F]{6})\)\..*", msg["content"])
        assert m, msg["content"]
        assert "secret internals" not in msg["content"]
        assert inter.original_deleted  # not stuck on "thinking…"
        (record,) = [r for r in caplog.records if m.group(1) in r.getMessage()]
        assert "/search" in record.getMessage()
        assert record.exc_info and isinstance(record.exc_info[1], ZeroDivisionError)

        # the bot is still fine afterwards
        monkeypatch.undo()
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await inter.wait_done()
        assert inter.original["embeds"]


async def test_unexpected_error_after_a_private_defer_edits_the_reply(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = discord_world.fake

    def boom(question: str, k: int | None = None) -> Any:
        raise RuntimeError("nope")

    monkeypatch.setattr(bot_pipeline, "ask", boom)
    async with start_bot():
        inter = await fake.invoke_command(
            "ask", {"question": BREAD_Q, "private": True}, **where(discord_world)
        )
        await inter.wait_done()
        assert inter.ephemeral() and inter.edits == 1 and not inter.followups
        assert inter.original["content"].startswith("Something went wrong (ref ")


def test_describe_error_translates_once(caplog: pytest.LogCaptureFixture) -> None:
    from discord import app_commands

    from bot.interactions import describe_error
    from index.errors import InvalidQuestionError

    assert describe_error(InvalidQuestionError("the question is empty"), "/ask") == (
        "the question is empty"
    )
    invoke = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    invoke.original = InvalidQuestionError("wrapped @everyone")
    assert describe_error(invoke, "/ask") == "wrapped @\u200beveryone"
    cooldown = app_commands.CommandOnCooldown(app_commands.Cooldown(1, 10), 3.2)
    assert "please wait 4 s" in describe_error(cooldown, "/ask")
    missing = app_commands.MissingPermissions(["manage_guild"])
    assert "Manage Server" in describe_error(missing, "/add")
    assert "only works in a server" in describe_error(app_commands.NoPrivateMessage(), "/add")
    with caplog.at_level(logging.ERROR, logger="newsdesk"):
        text = describe_error(KeyError("internal detail"), "/ask")
    m = re.fullmatch(r"Something went wrong \(ref ([0-9A-F]{6})\)\..*", text)
    assert m and "internal detail" not in text
    assert m.group(1) in caplog.text and "KeyError" in caplog.text


async def test_autocomplete_is_rate_limited_per_user(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_settings: Settings,
    bot_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A burst of keystrokes (or a script) costs one look-up per window, and the last text is
    still answered; another user is not held up by it (discord.autocomplete_seconds)."""
    fake = discord_world.fake
    bot_settings.discord.autocomplete_seconds = 0.5
    looked_up: list[str] = []
    real = bot_pipeline.match_titles

    def counting(query: str, limit: int = 25) -> Any:
        looked_up.append(query)
        return real(query, limit)

    monkeypatch.setattr(bot_pipeline, "match_titles", counting)
    bob = fake.add_user("bob")
    fake.add_member(discord_world.guild, bob)
    typed = ["bakery wins bread prize"[:n] for n in range(1, 13)]
    async with start_bot():
        answers = await asyncio.gather(
            *(
                fake.autocomplete("article", {"query": t}, "query", **where(discord_world))
                for t in typed
            )
        )
        assert len(looked_up) <= 2, looked_up  # the first keystroke, then the latest
        assert looked_up[-1] == typed[-1]
        assert answers[-1][0]["name"].startswith("Bakery wins bread prize")
        assert all(len(a) <= 25 for a in answers)
        looked_up.clear()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        other = await fake.autocomplete(
            "article", {"query": "chess"}, "query", **where(discord_world, bob)
        )
        assert other[0]["name"].startswith("Chess champion") and looked_up == ["chess"]
        assert loop.time() - t0 < 0.4  # not behind alice's window
