"""The bot in conversation (mentions, DMs, channels, threads) against the fake Discord."""

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
from tests.conftest import MA_ARTICLE, DiscordWorld, GatedEmbedder

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"


def bot_posts(fake: Any) -> list[Any]:
    """Bodies of every message the bot created or edited (channel posts, interaction replies)."""
    out = []
    for r in fake.request_log:
        creates = r.method == "POST" and re.fullmatch(r"/channels/\d+/messages", r.path)
        webhook = r.method in ("POST", "PATCH") and r.path.startswith("/webhooks/")
        callback = r.method == "POST" and r.path.endswith("/callback")
        if creates or webhook:
            out.append(r.body)
        elif callback and isinstance(r.body, dict) and r.body.get("type") in (4, 7):
            out.append(r.body["data"])
    return out


def assert_no_pings(fake: Any) -> None:
    posts = bot_posts(fake)
    assert posts
    for body in posts:
        assert body["allowed_mentions"]["parse"] == [], body
        assert not body["allowed_mentions"].get("users")
        assert not body["allowed_mentions"].get("roles")
        assert not body["allowed_mentions"].get("replied_user")


async def no_reply(fake: Any, channel: int, wait: float = 0.3) -> bool:
    await asyncio.sleep(wait)
    return not fake.messages[channel]


