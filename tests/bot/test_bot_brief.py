"""``/brief`` and ``/article summary:True`` on the fake Discord (bot/cogs/brief.py,
bot/formatting_brief.py), and the fake's refusal of embeds over Discord's limits."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import discord
import pytest

from bot import formatting_brief as fb
from bot.formatting import embed_size, ulen
from index.models import Document
from index.pipeline import Pipeline
from index.search.brief import Brief, BriefItem
from tests.conftest import DiscordWorld

StartBot = Callable[..., AbstractAsyncContextManager[Any]]
EPHEMERAL = 1 << 6


def where(w: DiscordWorld) -> dict[str, int]:
    return {"user_id": w.user, "guild_id": w.guild, "channel_id": w.channel}


def within_limits(embeds: list[dict[str, Any]]) -> None:
    """Discord's limits, counted in UTF-16 units as Discord's clients count them."""
    assert 1 <= len(embeds) <= 10
    total = 0
    for e in embeds:
        assert ulen(e.get("title") or "") <= 256
        assert ulen(e.get("description") or "") <= 4096
        assert len(e.get("fields") or []) <= 25
        for f in e.get("fields") or []:
            assert ulen(f["name"]) <= 256 and ulen(f["value"]) <= 1024
        total += sum(ulen(e.get(k) or "") for k in ("title", "description"))
        total += sum(ulen(f["name"]) + ulen(f["value"]) for f in e.get("fields") or [])
        total += ulen((e.get("footer") or {}).get("text") or "")
    assert total <= 6000, total


def many_docs(n: int) -> list[Document]:
    """``n`` dated articles with long titles, long links, emoji and long sentences."""
    long = "🚢 harbour cranes and the long night shift of the Valmare dock workers " * 6
    return [
        Document(
            f"https://news.example.com/{'very-long-path-' * 12}{i}",
            f"Story {i:02d}: {long}"[:300],
            (
                f"Crane {i} was repaired after a storm. {long} and crane {i} lifts {i} tonnes. "
                f"The dock of Valmare reopened on day {i}, the port authority said on Monday.\n\n"
                f"Workers in Valmare cheered when crane {i} lifted its first container again."
            ),
            None,
            f"2026-10-{i % 28 + 1:02d}T{i % 24:02d}:00:00+00:00",
        )
        for i in range(n)
    ]


async def test_brief_lists_the_newest_articles_within_discord_limits(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    bot_pipeline.add_documents(many_docs(40))
    async with start_bot():
        synced = {c["name"]: c for c in fake.synced_commands[None]}
        options = {o["name"]: o for o in synced["brief"]["options"]}
        assert (options["since"]["type"], options["since"]["max_length"]) == (3, 40)
        assert (options["limit"]["min_value"], options["limit"]["max_value"]) == (1, 10)
        assert synced["brief"]["default_member_permissions"] is None  # for everyone

        inter = await fake.invoke_command("brief", {}, **where(discord_world))
        await inter.wait_done()
        assert inter.callback_types == [5] and not inter.ephemeral()  # deferred, public
        msg = inter.original
        embeds = msg["embeds"]
        within_limits(embeds)
        assert msg["mention_everyone"] is False and msg["mentions"] == []
        assert embeds[0]["title"] == "📰 News brief: the 10 newest articles"
        text = "\n\n".join(e["description"] for e in embeds)
        assert text.startswith("10 of 43 articles, newest first\n\n**1.** ")
        # the two undated conftest articles count from when they were indexed (now): first;
        # then the dated stories, newest first (the conftest's chess story, 2024, is older)
        heads = re.findall(r"^\*\*(\d+)\.\*\* (.*)$", text, re.M)
        assert [int(n) for n, _ in heads] == list(range(1, 11))
        assert all("· indexed 20" in h for _, h in heads[:2])
        assert "Story 27:" in heads[2][1] and heads[2][1].endswith(" · 2026-10-28")
        assert "Story 26:" in heads[3][1] and heads[3][1].endswith(" · 2026-10-27")
        quotes = [line for line in text.splitlines() if line.startswith("> ")]
        assert len(quotes) == 10
        assert embeds[-1]["footer"]["text"].startswith("Each article's most central sentence")

        inter = await fake.invoke_command(
            "brief", {"since": "2026-10-27", "limit": 3}, **where(discord_world)
        )
        await inter.wait_done()
        (embed,) = inter.original["embeds"]
        assert embed["title"] == "📰 News brief: the 3 newest articles"
        assert embed["description"].startswith(
            "3 of 4 articles since <t:1793059200:f>, newest first\n\n"
        )
    assert fake.unexpected == [] and fake.errors == []


async def test_brief_quotes_are_the_central_sentences(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command("brief", {"limit": 3}, **where(discord_world))
        await inter.wait_done()
        (embed,) = inter.original["embeds"]
    brief = bot_pipeline.brief(limit=3)
    quotes = [line[2:] for line in embed["description"].splitlines() if line.startswith("> ")]
    assert quotes == [i.sentence for i in brief.items]  # short, plain: shown as they are
    titles = re.findall(r"^\*\*\d\.\*\* \*\*(.*?)\*\*", embed["description"], re.M)
    chess = "[Chess champion keeps her title](https://news.example.com/chess) · 2024-03-05"
    assert chess in embed["description"] and len(titles) == 2  # the other two have no link


async def test_brief_refuses_a_bad_window_and_says_when_nothing_is_new(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command("brief", {"since": "yesterday"}, **where(discord_world))
        await inter.wait_done()
        assert inter.callback_types == [4] and inter.ephemeral()  # refused before deferring
        text = inter.original["content"]
        assert "since" in text and "24h" in text and "2026-11-01" in text

        inter = await fake.invoke_command("brief", {"since": "2099-01-01"}, **where(discord_world))
        await inter.wait_done()
        (embed,) = inter.original["embeds"]
        assert embed["description"].startswith("No articles since <t:4070908800:f>")


async def test_article_summary_shows_three_central_sentences(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    doc = many_docs(1)[0]
    bot_pipeline.add_documents([doc])
    async with start_bot():
        definition = next(c for c in fake.synced_commands[None] if c["name"] == "article")
        options = [(o["name"], o["type"], o.get("required", False)) for o in definition["options"]]
        assert options == [("query", 3, True), ("summary", 5, False)]

        inter = await fake.invoke_command(
            "article", {"query": doc.article_id, "summary": True}, **where(discord_world)
        )
        await inter.wait_done()
        (card,) = inter.original["embeds"]
        within_limits([card])
        lines = card["description"].splitlines()
        assert lines[0].startswith("**Summary** — its 3 most central sentences, verbatim")
        quoted = [line[2:] for line in lines[1:]]
        assert len(quoted) == 3 and all(line.startswith("> ") for line in lines[1:])
        told = bot_pipeline.summarize(doc.article_id, 3)
        starts = [s.start for s in told.sentences]
        assert starts == sorted(starts)
        for shown, s in zip(quoted, told.sentences, strict=True):
            assert s.text == doc.text[s.start : s.end]
            plain = shown.replace("\\", "").rstrip(" …")
            assert " ".join(s.text.split()).startswith(plain)
        assert {f["name"] for f in card["fields"]} == {"Source", "Published", "Passages"}
        assert card["url"].startswith("https://news.example.com/very-long-path-")

        # without the option: the card as before (the opening paragraph)
        inter = await fake.invoke_command(
            "article", {"query": doc.article_id}, **where(discord_world)
        )
        await inter.wait_done()
        assert inter.original["embeds"][0]["description"].startswith("Crane 0 was repaired")


def test_brief_embeds_fit_whatever_the_articles() -> None:
    """Pure: ten articles of the longest titles, links and sentences (astral characters
    count twice in UTF-16) still make one message within every limit."""
    huge = "𝕳" * 900 + " a sentence of little words " * 40
    items = [
        BriefItem(
            id=f"{i:012x}",
            title="𝕿itle " * 100,
            source="https://news.example.com/" + "p" * 360,
            url=None,
            published="2026-11-30",
            indexed="2026-12-01T00:00:00+00:00",
            sentence=huge + "@everyone [x](https://evil.example.com)",
        )
        for i in range(10)
    ]
    since = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    embeds = fb.brief_embeds(Brief(items, 10_000, since))
    within_limits([e.to_dict() for e in embeds])  # type: ignore[misc]
    assert sum(map(embed_size, embeds)) <= 6000
    text = "\n".join(e.description or "" for e in embeds)
    assert text.count("\n> ") == 10 and "@everyone" not in text and "](https://evil" not in text
    assert "10 of 10,000 articles since <t:1793491200:f>, newest first" in text
    assert fb.brief_embeds(Brief([], 0))[0].description == "Nothing is indexed yet."


async def test_the_fake_rejects_embeds_over_discords_limits(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        channel = bot.get_channel(discord_world.channel)
        assert isinstance(channel, discord.TextChannel)
        bad: list[list[discord.Embed]] = [
            [discord.Embed(title="t" * 257)],
            [discord.Embed(description="d" * 4097)],
            [discord.Embed().add_field(name="n", value="v" * 1025)],
            [discord.Embed().add_field(name="n" * 257, value="v")],
            [_with_fields(26)],
            [discord.Embed(description="d" * 3001), discord.Embed(description="d" * 3000)],
            [discord.Embed(description="d").set_footer(text="f" * 2049)],
        ]
        for embeds in bad:
            with pytest.raises(discord.HTTPException) as err:
                await channel.send(embeds=embeds)
            assert err.value.status == 400 and err.value.code == 50035, embeds
        ok = [discord.Embed(description="d" * 3000), discord.Embed(description="d" * 3000)]
        await channel.send(embeds=ok)  # exactly 6,000 is allowed
        await channel.send(embed=_with_fields(25))


def _with_fields(n: int) -> discord.Embed:
    embed = discord.Embed(title="fields")
    for i in range(n):
        embed.add_field(name=f"f{i}", value="v")
    return embed
