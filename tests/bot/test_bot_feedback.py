"""👍 / 👎 buttons under answers, /feedback and /gaps, against the fake Discord."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from index.community.db import DB_NAME
from index.config import Settings
from tests.conftest import DiscordWorld
from tests.fakes.discord import CommandNotAvailable
from tests.fakes.discord.components import response_text

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"
UNKNOWN_Q = "What colour is the moon base?"
VOTE_RE = re.compile(r"nd:vote:(up|down):(\d+)")


async def ask(w: DiscordWorld, question: str, n: int) -> dict[str, Any]:
    """Mention the bot with ``question``; the bot's ``n``-th message in the channel."""
    await w.fake.send_message(w.channel, w.user, question, mention_bot=True)
    await w.fake.wait_for(lambda: len(w.fake.messages[w.channel]) >= n, timeout=5)
    return dict(w.fake.messages[w.channel][n - 1])


def vote_ids(message: dict[str, Any]) -> tuple[str, str]:
    (row,) = message["components"]
    up, down = row["components"]
    return up["custom_id"], down["custom_id"]


def votes(settings: Settings, answer_id: int) -> tuple[int, int]:
    c = sqlite3.connect(Path(settings.data_dir) / DB_NAME)
    rows = c.execute("SELECT value FROM feedback_votes WHERE answer_id = ?", (answer_id,))
    values = [v for (v,) in rows]
    return values.count(1), values.count(-1)