async def test_mention_is_answered_with_one_embed(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        (reply,) = fake.messages[ch]
        assert reply["message_reference"]["message_id"] == q["id"]  # a reply to the question
        assert reply["content"] == ""
        (embed,) = reply["embeds"]
        assert embed["title"] == BREAD_Q
        assert embed["description"].startswith("> “A small bakery in Lyon won")
        assert "— **Bakery wins bread prize** (bakery.html)" in embed["description"]
        assert 1 <= len(embed.get("fields", [])) <= 3
        assert embed["footer"]["text"].startswith("Answered in ")
        assert reply["mentions"] == [] and not reply["mention_everyone"]
        assert_no_pings(fake)
    assert fake.unexpected == [] and fake.errors == []


async def test_a_misspelt_question_says_what_was_searched_in_the_footer(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    typed = BREAD_Q.replace("prize", "prizze")
    assert typed != BREAD_Q
    async with start_bot():
        await fake.send_message(ch, discord_world.user, typed, mention_bot=True)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        (embed,) = fake.messages[ch][0]["embeds"]
        assert embed["title"] == typed  # the question as asked
        assert embed["description"].startswith("> “A small bakery in Lyon won")
        assert embed["footer"]["text"].startswith(f"Searched for “{BREAD_Q}” · Answered in ")
        assert_no_pings(fake)
    assert fake.unexpected == [] and fake.errors == []


async def test_smalltalk_never_gets_a_quote(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    """ "@bot thanks" gets a short line, "@bot help" how to ask; neither a random quote."""
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot():
        await fake.send_message(ch, discord_world.user, "thanks!", mention_bot=True)
        await fake.wait_for(lambda: len(fake.messages[ch]) >= 1, timeout=5)
        await fake.send_message(ch, discord_world.user, "help", mention_bot=True)
        await fake.wait_for(lambda: len(fake.messages[ch]) >= 2, timeout=5)
        await fake.send_message(ch, discord_world.user, "42", mention_bot=True)
        await fake.wait_for(lambda: len(fake.messages[ch]) >= 3, timeout=5)
        thanks, help_, noise = fake.messages[ch]
        for m in (thanks, help_, noise):
            assert not m["embeds"], m
            assert "“" not in m["content"] or "Apple Pay" in m["content"]
        assert "welcome" in thanks["content"].lower()
        assert "ask" in help_["content"].lower() and "?" in help_["content"]
        assert "question" in noise["content"].lower()
        assert_no_pings(fake)
    assert fake.unexpected == [] and fake.errors == []


@pytest.mark.model
async def test_real_model_mention_answers_apple_pay(
    discord_world: DiscordWorld, start_bot: StartBot, tmp_path: Path, real_embedder: Any
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    settings = load_settings(data_dir=tmp_path / "model-data")
    with Pipeline(settings, real_embedder) as pipe:
        pipe.add([str(MA_ARTICLE)])
        async with start_bot(settings, pipe):
            await fake.send_message(
                ch, discord_world.user, "What did Ma say about Apple Pay?", mention_bot=True
            )
            await fake.wait_for(lambda: fake.messages[ch], timeout=15)
            embed = fake.messages[ch][0]["embeds"][0]
            assert "very interested" in embed["description"]
            assert "Alibaba Founder Jack Ma" in embed["description"]


async def test_dm_is_answered(discord_world: DiscordWorld, start_bot: StartBot) -> None:
    fake = discord_world.fake
    async with start_bot():
        await fake.send_dm(discord_world.user, BREAD_Q)
        dm = fake.dm_channel(discord_world.user)
        await fake.wait_for(lambda: fake.messages[dm], timeout=5)
        assert "Lyon" in fake.messages[dm][0]["embeds"][0]["description"]
        assert_no_pings(fake)


async def test_dm_ignored_when_answer_dms_is_false(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    bot_settings.discord.answer_dms = False
    async with start_bot():
        assert not fake.identify_payloads[0]["intents"] & (1 << 12)  # no DIRECT_MESSAGES intent
        await fake.send_dm(discord_world.user, BREAD_Q)
        assert await no_reply(fake, fake.dm_channel(discord_world.user))


async def test_channel_ids_message_answered_without_mention(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    quiet = fake.add_channel(discord_world.guild, "chatter")
    bot_settings.discord.channel_ids = [ch]
    bot_settings.discord.message_content = True
    async with start_bot():
        assert fake.identify_payloads[0]["intents"] & (1 << 15)  # MESSAGE_CONTENT requested
        await fake.send_message(ch, discord_world.user, BREAD_Q)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        assert "Lyon" in fake.messages[ch][0]["embeds"][0]["description"]
        await fake.send_message(quiet, discord_world.user, BREAD_Q)  # not a listed channel
        assert await no_reply(fake, quiet)


async def test_without_message_content_intent_only_mentions_are_answered(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.discord.channel_ids = [ch]  # but message_content stays False
    async with start_bot():
        assert not fake.identify_payloads[0]["intents"] & (1 << 15)
        await fake.send_message(ch, discord_world.user, BREAD_Q)  # arrives with empty content
        assert await no_reply(fake, ch)
        await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        assert len(fake.messages[ch]) == 1


async def test_own_and_other_bots_messages_are_ignored(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    other_bot = fake.add_user("otherbot", bot=True)
    fake.add_member(discord_world.guild, other_bot)
    bot_settings.discord.channel_ids = [ch]
    bot_settings.discord.message_content = True
    async with start_bot():
        await fake.send_message(ch, other_bot, BREAD_Q, mention_bot=True)
        assert await no_reply(fake, ch)
        # our own answer is echoed back as MESSAGE_CREATE in a listed channel: no reply loop
        await fake.send_message(ch, discord_world.user, BREAD_Q)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        await asyncio.sleep(0.3)
        assert len(fake.messages[ch]) == 1
        assert any(
            ev == "MESSAGE_CREATE" and d["author"]["id"] == str(fake.bot_id)
            for ev, d in fake.dispatched
        )


async def test_reply_in_thread_and_follow_up_in_that_thread(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.discord.reply_in_thread = True
    bot_settings.discord.message_content = True  # follow-ups without a mention
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        thread_id = int(q["id"])  # a thread opened on a message shares its id
        await fake.wait_for(lambda: fake.messages[thread_id], timeout=5)
        thread = fake.channels[thread_id]
        assert thread["name"] == BREAD_Q and thread["parent_id"] == str(ch)
        assert thread["owner_id"] == str(fake.bot_id)
        assert "Lyon" in fake.messages[thread_id][0]["embeds"][0]["description"]
        assert fake.messages[ch] == []  # nothing in the channel itself

        await fake.send_message(thread_id, discord_world.user, "When did the volcano erupt?")
        await fake.wait_for(lambda: len(fake.messages[thread_id]) == 2, timeout=5)
        follow = fake.messages[thread_id][1]
        assert follow["embeds"][0]["title"] == "When did the volcano erupt?"
        assert len([c for c in fake.channels.values() if c.get("type") == 11]) == 1
        assert fake.messages[ch] == []
        assert_no_pings(fake)


async def test_thread_name_is_cut_to_100_characters(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.discord.reply_in_thread = True
    question = "Who won the national bread prize " + "and what did the baker say " * 12 + "?"
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, question, mention_bot=True)
        await fake.wait_for(lambda: fake.messages[int(q["id"])], timeout=5)
        name = fake.channels[int(q["id"])]["name"]
        assert len(name) <= 100 and name.endswith("…")
        assert name.startswith("Who won the national bread prize")


async def test_bare_mention_gets_help_and_attachment_only_messages(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    listed = fake.add_channel(discord_world.guild, "questions")
    bot_settings.discord.channel_ids = [listed]
    bot_settings.discord.message_content = True
    async with start_bot():
        await fake.send_message(ch, discord_world.user, "", mention_bot=True)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        help_text = fake.messages[ch][0]["content"]
        assert "/ask" in help_text and "“@newsdesk-test What did Ma say" in help_text
        # attachments only, in a listed channel: ignored
        file = [{"filename": "photo.png", "data": b"\x89PNG"}]
        await fake.send_message(listed, discord_world.user, "", attachments=file)
        assert await no_reply(fake, listed)
        # attachments only, in a DM: a short help
        dm = fake.dm_channel(discord_world.user)
        await fake.send_message(dm, discord_world.user, "", attachments=file)
        await fake.wait_for(lambda: fake.messages[dm], timeout=5)
        assert "/ask" in fake.messages[dm][0]["content"]
    assert fake.errors == []


async def test_nothing_relevant_says_so_and_suggests(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot():
        await fake.send_message(
            ch, discord_world.user, "quantum chromodynamics lattice", mention_bot=True
        )
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        desc = fake.messages[ch][0]["embeds"][0]["description"]
        assert desc.startswith("I couldn't find that in the indexed articles.")
        assert "Closest articles:" in desc and "Bakery wins bread prize" in desc


async def test_article_text_with_everyone_never_pings(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    role = next(iter(fake.guilds[discord_world.guild].roles))
    text = (
        f"Attention @everyone and @here: the **harbour festival** opens on Friday, said "
        f"<@{discord_world.user}> and <@&{role}> ([tickets](https://evil.example/phish)).\n\n"
        "Fireworks start at nine."
    )
    doc = Document("https://news.example.com/harbour", "@everyone Harbour festival", text)
    bot_pipeline.add_documents([doc])
    async with start_bot():
        await fake.send_message(
            ch, discord_world.user, "When does the harbour festival open?", mention_bot=True
        )
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        reply = fake.messages[ch][0]
        desc = reply["embeds"][0]["description"]
        assert "\\*\\*harbour festival\\*\\* opens on Friday" in desc
        assert reply["mention_everyone"] is False
        assert reply["mentions"] == [] and reply["mention_roles"] == []
        e = reply["embeds"][0]
        parts = [e["title"], e["description"], e["footer"]["text"]]
        everything = "\n".join(
            parts + [f[k] for f in e.get("fields", []) for k in ("name", "value")]
        )
        assert "@everyone" not in everything and "@here" not in everything
        assert "@\u200beveryone" in everything
        assert f"<@{discord_world.user}>" not in everything and "<@&" not in everything
        assert "](https://evil.example" not in everything.replace("\\]", "")
        assert_no_pings(fake)


async def test_too_long_question_gets_a_clear_reply(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot():
        await fake.send_message(ch, discord_world.user, "why " * 1250, mention_bot=True)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        content = fake.messages[ch][0]["content"]
        assert "too long" in content and "2,000" in content


async def test_message_cooldown(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.discord.cooldown_rate = 2
    bot_settings.discord.cooldown_seconds = 60
    async with start_bot():
        for _ in range(4):
            await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(lambda: len(fake.messages[ch]) >= 3, timeout=5)
        await asyncio.sleep(0.3)
        replies = fake.messages[ch]
        assert len(replies) == 3  # two answers, one cooldown notice, the 4th dropped silently
        notices = [r["content"] for r in replies if not r["embeds"]]
        assert len(notices) == 1 and "asking quickly" in notices[0]
        # another user is not affected
        other = fake.add_user("bob")
        await fake.send_message(ch, other, BREAD_Q, mention_bot=True)
        await fake.wait_for(lambda: len(fake.messages[ch]) == 4, timeout=5)
        assert fake.messages[ch][3]["embeds"]


async def test_deleted_channel_is_logged_and_the_bot_keeps_answering(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    gated_pipeline: Pipeline,
    gated_embedder: GatedEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    doomed = fake.add_channel(discord_world.guild, "doomed")
    async with start_bot(pipeline=gated_pipeline):
        gated_embedder.query_gate.clear()
        gated_embedder.query_entered.clear()
        await fake.send_message(doomed, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(gated_embedder.query_entered.is_set, timeout=5)
        fake.delete_channel(doomed, dispatch=False)  # gone before the answer is sent
        with caplog.at_level(logging.WARNING, logger="newsdesk"):
            gated_embedder.query_gate.set()
            await fake.wait_for(
                lambda: any("could not answer" in r.message for r in caplog.records), timeout=5
            )
        await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        assert "Unknown Channel" in caplog.text


async def test_unexpected_error_in_a_message_question_gives_a_ref(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot():

        def boom(question: str, k: int | None = None) -> Any:
            raise RuntimeError("kaboom")

        monkeypatch.setattr(bot_pipeline, "ask", boom)
        with caplog.at_level(logging.ERROR, logger="newsdesk"):
            await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
            await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        content = fake.messages[ch][0]["content"]
        m = re.search(r"Something went wrong \(ref ([0-9A-F]{6})\)", content)
        assert m, content
        (record,) = [r for r in caplog.records if m.group(1) in r.getMessage()]
        assert record.exc_info and "kaboom" in str(record.exc_info[1])
        assert "kaboom" not in content  # details stay in the log
