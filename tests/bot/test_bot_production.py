"""What a real deployment hits and a lenient fake would not (issue 18): jobs that outlive the
15-minute interaction token, replies without Read Message History, install contexts, option
limits. The fake Discord enforces each rule; the bot is checked against it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import pytest

from index.config import Settings
from index.pipeline import Pipeline
from tests.bot.test_bot_admin import admin_at
from tests.conftest import DiscordWorld, GatedEmbedder
from tests.fakes import discord as fakediscord

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"
TOKEN_LIFETIME = 15 * 60
READ_MESSAGE_HISTORY = 1 << 16
SEND_MESSAGES = 1 << 11


async def rest(fake: Any, method: str, path: str, body: Any) -> tuple[int, Any]:
    """A raw REST request to the fake (as a bot), for tests of the fake's own rules."""
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bot fake-token"}) as session,
        session.request(method, fake.base_url + path, json=body) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def bot_messages(fake: Any, channel: int) -> list[dict[str, Any]]:
    return list(fake.messages[channel])


# -- the fake's rules ----------------------------------------------------------------------------


async def test_fake_refuses_an_interaction_token_after_15_minutes(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command("stats", **admin_at(discord_world))
        await inter.wait_done()
        path = f"/webhooks/{fake.application_id}/{inter.token}/messages/@original"
        status, _ = await rest(fake, "PATCH", path, {"content": "still here"})
        assert status == 200
        fake.advance_clock(TOKEN_LIFETIME - 5)
        assert (await rest(fake, "PATCH", path, {"content": "14:55"}))[0] == 200
        fake.advance_clock(10)
        status, body = await rest(fake, "PATCH", path, {"content": "too late"})
        assert (status, body["code"]) == (401, 50027)
        status, _ = await rest(fake, "POST", f"/webhooks/{fake.application_id}/{inter.token}", {})
        assert status == 401
        assert inter.token_expired and len(fake.expired_token_requests) == 2


async def test_fake_refuses_a_reply_without_read_message_history(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, "hello there")
        reply = {"content": "hi", "message_reference": {"message_id": q["id"]}}
        assert (await rest(fake, "POST", f"/channels/{ch}/messages", reply))[0] == 200
        # an override on @everyone (the guild id) removes the permission in this channel
        fake.set_permission_overwrite(ch, discord_world.guild, deny=READ_MESSAGE_HISTORY)
        status, body = await rest(fake, "POST", f"/channels/{ch}/messages", reply)
        assert (status, body["code"]) == (403, 50013)
        plain = {"content": "hi"}
        assert (await rest(fake, "POST", f"/channels/{ch}/messages", plain))[0] == 200
        fake.set_permission_overwrite(ch, fake.application_id, deny=SEND_MESSAGES)
        assert (await rest(fake, "POST", f"/channels/{ch}/messages", plain))[0] == 403


async def test_fake_checks_string_option_limits_and_contexts_when_synced(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    path = f"/applications/{fake.application_id}/commands"

    def command(**extra: Any) -> dict[str, Any]:
        option = {"name": "q", "description": "q", "type": 3, "required": True}
        return {"name": "x", "description": "x", "type": 1, "options": [option], **extra}

    async with start_bot():
        ok = command()
        ok["options"][0].update(min_length=1, max_length=2000)
        assert (await rest(fake, "PUT", path, [ok]))[0] == 200
        for bad_option in ({"max_length": 7000}, {"max_length": 0}, {"min_length": -1}):
            bad = command()
            bad["options"][0].update(bad_option)
            assert (await rest(fake, "PUT", path, [bad]))[0] == 400, bad_option
        assert (await rest(fake, "PUT", path, [command(contexts=[0, 3])]))[0] == 400
        assert (await rest(fake, "PUT", path, [command(integration_types=[2])]))[0] == 400
        assert (await rest(fake, "PUT", path, [command(contexts=[0], integration_types=[0])]))[
            0
        ] == 200


# -- item 1: long jobs outlive the interaction token -----------------------------------------


@pytest.fixture
def slow_reindex(gated_embedder: GatedEmbedder) -> GatedEmbedder:
    gated_embedder.index_delay = 0.8  # 3 passages: ~2.4 s, progress edits about every second
    return gated_embedder


async def test_reindex_past_the_token_moves_to_a_channel_message(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    gated_pipeline: Pipeline,
    slow_reindex: GatedEmbedder,
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot(pipeline=gated_pipeline):
        inter = await fake.invoke_command("reindex", **admin_at(discord_world))
        await fake.wait_for(lambda: inter.edits >= 1, timeout=5)  # a progress edit went out
        fake.advance_clock(TOKEN_LIFETIME + 60)  # Discord now refuses the token
        await fake.wait_for(
            lambda: any(m["content"].startswith("✅ Re-indexed") for m in bot_messages(fake, ch)),
            timeout=10,
        )
        (msg,) = bot_messages(fake, ch)  # one message the bot owns, edited, not a stream
        assert "-# /reindex run by <@" in msg["content"] and "15 minutes" in msg["content"]
        assert msg["mentions"] == []  # names the admin without a ping
        # exactly one request found the token expired; nothing retried it
        assert len(fake.expired_token_requests) == 1, fake.expired_token_requests
        assert not inter.original["content"].startswith("✅")


async def test_a_job_switches_before_the_token_expires_and_points_to_the_message(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    gated_pipeline: Pipeline,
    slow_reindex: GatedEmbedder,
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot(pipeline=gated_pipeline) as bot:
        bot.clock = fake.now  # the bot ages tokens on the test's clock
        inter = await fake.invoke_command("reindex", **admin_at(discord_world))
        await fake.wait_for(lambda: inter.edits >= 1, timeout=5)
        fake.advance_clock(14.5 * 60)  # still valid, but less than the bot's margin remains
        await fake.wait_for(
            lambda: any(m["content"].startswith("✅ Re-indexed") for m in bot_messages(fake, ch)),
            timeout=10,
        )
        (msg,) = bot_messages(fake, ch)
        assert fake.expired_token_requests == []  # switched before Discord refused anything
        jump = f"/channels/{discord_world.guild}/{ch}/{msg['id']}"
        assert inter.original["content"].startswith("⏩ /reindex continues here: ")
        assert inter.original["content"].endswith(jump)


async def test_a_job_reports_by_dm_then_only_in_the_log_when_nothing_else_works(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    gated_pipeline: Pipeline,
    slow_reindex: GatedEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, ch, admin = discord_world.fake, discord_world.channel, discord_world.admin
    fake.set_permission_overwrite(ch, fake.application_id, deny=SEND_MESSAGES)
    async with start_bot(pipeline=gated_pipeline) as bot:
        inter = await fake.invoke_command("reindex", **admin_at(discord_world))
        await fake.wait_for(lambda: inter.edits >= 1, timeout=5)
        fake.advance_clock(TOKEN_LIFETIME + 60)
        dm = fake.dm_channel(admin)
        await fake.wait_for(
            lambda: any(m["content"].startswith("✅ Re-indexed") for m in bot_messages(fake, dm)),
            timeout=10,
        )
        assert len(bot_messages(fake, dm)) == 1 and bot_messages(fake, ch) == []
        assert len(fake.expired_token_requests) == 1
        # the DM shows before the bot hears back and ends the job: a second /reindex now
        # would be refused as "being updated"
        admin_cog = bot.get_cog("AdminCog")
        await fake.wait_for(lambda: admin_cog._busy is None, timeout=10)

        # now the admin accepts no DMs either: one try each, then the log has the result
        fake.closed_dms.add(admin)
        caplog.set_level(logging.INFO, logger="newsdesk.bot")
        inter = await fake.invoke_command("reindex", **admin_at(discord_world))
        await fake.wait_for(lambda: inter.edits >= 1, timeout=5)
        fake.advance_clock(TOKEN_LIFETIME + 60)
        await fake.wait_for(
            lambda: "result of /reindex (not delivered): ✅ Re-indexed" in caplog.text, timeout=10
        )
        assert "/reindex (by user" in caplog.text and "can no longer report" in caplog.text
        assert len(fake.expired_token_requests) == 2  # one per job
        refused = [r for r in fake.request_log if r.status == 403]
        assert len(refused) == 3, [(r.method, r.path) for r in refused]  # channel, DM, channel


async def test_subscribe_result_survives_a_first_sync_longer_than_the_token(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    from tests.fakes.feeds import FeedSite
    from tests.fakes.http import LoopbackServer
    from tests.feeds.test_sync import BRIDGE

    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.fetch.allow_hosts = ["127.0.0.1:*"]
    with LoopbackServer() as srv:
        site = FeedSite(srv)
        site.publish("/bridge", "Bridge vote passes", BRIDGE)
        async with start_bot() as bot:
            cog = bot.get_cog("SubscriptionsCog")
            await cog.stop_polling()
            subscribe = cog.engine.subscribe

            def slow_subscribe(*args: Any, **kwargs: Any) -> Any:
                fake.advance_clock(TOKEN_LIFETIME + 60)  # a first sync of 16 minutes
                return subscribe(*args, **kwargs)

            cog.engine.subscribe = slow_subscribe
            inter = await fake.invoke_command(
                "subscribe", {"url": site.url}, **admin_at(discord_world)
            )
            await fake.wait_for(lambda: bot_messages(fake, ch), timeout=10)
            (msg,) = bot_messages(fake, ch)
            assert msg["content"].startswith("✅ Subscribed to Valmare Gazette")
            assert len(fake.expired_token_requests) == 1
            assert inter.callback_types == [5]


# -- item 2: replies need Read Message History ----------------------------------------------


async def test_answers_quote_the_question_where_replies_are_not_allowed(
    discord_world: DiscordWorld, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake, ch, user = discord_world.fake, discord_world.channel, discord_world.user
    caplog.set_level(logging.WARNING, logger="newsdesk.bot")
    async with start_bot():
        fake.set_permission_overwrite(ch, discord_world.guild, deny=READ_MESSAGE_HISTORY)
        await fake.wait_for(lambda: fake.dispatched[-1][0] == "CHANNEL_UPDATE", timeout=2)
        for n in (1, 2):
            await fake.send_message(ch, user, BREAD_Q, mention_bot=True)
            await fake.wait_for(lambda n=n: len(bot_messages(fake, ch)) == n, timeout=5)
        for msg in bot_messages(fake, ch):
            assert "message_reference" not in msg  # a plain message, not a refused reply
            assert msg["content"] == f"<@{user}> asked:\n> {BREAD_Q}"
            assert msg["mentions"] == []  # names the asker without pinging
            assert "Lyon" in msg["embeds"][0]["description"]
        assert not [r for r in fake.request_log if r.status == 403]  # decided from the cache
        assert caplog.text.count("no Read Message History in channel") == 1


async def test_a_refused_reply_falls_back_once_when_the_cache_is_stale(
    discord_world: DiscordWorld, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake, ch, user = discord_world.fake, discord_world.channel, discord_world.user
    caplog.set_level(logging.WARNING, logger="newsdesk.bot")
    async with start_bot():
        # the override changes without the bot hearing of it: it tries a reply and gets 403
        fake.set_permission_overwrite(
            ch, discord_world.guild, deny=READ_MESSAGE_HISTORY, dispatch=False
        )
        for n in (1, 2):
            await fake.send_message(ch, user, BREAD_Q, mention_bot=True)
            await fake.wait_for(lambda n=n: len(bot_messages(fake, ch)) == n, timeout=5)
        assert all(m["content"].startswith(f"<@{user}> asked:") for m in bot_messages(fake, ch))
        refused = [r for r in fake.request_log if r.status == 403]
        assert len(refused) == 1  # the second answer did not try a reply again
        assert caplog.text.count("no Read Message History in channel") == 1

        # the permission comes back (a channel update): answers are replies again
        fake.set_permission_overwrite(ch, discord_world.guild)
        await fake.wait_for(lambda: fake.dispatched[-1][0] == "CHANNEL_UPDATE", timeout=2)
        q = await fake.send_message(ch, user, BREAD_Q, mention_bot=True)
        await fake.wait_for(lambda: len(bot_messages(fake, ch)) == 3, timeout=5)
        assert bot_messages(fake, ch)[-1]["message_reference"]["message_id"] == q["id"]


# -- items 3 and 4: install contexts, option limits ------------------------------------------


async def test_commands_declare_guild_install_and_their_contexts(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    async with start_bot():
        synced = {c["name"]: c for c in fake.synced_commands[None]}
        for name, cmd in synced.items():
            assert cmd["integration_types"] == [0], name  # guild install only
        for name in ("ask", "search", "article"):
            assert sorted(synced[name]["contexts"]) == [0, 1], name  # servers and bot DMs
        for name in ("add", "remove", "reindex", "stats", "unsubscribe", "subscriptions"):
            assert synced[name]["contexts"] == [0], name
        dm = {"user_id": discord_world.user, "guild_id": None, "channel_id": 0}
        dm["channel_id"] = fake.dm_channel(discord_world.user)
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **dm)
        await inter.wait_done()

    bot_settings.discord.answer_dms = False
    async with start_bot():
        synced = {c["name"]: c for c in fake.synced_commands[None]}
        assert all(synced[n]["contexts"] == [0] for n in ("ask", "search", "article"))
        with pytest.raises(fakediscord.CommandNotAvailable):
            await fake.invoke_command("ask", {"question": BREAD_Q}, **dm)


async def test_unsubscribe_defers_before_touching_the_database(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot() as bot:
        cog = bot.get_cog("SubscriptionsCog")
        await cog.stop_polling()
        acknowledged: list[list[int]] = []  # the callbacks when the database was touched
        unsubscribe = cog.engine.unsubscribe

        def watched(*args: Any, **kwargs: Any) -> Any:
            acknowledged.append(fake.interactions[-1].callback_types)
            return unsubscribe(*args, **kwargs)

        cog.engine.unsubscribe = watched
        inter = await fake.invoke_command(
            "unsubscribe", {"feed": "https://example.com/none.xml"}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert acknowledged == [[5]]  # deferred before the database was touched
        assert inter.callback_types == [5]


def test_question_options_carry_each_bots_own_limit() -> None:
    """max_length comes from answer.max_question_chars (capped at Discord's 6000), per bot:
    one bot's setting never leaks into another's commands (or the class)."""
    from types import SimpleNamespace

    from bot.cogs.ask import AskCog

    def cog(limit: int) -> Any:
        answer = SimpleNamespace(max_question_chars=limit)
        return AskCog(SimpleNamespace(settings=SimpleNamespace(answer=answer)))

    short, long_, huge = cog(300), cog(2000), cog(9000)
    assert short.ask._params["question"].to_dict()["max_length"] == 300
    assert short.search._params["query"].to_dict()["min_length"] == 1
    assert long_.ask._params["question"].to_dict()["max_length"] == 2000
    assert huge.search._params["query"].to_dict()["max_length"] == 6000
    assert "max_length" not in AskCog.ask._params["question"].to_dict()
