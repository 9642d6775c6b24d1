"""/subscribe, /unsubscribe, /subscriptions, background polling and announcements, on the fake
Discord with a loopback feed whose entries change between polls."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import discord
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import formatting as fmt
from bot import formatting_admin as fmt_admin
from index.config import FeedSubscription, Settings
from index.errors import NewsdeskError
from index.feeds.models import Announcement, Subscription, SubscriptionStatus
from tests.bot.test_bot_admin import (
    admin_at,
    final_content,
    private_reply,
    stranger_server,
    user_at,
)
from tests.bot.test_formatting import HOSTILE, assert_embed_limits, assert_safe, embed_texts
from tests.conftest import DiscordWorld
from tests.fakes.discord import CommandNotAvailable
from tests.fakes.feeds import FeedSite
from tests.fakes.http import LoopbackServer
from tests.feeds.test_sync import BRIDGE, FERRY, LIBRARY, MARKET

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

HOSTILE_TITLE = "Ferry @everyone <@123> **free** tickets"


@pytest.fixture
def srv(bot_settings: Settings) -> Iterator[LoopbackServer]:
    bot_settings.fetch.allow_hosts = ["127.0.0.1:*"]
    bot_settings.fetch.timeout = 3.0
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def site(srv: LoopbackServer) -> FeedSite:
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    site.publish("/library", "Library reopens", LIBRARY)
    return site


def cog_of(bot: Any) -> Any:
    cog = bot.get_cog("SubscriptionsCog")
    assert cog is not None
    return cog


async def manual_cog(bot: Any) -> Any:
    """The cog with its background poller stopped: rounds run only when the test asks (no
    race between the poller and the test's own ``poll_now``)."""
    cog = cog_of(bot)
    await cog.stop_polling()
    return cog


def later(cog: Any, hours: float = 1) -> None:
    """Move the engine's clock forward: every subscription becomes due."""
    shift = hours * 3600 + (cog.engine.clock() - time.time())
    cog.engine.clock = lambda: time.time() + shift


def news_messages(fake: Any, channel: int) -> list[dict[str, Any]]:
    return [m for m in fake.messages[channel] if m["embeds"]]


async def test_subscribe_then_new_articles_are_announced_once_without_pings(
    discord_world: DiscordWorld, start_bot: StartBot, site: FeedSite, srv: LoopbackServer
) -> None:
    fake = discord_world.fake
    news = fake.add_channel(discord_world.guild, "news")
    async with start_bot() as bot:
        cog = await manual_cog(bot)
        inter = await fake.invoke_command(
            "subscribe", {"url": site.url, "channel": news}, **admin_at(discord_world)
        )
        text = await final_content(fake, inter)
        assert text == (
            f"✅ Subscribed to Valmare Gazette (<{site.url}>), checked every 30 min: 2 articles "
            f"added, 0 updated, 0 unchanged. New articles will be announced in <#{news}>."
        )
        assert inter.original["mentions"] == [] and not inter.original["mention_everyone"]
        await cog.poll_now()
        assert news_messages(fake, news) == []  # what was there at subscription is not news

        site.publish("/market", "Market opens on Sundays", MARKET)
        site.publish("/ferry", HOSTILE_TITLE, FERRY)
        later(cog)
        results = await cog.poll_now()
        assert [(r.added, r.announced) for r in results] == [(2, 2)]
        (msg,) = news_messages(fake, news)
        assert msg["mentions"] == [] and msg["mention_roles"] == []
        assert not msg["mention_everyone"]
        ferry, market = msg["embeds"]
        assert market["title"] == "Market opens on Sundays"
        assert market["url"] == srv.url("/market")
        assert market["description"].startswith("> ") and market["description"][2:] in MARKET
        assert market["footer"]["text"].startswith("New from Valmare Gazette · published 2024-09-")
        assert ferry["url"] == srv.url("/ferry")
        for e in (ferry, market):
            for value in (e["title"], e["description"], e["footer"]["text"]):
                assert_safe(value, {srv.url("/ferry"), srv.url("/market")})
        posts = [
            body
            for method, path, body in fake.requests
            if method == "POST" and path == f"/channels/{news}/messages"
        ]
        assert [p["allowed_mentions"] for p in posts] == [{"parse": []}]

        later(cog, 2)
        await cog.poll_now()  # polled again (unchanged): nothing announced twice
        later(cog, 3)
        site.edit("/market", title="Market opens on Sundays and holidays", text=MARKET + " More.")
        results = await cog.poll_now()
        assert results[0].updated == 1
        assert len(news_messages(fake, news)) == 1  # an edit is not news

        inter = await fake.invoke_command("subscriptions", **admin_at(discord_world))
        await inter.wait_done()
        assert inter.ephemeral()
        embed = inter.original["embeds"][0]
        assert embed["title"] == "Subscriptions" and embed["footer"]["text"] == "1 subscription"
        assert f"📰 [Valmare Gazette]({site.url})" in embed["description"]
        assert (
            f"every 30 min · 4 articles · announced in <#{news}> · /subscribe"
            in (embed["description"])
        )
        assert "✅ last success <t:" in embed["description"]

        ask = await fake.invoke_command(
            "ask",
            {"question": "Which days will the covered market open?"},
            **user_at(discord_world),
        )
        await ask.wait_done()
        card = ask.original["embeds"][0]["description"]
        assert "Market opens on Sundays" in card and " · published 2024-09-" in card


async def test_many_new_articles_arrive_as_one_digest(
    discord_world: DiscordWorld, start_bot: StartBot, site: FeedSite, srv: LoopbackServer
) -> None:
    fake = discord_world.fake
    news = fake.add_channel(discord_world.guild, "news")
    async with start_bot() as bot:
        cog = await manual_cog(bot)
        inter = await fake.invoke_command(
            "subscribe",
            {"url": site.url, "channel": news, "interval": 5},
            **admin_at(discord_world),
        )
        assert "checked every 5 min" in await final_content(fake, inter)
        for i in range(12):
            site.publish(f"/story{i}", f"Story number {i} @here", f"{MARKET} Story {i} ends.")
        later(cog)
        await cog.poll_now()
        (msg,) = news_messages(fake, news)
        assert not msg["mention_everyone"] and msg["mentions"] == []
        (digest,) = msg["embeds"]
        assert digest["title"] == "📰 12 new articles from Valmare Gazette"
        lines = digest["description"].split("\n")
        assert len(lines) == 12
        assert lines[0] == f"• [Story number 11 @\u200bhere]({srv.url('/story11')}) · 2024-09-15"
        await cog.poll_now()
        assert len(news_messages(fake, news)) == 1


async def test_the_bot_polls_in_the_background_and_shows_failures(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_settings: Settings,
    site: FeedSite,
) -> None:
    fake = discord_world.fake
    news = fake.add_channel(discord_world.guild, "news")
    bot_settings.feeds = [FeedSubscription(url=site.url, interval=1, channel=news)]
    async with start_bot() as bot:
        cog = cog_of(bot)
        # the configured feed is synced at start, by the poller itself
        await fake.wait_for(lambda: cog.rounds >= 1, timeout=10, description="first round")
        statuses = await bot.run_sync(cog.engine.statuses)
        assert [(s.rounds, s.articles) for s in statuses] == [(1, 2)]
        cog.tick, cog.min_wait = 0.2, 0.05
        cog.wake()
        site.publish("/market", "Market opens on Sundays", MARKET)
        later(cog)
        await fake.wait_for(lambda: news_messages(fake, news), timeout=10, description="news")
        assert news_messages(fake, news)[0]["embeds"][0]["title"] == "Market opens on Sundays"

        site.status = 500
        later(cog, 2)
        rounds = cog.rounds
        await fake.wait_for(lambda: cog.rounds > rounds + 1, timeout=10, description="rounds")
        inter = await fake.invoke_command("subscriptions", **admin_at(discord_world))
        await inter.wait_done()
        description = inter.original["embeds"][0]["description"]
        assert "⚠️ failing since <t:" in description
        assert "(1 in a row): HTTP 500 Internal Server Error · next try <t:" in description
        assert "config file" in description and "3 articles" in description

        # a configured feed is not offered for /unsubscribe, and typed in it is refused
        choices = await fake.autocomplete(
            "unsubscribe", {"feed": ""}, "feed", **admin_at(discord_world)
        )
        assert choices == []
        inter = await fake.invoke_command(
            "unsubscribe", {"feed": site.url}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert "declared in the config file" in private_reply(inter)


async def test_unsubscribe_permissions_and_bad_input(
    discord_world: DiscordWorld, start_bot: StartBot, site: FeedSite, srv: LoopbackServer
) -> None:
    fake = discord_world.fake
    srv.route("/page.html", "<html><head><title>Page</title></head><body><p>Hi.</p></body>")
    async with start_bot() as bot:
        with pytest.raises(CommandNotAvailable):
            await fake.invoke_command("subscribe", {"url": site.url}, **user_at(discord_world))
        for cmd in fake.synced_commands[None]:  # a server opens the command to everyone
            if cmd["name"] == "subscribe":
                cmd["default_member_permissions"] = None
        inter = await fake.invoke_command("subscribe", {"url": site.url}, **user_at(discord_world))
        await inter.wait_done()
        assert "Manage Server" in private_reply(inter)

        inter = await fake.invoke_command(
            "subscribe", {"url": "file:///etc/passwd"}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert inter.callback_types == [4]
        assert private_reply(inter).startswith("Give the http(s) address")
        inter = await fake.invoke_command(
            "subscribe", {"url": srv.url("/page.html")}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert "not an RSS or Atom feed (the address serves a web page)" in private_reply(inter)
        assert await bot.run_sync(cog_of(bot).engine.statuses) == []

        inter = await fake.invoke_command("subscribe", {"url": site.url}, **admin_at(discord_world))
        await final_content(fake, inter)
        inter = await fake.invoke_command("subscribe", {"url": site.url}, **admin_at(discord_world))
        await inter.wait_done()
        assert "already subscribed" in private_reply(inter)

        choices = await fake.autocomplete(
            "unsubscribe", {"feed": "gazette"}, "feed", **admin_at(discord_world)
        )
        assert [c["name"] for c in choices] == [
            f"Valmare Gazette · {site.url.removeprefix('http://')}"
        ]
        inter = await fake.invoke_command(
            "unsubscribe", {"feed": choices[0]["value"]}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert inter.original["content"] == (
            f"🗑️ Unsubscribed from Valmare Gazette (<{site.url}>). Its articles stay in the "
            "index (2 articles; `/remove` deletes one)."
        )
        assert await bot.run_sync(cog_of(bot).engine.statuses) == []
        inter = await fake.invoke_command(
            "unsubscribe", {"feed": choices[0]["value"]}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert "no such subscription" in private_reply(inter)


async def test_announcements_to_a_deleted_channel_are_dropped_not_retried_forever(
    discord_world: DiscordWorld, start_bot: StartBot, site: FeedSite
) -> None:
    fake = discord_world.fake
    news = fake.add_channel(discord_world.guild, "news")
    async with start_bot() as bot:
        cog = await manual_cog(bot)
        inter = await fake.invoke_command(
            "subscribe", {"url": site.url, "channel": news}, **admin_at(discord_world)
        )
        await final_content(fake, inter)
        fake.delete_channel(news)
        site.publish("/market", "Market opens on Sundays", MARKET)
        later(cog)
        await fake.wait_for(lambda: bot.get_channel(news) is None, timeout=5)
        results = await cog.poll_now()
        assert results[0].announced == 1
        assert await bot.run_sync(cog.engine.pending_announcements) == []


# -- pure formatting of announcements and statuses ------------------------------------------------


def item(i: int, title: str = "Title", summary: str | None = "A summary.", **kw: Any) -> Any:
    base = {
        "id": i,
        "channel": 1,
        "article_id": f"a{i}",
        "origin": "Gazette",
        "title": title,
        "link": f"https://news.example.com/{i}",
        "summary": summary,
        "published": "2024-09-03T08:00:00+00:00",
    }
    base.update(kw)
    return Announcement(**base)


hostile = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30)), max_size=40).map(
    "".join
)
long_hostile = st.builds(lambda part, n: part * n, hostile, st.integers(1, 80))


@given(
    st.lists(
        st.tuples(long_hostile, st.one_of(st.none(), long_hostile), long_hostile), max_size=30
    ),
    st.integers(1, 50),
)
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_announcements_fit_discord_limits_and_never_ping(
    raw: list[tuple[str, str | None, str]], max_each: int
) -> None:
    items = [
        item(i, title, summary, origin=origin, link=f"https://news.example.com/{i}")
        for i, (title, summary, origin) in enumerate(raw)
    ]
    messages = fmt_admin.announcement_messages(items, max_each)
    carried = [i for _, ids in messages for i in ids]
    assert sorted(carried) == [i.id for i in items]  # every article marked once, when sent
    links = {i.link or "" for i in items}
    for embeds, _ids in messages:
        assert 1 <= len(embeds) <= fmt.EMBEDS_PER_MESSAGE
        assert sum(fmt.embed_size(e) for e in embeds) <= fmt.EMBED_TOTAL_LIMIT
        for e in embeds:
            assert_embed_limits(e)
            for text in embed_texts(e):
                # footers are shown as plain text: no Markdown, so only mentions matter there
                assert_safe(text, links, markdown=text != e.footer.text)


def test_digest_lists_titles_and_counts_the_rest() -> None:
    items = [item(i, f"Story {i}") for i in range(130)]
    messages = fmt_admin.announcement_messages(items, 10)
    embeds = [e for m, _ in messages for e in m]
    assert embeds[0].title == "📰 130 new articles from Gazette"
    text = "\n".join(e.description or "" for e in embeds)
    assert "• [Story 0](https://news.example.com/0) · 2024-09-03" in text
    assert text.endswith("…and 30 more") and "Story 99" in text and "Story 100" not in text
    assert [ids for _, ids in messages][-1] == list(range(130))
    few = fmt_admin.announcement_messages(items[:3], 10)
    assert len(few) == 1 and [e.title for e in few[0][0]] == ["Story 0", "Story 1", "Story 2"]
    mixed = [item(1), item(2, origin="Other"), item(3, link=None, title="No link")]
    (digest,) = [e for m, _ in fmt_admin.announcement_messages(mixed, 2) for e in m]
    assert digest.title == "📰 3 new articles from your subscriptions"
    assert "• **No link** · 2024-09-03" in (digest.description or "")


def status(i: int, **kw: Any) -> SubscriptionStatus:
    sub = Subscription("feed", f"https://news.example.com/feed{i}.xml", 30, None, "command")
    return SubscriptionStatus(i, sub, "2024-09-01T00:00:00+00:00", **kw)


def test_subscriptions_embed_stays_within_limits() -> None:
    many = [
        status(
            i,
            title="@everyone " * 30,
            failures=2,
            last_error="x" * 500,
            last_error_at="2024-09-02T00:00:00+00:00",
            last_warning="<@123> " * 60,
            next_due=1_800_000_000.0,
        )
        for i in range(60)
    ]
    e = fmt_admin.subscriptions_embed(many)
    assert_embed_limits(e)
    assert (e.description or "").endswith("(`newsdesk subscriptions` lists them all)")
    assert "@everyone" not in (e.description or "") and "<@123>" not in (e.description or "")
    empty = fmt_admin.subscriptions_embed([])
    assert "No subscriptions yet" in (empty.description or "")
    folder = SubscriptionStatus(
        1,
        Subscription("folder", "/srv/private/articles", 5, 42, "config"),
        "2024-09-01T00:00:00+00:00",
        articles=1,
    )
    text = fmt_admin.subscriptions_embed([folder]).description or ""
    assert text.startswith("📁 **articles**\nevery 5 min · 1 article · announced in <#42>")
    assert "/srv/private" not in text


def test_announcement_embed_layout() -> None:
    e = fmt_admin.announcement_embed(item(7, "Harbour cranes sold", "The port sold its cranes."))
    assert e.title == "Harbour cranes sold" and e.url == "https://news.example.com/7"
    assert e.description == "> The port sold its cranes."
    assert e.footer.text == "New from Gazette · published 2024-09-03"
    bare = fmt_admin.announcement_embed(
        item(8, summary=None, link="javascript:alert(1)", published=None)
    )
    assert bare.url is None and bare.description is None
    assert bare.footer.text == "New from Gazette"
    assert isinstance(bare, discord.Embed)


async def test_the_poller_survives_errors(
    discord_world: DiscordWorld, start_bot: StartBot, site: FeedSite
) -> None:
    async with start_bot() as bot:
        cog = cog_of(bot)
        calls: list[str] = []

        def flaky() -> list[Any]:
            calls.append("run")
            if len(calls) == 1:
                raise RuntimeError("a bug in one round")
            return []

        cog.engine.run_due = flaky
        cog.tick = cog.min_wait = 0.05
        cog.wake()
        await discord_world.fake.wait_for(lambda: len(calls) >= 3, timeout=10)
        assert cog._task is not None and not cog._task.done()


async def test_subscriptions_belong_to_the_server_that_made_them(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_settings: Settings,
    site: FeedSite,
    srv: LoopbackServer,
) -> None:
    """Two admin servers share the index, not their subscriptions: each lists and removes
    only its own (their feeds, channels and errors), and sees the operator's."""
    fake = discord_world.fake
    home = admin_at(discord_world)
    other = stranger_server(discord_world)
    bot_settings.discord.admin_guild_ids = [discord_world.guild, other["guild_id"]]
    theirs = FeedSite(srv, path="/theirs.xml", title="Their Secret Feed")
    theirs.publish("/market", "Market opens on Sundays", MARKET)
    their_news = fake.add_channel(other["guild_id"], "their-news")
    async with start_bot() as bot:
        cog = await manual_cog(bot)
        await bot.run_sync(cog.engine.subscribe, "feed", srv.url("/feed.xml"))  # the operator's
        site.publish("/ferry", "Ferry timetable changes", FERRY)
        inter = await fake.invoke_command(
            "subscribe", {"url": theirs.url, "channel": their_news}, **other
        )
        await final_content(fake, inter)

        inter = await fake.invoke_command("subscriptions", **home)
        await inter.wait_done()
        listed = inter.original["embeds"][0]["description"]
        assert "Valmare Gazette" in listed and "the operator" in listed
        assert "Their Secret Feed" not in listed and "theirs.xml" not in listed
        assert str(their_news) not in listed
        assert await fake.autocomplete("unsubscribe", {"feed": ""}, "feed", **home) == []
        for ref in (theirs.url, "Their Secret Feed", "#2"):
            inter = await fake.invoke_command("unsubscribe", {"feed": ref}, **home)
            await inter.wait_done()
            assert "no such subscription" in private_reply(inter), ref
        # the operator's subscription is listed but removed only by the operator
        inter = await fake.invoke_command("unsubscribe", {"feed": site.url}, **home)
        await inter.wait_done()
        assert "newsdesk unsubscribe" in private_reply(inter)
        # the same feed from another server: refused without saying whose it is
        inter = await fake.invoke_command("subscribe", {"url": theirs.url}, **home)
        await inter.wait_done()
        reply = private_reply(inter)
        assert "already kept in sync" in reply and str(other["guild_id"]) not in reply

        inter = await fake.invoke_command("subscriptions", **other)
        await inter.wait_done()
        listed = inter.original["embeds"][0]["description"]
        assert "Their Secret Feed" in listed and f"<#{their_news}>" in listed
        choices = await fake.autocomplete("unsubscribe", {"feed": ""}, "feed", **other)
        assert [c["name"] for c in choices] == [
            f"Their Secret Feed · {theirs.url.removeprefix('http://')}"
        ]
        inter = await fake.invoke_command("unsubscribe", {"feed": choices[0]["value"]}, **other)
        await inter.wait_done()
        assert inter.original["content"].startswith("🗑️ Unsubscribed from Their Secret Feed")
        targets = [s.subscription.target for s in await bot.run_sync(cog.engine.statuses)]
        assert targets == [site.url]


def test_subscriptions_db_from_before_servers_owned_them_is_migrated(
    bot_settings: Settings, pipeline: Any
) -> None:
    """An existing subscriptions.db gains the owner column; its subscriptions are the
    operator's (seen from every admin server, removed only by the operator)."""
    import sqlite3

    from index.feeds.engine import SyncEngine

    path = bot_settings.data_dir / "subscriptions.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as c:
        c.execute(
            "CREATE TABLE subscriptions (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
            " target TEXT NOT NULL UNIQUE, interval REAL NOT NULL, channel INTEGER, origin TEXT "
            "NOT NULL, added_at TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', etag TEXT, "
            "last_modified TEXT, last_attempt TEXT, last_success TEXT, last_error TEXT, "
            "last_error_at TEXT, last_warning TEXT, failures INTEGER NOT NULL DEFAULT 0, "
            "rounds INTEGER NOT NULL DEFAULT 0, next_due REAL NOT NULL DEFAULT 0)"
        )
        c.execute(
            "INSERT INTO subscriptions(kind, target, interval, origin, added_at) "
            "VALUES ('feed', 'https://example.com/feed.xml', 30, 'command', '2024-01-01')"
        )
    c.close()
    engine = SyncEngine(pipeline)
    try:
        (status,) = engine.statuses(guild=123)
        assert status.subscription.guild is None
        with pytest.raises(NewsdeskError, match="newsdesk unsubscribe"):
            engine.unsubscribe("https://example.com/feed.xml", guild=123)
        assert engine.unsubscribe("https://example.com/feed.xml").id == status.id
    finally:
        engine.close()


async def test_refused_addresses_say_not_allowed_to_discord_users(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    site: FeedSite,
    srv: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refusal names what an internal name resolves to: Discord members see "not allowed"
    (in replies, /add reports and /subscriptions), the detail goes to the bot's log only."""
    from tests.ingest.test_fetch import fake_dns

    caplog.set_level(logging.INFO, logger="newsdesk")
    fake = discord_world.fake
    internal = {
        "intranet.example": ["10.1.2.3"],
        "wiki.example": ["fd12:3456::7"],
        "meta.example": ["169.254.169.254"],
    }
    fake_dns(monkeypatch, {**internal, "localhost": ["127.0.0.1"]})
    secrets = ("10.1.2.3", "fd12:3456::7", "169.254.169.254", "resolves to", "allow_hosts")
    srv.redirect("/moved.html", "http://meta.example/latest/")
    async with start_bot() as bot:
        cog = await manual_cog(bot)
        replies = []
        for name, url in (
            ("add", "http://intranet.example/story.html"),
            ("subscribe", "http://wiki.example/feed.xml"),
            ("add", srv.url("/moved.html")),
        ):
            inter = await fake.invoke_command(name, {"url": url}, **admin_at(discord_world))
            await inter.wait_done()
            replies.append(private_reply(inter))
        # a subscription whose feed later sends its readers to an internal address
        inter = await fake.invoke_command("subscribe", {"url": site.url}, **admin_at(discord_world))
        await final_content(fake, inter)
        srv.redirect(site.path, "http://intranet.example/feed.xml")
        later(cog)
        (result,) = await cog.poll_now()
        assert not result.ok and "10.1.2.3" in (result.error or "")
        inter = await fake.invoke_command("subscriptions", **admin_at(discord_world))
        await inter.wait_done()
        replies.append(inter.original["embeds"][0]["description"])
    for reply in replies:
        assert "not allowed" in reply, reply
        for secret in secrets:
            assert secret not in reply.replace("\\", ""), (secret, reply)
    logged = caplog.text
    assert "10.1.2.3" in logged and "fd12:3456::7" in logged and "169.254.169.254" in logged


async def test_subscribe_with_tags_tags_its_articles(
    discord_world: DiscordWorld, start_bot: StartBot, site: FeedSite
) -> None:
    fake = discord_world.fake
    async with start_bot() as bot:
        await manual_cog(bot)
        inter = await fake.invoke_command(
            "subscribe", {"url": site.url, "tags": "#bad"}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert private_reply(inter).startswith("Not subscribed: bad tag '#bad'")
        assert await bot.run_sync(cog_of(bot).engine.statuses) == []

        inter = await fake.invoke_command(
            "subscribe", {"url": site.url, "tags": "Local News, gazette"}, **admin_at(discord_world)
        )
        assert (await final_content(fake, inter)).startswith("✅ Subscribed")
        rows = await bot.run_sync(bot.pipeline.list_articles)
        fed = [r for r in rows if r.source.startswith("http")]  # the bot's index had files too
        assert len(fed) == 2 and {tuple(r.tags) for r in fed} == {("gazette", "local-news")}