async def test_answer_has_buttons_abstention_has_none(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    w = discord_world
    async with start_bot():
        answer = await ask(w, BREAD_Q, 1)
        assert "Lyon" in answer["embeds"][0]["description"]
        (row,) = answer["components"]
        assert row["type"] == 1
        up, down = row["components"]
        assert (up["emoji"]["name"], down["emoji"]["name"]) == ("👍", "👎")
        assert (up["label"], down["label"]) == ("Helpful", "Not helpful")
        m_up, m_down = VOTE_RE.fullmatch(up["custom_id"]), VOTE_RE.fullmatch(down["custom_id"])
        assert m_up and m_down and m_up[2] == m_down[2]
        abstention = await ask(w, UNKNOWN_Q, 2)
        assert abstention["embeds"] and abstention["components"] == []
        await w.fake.send_message(w.channel, w.user, "thanks!", mention_bot=True)
        await w.fake.wait_for(lambda: len(w.fake.messages[w.channel]) >= 3, timeout=5)
        assert w.fake.messages[w.channel][2]["components"] == []
    c = sqlite3.connect(Path(bot_settings.data_dir) / DB_NAME)
    rows = c.execute(
        "SELECT id, question, channel_id, guild_id, user_id, abstained, title, start_offset, "
        "vector IS NOT NULL FROM feedback_answers ORDER BY id"
    ).fetchall()
    assert [r[1] for r in rows] == [BREAD_Q, UNKNOWN_Q]  # small talk is not logged
    assert rows[0][0] == int(m_up[2])
    assert rows[0][2:6] == (w.channel, w.guild, None, 0)  # no user id by default
    assert rows[0][6] == "Bakery wins bread prize" and rows[0][7] is not None and rows[0][8]
    assert rows[1][5] == 1


async def test_one_vote_per_member_per_answer(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    w = discord_world
    async with start_bot():
        up, down = vote_ids(await ask(w, BREAD_Q, 1))
        answer_id = int(up.rsplit(":", 1)[1])
        first = await w.fake.click_button(
            int(w.fake.messages[w.channel][0]["id"]), up, user_id=w.user
        )
        assert response_text(first) == ("Thanks — recorded 👍", True)
        message_id = int(w.fake.messages[w.channel][0]["id"])
        again = await w.fake.click_button(message_id, up, user_id=w.user)
        assert response_text(again) == ("You already voted 👍 on this answer.", True)
        assert votes(bot_settings, answer_id) == (1, 0)
        other = await w.fake.click_button(message_id, up, user_id=w.admin)
        assert response_text(other)[0] == "Thanks — recorded 👍"
        assert votes(bot_settings, answer_id) == (2, 0)
        switched = await w.fake.click_button(message_id, down, user_id=w.user)
        assert response_text(switched) == ("Changed to 👎 — thanks.", True)
        assert votes(bot_settings, answer_id) == (1, 1)
        # the answer message itself is untouched by the clicks
        assert w.fake.messages[w.channel][0]["components"][0]["components"][0]["custom_id"] == up
    assert w.fake.errors == [] and w.fake.unexpected == []


async def test_clicks_after_a_restart_are_recorded(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    """The buttons are persistent: a bot started later routes their clicks by custom id."""
    w = discord_world
    async with start_bot():
        up, down = vote_ids(await ask(w, BREAD_Q, 1))
    message_id = int(w.fake.messages[w.channel][0]["id"])
    answer_id = int(up.rsplit(":", 1)[1])
    async with start_bot():
        inter = await w.fake.click_button(message_id, down, user_id=w.user)
        assert response_text(inter) == ("Thanks — recorded 👎", True)
        inter = await w.fake.click_button(message_id, down, user_id=w.user)
        assert response_text(inter)[0] == "You already voted 👎 on this answer."
    assert votes(bot_settings, answer_id) == (0, 1)


async def test_vote_on_a_forgotten_answer_says_so(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    w = discord_world
    async with start_bot() as bot:
        up, _down = vote_ids(await ask(w, BREAD_Q, 1))
        await bot.run_sync(bot.feedback.forget, before=9e12)
        inter = await w.fake.click_button(
            int(w.fake.messages[w.channel][0]["id"]), up, user_id=w.user
        )
        text, ephemeral = response_text(inter)
        assert ephemeral and text.startswith("This answer is no longer in the feedback log")
        assert "90 days" in text


async def test_slash_ask_answer_has_buttons(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    w = discord_world
    async with start_bot():
        inter = await w.fake.invoke_command(
            "ask", {"question": BREAD_Q}, user_id=w.user, guild_id=w.guild, channel_id=w.channel
        )
        await inter.wait_done()
        up, _down = vote_ids(inter.original)
        click = await w.fake.click_button(int(inter.original["id"]), up, user_id=w.admin)
        assert response_text(click) == ("Thanks — recorded 👍", True)


async def test_feedback_and_gaps_for_admins(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    w = discord_world
    admin = {"user_id": w.admin, "guild_id": w.guild, "channel_id": w.channel, "admin": True}
    async with start_bot():
        up, down = vote_ids(await ask(w, BREAD_Q, 1))
        message_id = int(w.fake.messages[w.channel][0]["id"])
        await w.fake.click_button(message_id, down, user_id=w.user)
        await w.fake.click_button(message_id, up, user_id=w.admin)
        await ask(w, UNKNOWN_Q, 2)
        await ask(w, "What colour is the moon base", 3)
        await ask(w, "Where do penguins buy groceries?", 4)
        for name in ("feedback", "gaps"):
            with pytest.raises(CommandNotAvailable):
                await w.fake.invoke_command(
                    name, user_id=w.user, guild_id=w.guild, channel_id=w.channel
                )
        inter = await w.fake.invoke_command("feedback", **admin)
        await inter.wait_done()
        assert inter.ephemeral()
        (embed,) = inter.original["embeds"]
        assert embed["title"] == "Feedback — all kept answers"
        assert "**1** answers · **3** abstentions" in embed["description"]
        assert "👍 **1** · 👎 **1** (50% 👍)" in embed["description"]
        (worst,) = embed["fields"]
        assert worst["name"] == f"👎 1 · 👍 1 — “{BREAD_Q}”"
        assert "Lyon" in worst["value"] and "Bakery wins bread prize" in worst["value"]
        inter = await w.fake.invoke_command("gaps", {"since": "7d"}, **admin)
        await inter.wait_done()
        assert inter.ephemeral()
        (embed,) = inter.original["embeds"]
        assert embed["title"] == "Unanswered questions — the last 7d"
        lines = embed["description"].splitlines()
        assert lines[0] == "**1.** ×2 “What colour is the moon base”"
        assert f"<#{w.channel}>" in lines[1] and "2 unanswered" in lines[1]
        assert len([x for x in lines if x.startswith("**")]) == 3  # moon ×2, penguins, bread 👎
        assert embed["footer"]["text"].startswith("4 questions grouped by meaning")
        inter = await w.fake.invoke_command("gaps", {"since": "soon"}, **admin)
        await inter.wait_done()
        assert "'soon' is not a span" in (inter.original or inter.followups[-1])["content"]


async def test_written_answers_get_buttons_when_final(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    """A streamed written answer ([llm]) gets its buttons with the final edit, once logged."""
    from tests.fakes.openai import ChatRequest, FakeOpenAI

    def faithful(req: ChatRequest) -> str:
        n = req.passage_with("Lyon")
        return f'A bakery in Lyon won. "won the national bread prize on Sunday" [{n}].'

    w = discord_world
    with FakeOpenAI() as llm:
        bot_settings.llm.base_url, bot_settings.llm.model = llm.base_url, "fake"
        llm.reply = faithful
        llm.piece_delay = 0.1
        async with start_bot():
            await w.fake.send_message(w.channel, w.user, BREAD_Q, mention_bot=True)
            await w.fake.wait_for(
                lambda: w.fake.messages[w.channel] and w.fake.messages[w.channel][0]["components"],
                timeout=15,
            )
            (reply,) = w.fake.messages[w.channel]
            assert "Written by" in str(reply)
            up, _down = vote_ids(reply)
            writes = [
                r.body
                for r in w.fake.request_log
                if r.path.startswith(f"/channels/{w.channel}/messages")
                and r.method in ("POST", "PATCH")
            ]
            assert len(writes) >= 2
            assert all(not b.get("components") for b in writes[:-1])  # partial states: none
            inter = await w.fake.click_button(int(reply["id"]), up, user_id=w.user)
            assert response_text(inter)[0] == "Thanks — recorded 👍"
    c = sqlite3.connect(Path(bot_settings.data_dir) / DB_NAME)
    assert c.execute("SELECT COUNT(*) FROM feedback_answers").fetchone()[0] == 1  # logged once
