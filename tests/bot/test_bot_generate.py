"""Written answers in Discord: streamed by editing the reply (≤ 1 edit per second), verified, and
the extractive answer when the [llm] endpoint fails -- against the fake Discord and fake LLM."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from index.config import Settings
from index.embedding.hashing import HashEmbedder
from index.pipeline import Pipeline
from tests.conftest import DiscordWorld
from tests.fakes.openai import ChatRequest, FakeOpenAI

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"
STARTER = "uses a sourdough starter that is forty years old"
EXTRACTIVE = "> “A small bakery in Lyon won the national bread prize on Sunday.”"


@pytest.fixture
def fake_llm(bot_settings: Settings) -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        bot_settings.llm.base_url = server.base_url
        bot_settings.llm.model = "fake"
        bot_settings.llm.timeout = 5.0
        yield server


def where(w: DiscordWorld) -> dict[str, int]:
    return {"user_id": w.user, "guild_id": w.guild, "channel_id": w.channel}


def faithful(req: ChatRequest) -> str:
    n = req.passage_with("Lyon")
    return (
        f'A small bakery in Lyon won the prize. Its baker, Paul Martin, "{STARTER}" [{n}]. '
        f"He will hire two apprentices with the money [{n}]."
    )


def edits_of(fake: Any, token: str) -> list[Any]:
    """The bot's edits of an interaction's reply, in order (with arrival times ``at``)."""
    return [
        r
        for r in fake.request_log
        if r.method == "PATCH" and r.path.endswith(f"/{token}/messages/@original")
    ]


def assert_spaced(times: list[float], interval: float = 1.0) -> None:
    for a, b in itertools.pairwise(times):
        assert b - a >= interval - 0.01, times


def description(body: Any) -> str:
    return str(body["embeds"][0]["description"])


async def test_ask_streams_a_verified_answer_with_evidence(
    discord_world: DiscordWorld, start_bot: StartBot, fake_llm: FakeOpenAI
) -> None:
    fake = discord_world.fake
    fake_llm.reply = faithful
    fake_llm.piece_delay = 0.12  # ~2.5 s of streaming
    async with start_bot():
        t0 = time.monotonic()
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await fake.wait_for(lambda: "Written by" in str(inter.original), timeout=15)
        elapsed = time.monotonic() - t0
        assert inter.callbacks[0] == {"type": 5, "data": {}}  # deferred first
        edits = edits_of(fake, inter.token)
        assert 2 <= len(edits) <= elapsed + 1  # streamed, at most one edit per second
        assert_spaced([e.at for e in edits])
        partial = description(edits[0].body)
        assert "▌" in partial or "Writing an answer" in partial
        assert "**Evidence**" in partial and EXTRACTIVE in partial  # evidence from the start
        final = inter.original["embeds"][0]
        assert STARTER in final["description"] and "\\[1\\]" in final["description"]
        text, evidence = final["description"].split("\n\n**Evidence**\n")
        assert "▌" not in text
        assert evidence.startswith(EXTRACTIVE) and "— **Bakery wins bread prize**" in evidence
        (sources,) = final["fields"]
        assert sources["name"] == "Sources"
        assert sources["value"] == "\\[1\\] **Bakery wins bread prize** (bakery.html)"
        assert final["footer"]["text"].startswith("Written by fake-llm-1 from the passages")
        assert fake_llm.requests[0].stream
        for e in edits:
            assert e.body["allowed_mentions"]["parse"] == []
    assert fake.unexpected == [] and fake.errors == []


@pytest.mark.parametrize("kind", ["fabricated", "bad-citation"])
async def test_unverifiable_parts_are_never_shown_even_while_streaming(
    discord_world: DiscordWorld, start_bot: StartBot, fake_llm: FakeOpenAI, kind: str
) -> None:
    fake = discord_world.fake
    bad = (
        'Martin said "bread is my whole life" [1].'
        if kind == "fabricated"
        else ("The palace paid for it [6].")
    )
    fake_llm.reply = lambda req: f"{bad} {faithful(req)}"
    fake_llm.piece_delay = 0.08
    async with start_bot():
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await fake.wait_for(lambda: "Written by" in str(inter.original), timeout=15)
        edits = edits_of(fake, inter.token)
        assert len(edits) >= 2
        for e in edits:
            shown = description(e.body)
            assert "whole life" not in shown and "palace" not in shown and "6\\]" not in shown
        assert STARTER in description(inter.original)


@pytest.mark.parametrize("mode", ["error", "garbage", "hang", "only-fabricated"])
async def test_endpoint_failures_give_the_extractive_answer(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    fake_llm: FakeOpenAI,
    bot_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    fake = discord_world.fake
    caplog.set_level(logging.INFO, logger="index.written.generate")
    bot_settings.llm.timeout = 1.5
    if mode == "only-fabricated":
        fake_llm.reply = 'Martin said "bread is my whole life" [1].'
    else:
        fake_llm.mode = mode
    async with start_bot():
        t0 = time.monotonic()
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await fake.wait_for(lambda: "Answered in" in str(inter.original), timeout=15)
        assert time.monotonic() - t0 < 8  # llm.timeout, not the endpoint, bounds the wait
        final = inter.original["embeds"][0]
        assert final["description"].startswith(EXTRACTIVE)  # the usual extractive embed
        assert "Evidence" not in final["description"]
        assert final["footer"]["text"].startswith("Answered in")
        assert not inter.followups and not inter.ephemeral()  # never an error to the user
        edits = edits_of(fake, inter.token)
        assert_spaced([e.at for e in edits])
        if mode == "hang":  # meanwhile the evidence was shown, after one second
            assert len(edits) == 2 and EXTRACTIVE in description(edits[0].body)
    assert "answering with the extracted quote" in caplog.text
    assert fake.unexpected == [] and fake.errors == []


async def test_mention_streams_by_editing_the_reply(
    discord_world: DiscordWorld, start_bot: StartBot, fake_llm: FakeOpenAI
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    fake_llm.reply = faithful
    fake_llm.piece_delay = 0.12
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(
            lambda: fake.messages[ch] and "Written by" in str(fake.messages[ch][0]), timeout=15
        )
        (reply,) = fake.messages[ch]  # one message, edited
        assert reply["message_reference"]["message_id"] == q["id"]
        assert STARTER in reply["embeds"][0]["description"]
        writes = [
            r
            for r in fake.request_log
            if r.path.startswith(f"/channels/{ch}/messages")
            and r.method in ("POST", "PATCH")
            and not r.path.endswith("/typing")
        ]
        assert len(writes) >= 2 and writes[0].method == "POST"
        assert {r.method for r in writes[1:]} == {"PATCH"}
        assert_spaced([r.at for r in writes])
        for r in writes:
            assert r.body["allowed_mentions"]["parse"] == []
    assert fake.unexpected == [] and fake.errors == []


async def test_mention_with_endpoint_down_is_answered_extractively(
    discord_world: DiscordWorld, start_bot: StartBot, fake_llm: FakeOpenAI
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    fake_llm.mode = "error"
    async with start_bot():
        await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(lambda: fake.messages[ch], timeout=10)
        (reply,) = fake.messages[ch]
        assert reply["embeds"][0]["description"].startswith(EXTRACTIVE)
        assert reply["embeds"][0]["footer"]["text"].startswith("Answered in")


async def test_private_ask_streams_privately(
    discord_world: DiscordWorld, start_bot: StartBot, fake_llm: FakeOpenAI
) -> None:
    fake = discord_world.fake
    fake_llm.reply = faithful
    async with start_bot():
        inter = await fake.invoke_command(
            "ask", {"question": BREAD_Q, "private": True}, **where(discord_world)
        )
        await fake.wait_for(lambda: "Written by" in str(inter.original), timeout=15)
        assert inter.ephemeral() and STARTER in description(inter.original)


async def test_questions_the_articles_do_not_answer_skip_the_model(
    discord_world: DiscordWorld, start_bot: StartBot, fake_llm: FakeOpenAI, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    bot_settings.answer.min_confidence = 1.0
    async with start_bot():
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await fake.wait_for(lambda: "Answered in" in str(inter.original), timeout=10)
        assert "couldn't find that" in description(inter.original)
        assert fake_llm.requests == []


async def test_api_key_is_sent_and_redacted_from_every_log(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    fake_llm: FakeOpenAI,
    bot_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-newsdesk-test-KEY-MUST-NOT-LEAK-0123456789"
    monkeypatch.setenv("NEWSDESK_TEST_LLM_KEY", key)
    bot_settings.llm.api_key_env = "NEWSDESK_TEST_LLM_KEY"
    fake_llm.reply = faithful
    caplog.set_level(logging.DEBUG)
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await fake.wait_for(lambda: "Written by" in str(inter.original), timeout=15)
        assert fake_llm.requests[0].headers["authorization"] == f"Bearer {key}"
        logging.getLogger("some.library").warning("request failed with key %s", key)
    assert key not in caplog.text and "request failed with key [redacted]" in caplog.text
    assert key not in str(fake.request_log)


async def test_engine_errors_are_reported_as_usual(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    fake_llm: FakeOpenAI,
    bot_settings: Settings,
    tmp_path: Path,
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    settings = dataclasses.replace(bot_settings, data_dir=tmp_path / "empty")
    with Pipeline(settings, HashEmbedder()) as empty:  # nothing indexed yet
        async with start_bot(settings, empty):
            inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
            await inter.wait_done()
            (reply,) = inter.all_messages()
            assert "nothing is indexed yet" in reply["content"] and reply["flags"] & (1 << 6)
            await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
            await fake.wait_for(lambda: fake.messages[ch], timeout=10)
            assert "nothing is indexed yet" in fake.messages[ch][0]["content"]
    assert fake_llm.requests == []
    assert fake.unexpected == [] and fake.errors == []


async def test_a_written_follow_up_in_a_bot_thread_builds_on_the_earlier_question(
    discord_world: DiscordWorld, start_bot: StartBot, fake_llm: FakeOpenAI, bot_settings: Settings
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    bot_settings.discord.reply_in_thread = True
    bot_settings.discord.message_content = True
    fake_llm.reply = faithful
    async with start_bot():
        q = await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        tid = int(q["id"])
        await fake.wait_for(lambda: "Written by" in str(fake.messages[tid]), timeout=15)
        assert "Following up on" not in description(fake.messages[tid][0])
        await fake.send_message(tid, discord_world.user, "and who was the baker?")
        await fake.wait_for(
            lambda: len(fake.messages[tid]) == 2 and "Written by" in str(fake.messages[tid][1]),
            timeout=15,
        )
        text = description(fake.messages[tid][1])
        assert text.startswith(f"*Following up on: “{BREAD_Q}”*")
        assert STARTER in text  # the written answer, built on the bakery passage
        # the follow-up's retrieval read the earlier question's words: the bakery passage
        assert any("Lyon" in text for _title, text in fake_llm.requests[-1].passages.values())
    assert fake.unexpected == [] and fake.errors == []
