"""The bot under hostile conditions, against the loopback fake Discord.

- ``/add`` refuses a loopback URL when ``fetch.allow_hosts`` is empty (safe fetching end to end);
- the token never appears in logs (DEBUG), replies, ``/stats`` or ``newsdesk stats``, even when an
  error carries it (bot/redact.py scrubs every log record);
- load: 20 users send 200 questions (mentions and ``/ask``) within ~10 s: all answered, no
  gateway disconnect, heartbeats keep flowing; p50/p95 latency and RSS growth are reported
  (printed and written to ``reliability-load.json`` in the pytest tmp dir). With
  ``NEWSDESK_SOAK_MINUTES=N`` the same load runs for N minutes (skipped otherwise).
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import os
import random
import statistics
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from bot.client import NewsdeskBot
from bot.redact import REDACTED, RedactingFilter, SecretRedactor
from index.cli import main as cli_main
from index.config import Settings
from index.pipeline import Pipeline
from tests.bot.test_bot import bot_posts
from tests.bot.test_bot_admin import HARBOUR, admin_at, private_reply
from tests.conftest import DiscordWorld, _fakediscord
from tests.fakes.corpus import figures_path, write_corpus, write_figures
from tests.fakes.http import LoopbackServer

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"


# -- safe fetching through /add --------------------------------------------------------------------


async def test_add_refuses_a_loopback_url_when_allow_hosts_is_empty(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_settings: Settings,
    bot_pipeline: Pipeline,
) -> None:
    fake = discord_world.fake
    assert bot_settings.fetch.allow_hosts == []  # the default
    generation = bot_pipeline.store.generation()
    with LoopbackServer() as srv:
        srv.route("/harbour.html", HARBOUR)
        async with start_bot():
            for url in (srv.url("/harbour.html"), f"http://localhost:{srv.port}/harbour.html"):
                inter = await fake.invoke_command("add", {"url": url}, **admin_at(discord_world))
                await inter.wait_done()
                text = private_reply(inter)
                # the member sees "not allowed"; what it resolved to is in the log only
                assert text.endswith(": not allowed"), text
                assert "loopback" not in text and "allow\\_hosts" not in text, text
        assert srv.requests == []  # never contacted
    assert bot_pipeline.store.generation() == generation
    assert len(bot_pipeline.list_articles()) == 3


# -- secrets ---------------------------------------------------------------------------------------


def test_redactor_scrubs_messages_arguments_tracebacks_and_stacks() -> None:
    secret = "MTIzNDU2Nzg5.unit-test-secret.abcdefghij"
    r = SecretRedactor()
    r.add(secret)
    r.add("short")  # too short to be a token: ignored
    assert r.secrets == (secret,)
    log = logging.getLogger("newsdesk.test.redact")

    def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
        exc_info = (type(exc), exc, exc.__traceback__) if exc else None
        return log.makeRecord(log.name, logging.ERROR, __file__, 1, msg, args, exc_info)

    rec = r.scrub(record("header %s and %r", f"Bot {secret}", {"token": secret}))
    assert secret not in rec.getMessage() and rec.getMessage().count(REDACTED) == 2
    try:
        raise RuntimeError(f"401 for Authorization: Bot {secret}")
    except RuntimeError as e:
        rec = r.scrub(record("failed", exc=e))
    formatted = logging.Formatter().format(rec)
    assert secret not in formatted and REDACTED in formatted and "RuntimeError" in formatted
    rec = record("stack")
    rec.stack_info = f"Stack (most recent call last):\n  token={secret}"
    assert secret not in (r.scrub(rec).stack_info or "")
    rec = record("bad %d format", secret)  # a broken format string still gets scrubbed
    assert secret not in str(r.scrub(rec).msg) + str(rec.args)
    clean = record("nothing secret %s", 42)
    assert r.scrub(clean).getMessage() == "nothing secret 42" and clean.args == (42,)
    # as a handler filter, for records made elsewhere
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(r))
    handler.handle(logging.makeLogRecord({"msg": f"raw {secret}", "levelno": logging.INFO}))
    assert secret not in stream.getvalue() and REDACTED in stream.getvalue()


async def test_token_never_appears_in_logs_replies_or_stats(
    discord_world: DiscordWorld,
    bot_settings: Settings,
    bot_pipeline: Pipeline,
    hash_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, w = discord_world.fake, discord_world
    token = "MTEyMjMzNDQ1NTY2Nzc4ODk5.NEWSDESK-TOKEN-MUST-NOT-LEAK.a1b2c3d4e5f6g7h8i9j0"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    assert bot_settings.discord_token == token
    caplog.set_level(logging.DEBUG)
    real_ask = bot_pipeline.ask

    def leaky_ask(question: str, k: int | None = None) -> Any:
        if "explode" in question:  # an error whose text carries the token (e.g. a library's)
            raise RuntimeError(f"upstream said 401 for Authorization: Bot {token}")
        return real_ask(question, k)

    monkeypatch.setattr(bot_pipeline, "ask", leaky_ask)
    bot_settings.discord.admin_guild_ids = [w.guild]  # /stats below
    bot = NewsdeskBot(bot_settings, bot_pipeline)
    async with _fakediscord().run_bot(fake, bot, token=token):
        where = {"user_id": w.user, "guild_id": w.guild, "channel_id": w.channel}
        inter = await fake.invoke_command("ask", {"question": "please explode"}, **where)
        await inter.wait_done()
        assert "Something went wrong (ref " in str(private_reply(inter))
        await fake.send_message(w.channel, w.user, "explode again", mention_bot=True)
        await fake.wait_for(lambda: fake.messages[w.channel], timeout=5)
        assert "Something went wrong" in fake.messages[w.channel][-1]["content"]
        inter = await fake.invoke_command("ask", {"question": "   "}, **where)
        await inter.wait_done()
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where)
        await inter.wait_done()
        assert "Lyon" in inter.original["embeds"][0]["description"]
        # a library logging a header at DEBUG
        logging.getLogger("discord.http").debug("sending headers %s", {"Authorization": token})
        stats = await fake.invoke_command("stats", **admin_at(w))
        await stats.wait_done()
        stats_text = json.dumps(stats.original)
        assert "Articles" in stats_text
    # `newsdesk stats`, plain, JSON and with debug logging, with the token in the environment
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        for args in (["stats"], ["stats", "--json"], ["-vv", "stats"], ["-vv", "check"]):
            out = io.StringIO()
            data = str(bot_settings.data_dir)
            code = cli_main(["--config", str(hash_config), "--data-dir", data, *args], out)
            assert code == 0
            assert token not in out.getvalue() + capsys.readouterr().err
    finally:  # the CLI reconfigures logging (basicConfig(force=True)): put pytest's back
        root.handlers[:], root.level = handlers, level

    assert token not in caplog.text
    formatter = logging.Formatter("%(message)s")
    for rec in caplog.records:
        assert token not in formatter.format(rec), rec
        if rec.exc_info and rec.exc_info[1] is not None:
            assert token not in "".join(traceback.format_exception(*rec.exc_info))
    assert sum(REDACTED in formatter.format(r) for r in caplog.records) >= 3  # it had work
    assert any(r.levelno >= logging.ERROR and "ref" in r.getMessage() for r in caplog.records)
    for body in bot_posts(fake):
        assert token not in json.dumps(body)
    for messages in fake.messages.values():
        assert token not in json.dumps(messages)


# -- load ------------------------------------------------------------------------------------------

USERS = 20
QUESTIONS = 200
WINDOW_S = 8.0  # questions are sent over this many seconds (within the required 10 s)
LOAD_ARTICLES = 40


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def forget_recordings(fake: Any) -> None:
    """Drop what the fake Discord recorded (every request, message and interaction so far):
    it lives in this process too, and would otherwise dominate the memory figures."""
    for name in ("request_log", "requests", "interactions", "dispatched"):
        getattr(fake, name).clear()
    for name in (
        "messages",
        "_all_messages",
        "_history",
        "_interactions",
        "_interactions_by_token",
    ):
        getattr(fake, name).clear()
    gc.collect()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_load(
    fake: Any,
    w: DiscordWorld,
    users: list[int],
    rnd: random.Random,
    questions: int,
    reference: list[tuple[str, str]],
) -> dict[str, Any]:
    """Send ``questions`` questions from ``users`` (half mentions, half /ask) over WINDOW_S.

    ``reference``: (question, the quote the engine answers it with); every reply must carry
    the quote of its own question.
    """
    plan = sorted(rnd.uniform(0, WINDOW_S) for _ in range(questions))
    sent: dict[str, tuple[float, str, str, Any]] = {}  # key -> (t0, kind, expected, handle)
    done: dict[str, float] = {}
    beats0 = fake.heartbeats
    t_start = time.monotonic()
    seen = len(fake.messages[w.channel])
    stop = asyncio.Event()

    async def monitor() -> None:
        nonlocal seen
        while not stop.is_set():
            now = time.monotonic()
            msgs = fake.messages[w.channel]
            for m in msgs[seen:]:
                ref = (m.get("message_reference") or {}).get("message_id")
                if ref is not None and f"m{ref}" in sent:
                    done[f"m{ref}"] = now
            seen = len(msgs)
            for key, (_, kind, _, inter) in sent.items():
                if kind == "ask" and key not in done and inter.is_done():
                    done[key] = now
            await asyncio.sleep(0.005)

    mon = asyncio.create_task(monitor())
    for n, at in enumerate(plan):
        delay = t_start + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        user = users[n % len(users)]
        q, expected = rnd.choice(reference)
        t0 = time.monotonic()
        if n % 2:
            msg = await fake.send_message(w.channel, user, q, mention_bot=True)
            sent[f"m{msg['id']}"] = (t0, "mention", expected, msg)
        else:
            inter = await fake.invoke_command(
                "ask", {"question": q}, user_id=user, guild_id=w.guild, channel_id=w.channel
            )
            sent[f"i{inter.id}"] = (t0, "ask", expected, inter)
    sent_within = time.monotonic() - t_start
    await fake.wait_for(lambda: len(done) == len(sent), timeout=60, description="all answered")
    stop.set()
    await mon
    elapsed = time.monotonic() - t_start

    # every question got its own, right answer
    replies = {
        str((m.get("message_reference") or {}).get("message_id")): m
        for m in fake.messages[w.channel]
    }
    for key, (_, kind, expected, handle) in sent.items():
        if kind == "mention":
            body = replies[str(handle["id"])]
        else:
            assert not handle.expired and handle.deferred(), handle
            body = handle.original
        assert expected in body["embeds"][0]["description"], (key, body)
    latencies = [(done[k] - t0) * 1000 for k, (t0, *_) in sent.items()]
    return {
        "questions": len(sent),
        "users": len(users),
        "sent_within_s": round(sent_within, 2),
        "all_answered_after_s": round(elapsed, 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
        "heartbeats": fake.heartbeats - beats0,
        "rss_mb_after": round(rss_mb(), 1),  # this process: the bot *and* the fake's recordings
    }


async def _load(
    discord_world: DiscordWorld,
    bot_settings: Settings,
    fake_embedder: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    rounds: int | None,
    minutes: float | None,
    name: str,
    basetemp: Path,
) -> dict[str, Any]:
    fake, w = discord_world.fake, discord_world
    caplog.set_level(logging.WARNING)
    users = [w.user]
    for i in range(USERS - 1):
        u = fake.add_user(f"reader{i}")
        fake.add_member(w.guild, u)
        users.append(u)
    corpus = write_corpus(tmp_path / "load-corpus", range(LOAD_ARTICLES))
    rnd = random.Random(42)
    with Pipeline(bot_settings, fake_embedder) as pipe:
        pipe.add([str(corpus)])
        reference = []
        for town in range(LOAD_ARTICLES):
            q = f"Who opened the exhibition in Town{town}?"
            quote = pipe.ask(q).quote
            if quote is not None and f"Town{town} " in quote.text:
                reference.append((q, quote.text))
        assert len(reference) >= LOAD_ARTICLES // 2
        bot = NewsdeskBot(bot_settings, pipe)
        async with _fakediscord().run_bot(fake, bot):
            identifies, disconnects = fake.identifies, fake.disconnects
            gc.collect()
            rss0 = rss_mb()
            per_round = []
            t0 = time.monotonic()
            while True:
                per_round.append(await run_load(fake, w, users, rnd, QUESTIONS, reference))
                if rounds is not None and len(per_round) >= rounds:
                    break
                if minutes is not None and time.monotonic() - t0 >= minutes * 60:
                    break
                forget_recordings(fake)  # a soak measures the bot, not the fake's memory
            gc.collect()
            rss1 = rss_mb()
            assert fake.disconnects == disconnects == 0
            assert fake.identifies == identifies == 1 and fake.resumes == 0
            latency_ms = bot.latency * 1000
            disconnects_during = fake.disconnects - disconnects
    assert fake.errors == [] and fake.unexpected == []
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == [], [r.getMessage() for r in problems]
    for r in per_round:
        assert r["heartbeats"] > 0  # the gateway kept beating during every round
    figures = {
        "rounds": per_round if len(per_round) <= 3 else per_round[:1] + per_round[-2:],
        "round_count": len(per_round),
        "rss_mb_per_round": [r["rss_mb_after"] for r in per_round],
        "rss_mb_start": round(rss0, 1),
        "rss_mb_end": round(rss1, 1),
        "rss_growth_mb": round(rss1 - rss0, 1),
        "heartbeat_latency_ms": round(latency_ms, 1),
        "disconnects": disconnects_during,
    }
    write_figures(figures_path(basetemp, name), figures)
    return figures


@pytest.mark.slow
async def test_load_20_users_200_questions(
    discord_world: DiscordWorld,
    bot_settings: Settings,
    fake_embedder: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    figures = await _load(
        discord_world,
        bot_settings,
        fake_embedder,
        tmp_path,
        caplog,
        rounds=1,
        minutes=None,
        name="load",
        basetemp=tmp_path_factory.getbasetemp(),
    )
    (r,) = figures["rounds"]
    assert r["questions"] == QUESTIONS and r["users"] == USERS


SOAK_MINUTES = float(os.environ.get("NEWSDESK_SOAK_MINUTES") or 0)


@pytest.mark.slow
@pytest.mark.timeout(int(SOAK_MINUTES * 60 * 1.5) + 300)
@pytest.mark.skipif(not SOAK_MINUTES, reason="set NEWSDESK_SOAK_MINUTES=N to soak for N minutes")
async def test_soak(
    discord_world: DiscordWorld,
    bot_settings: Settings,
    fake_embedder: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    figures = await _load(
        discord_world,
        bot_settings,
        fake_embedder,
        tmp_path,
        caplog,
        rounds=None,
        minutes=SOAK_MINUTES,
        name="soak",
        basetemp=tmp_path_factory.getbasetemp(),
    )
    assert figures["round_count"] >= 1
