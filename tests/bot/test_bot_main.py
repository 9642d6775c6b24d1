"""Starting the bot: entry points, token, config, command sync, a responsive event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from bot.__main__ import main as bot_main
from bot.__main__ import run_bot, serve
from bot.client import NewsdeskBot, intents_for
from index.config import Settings, load_settings
from index.embedding.hashing import HashEmbedder
from index.errors import ConfigError, IndexMismatchError
from index.pipeline import Pipeline
from tests.conftest import ROOT, DiscordWorld, GatedEmbedder
from tests.fakes.http import closed_port

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

BREAD_Q = "Who won the national bread prize?"


def where(w: DiscordWorld) -> dict[str, int]:
    return {"user_id": w.user, "guild_id": w.guild, "channel_id": w.channel}


# -- entry points ----------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Any:
    """In-process CLI runs call logging.basicConfig(force=True) on a captured stderr: undo it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_run_bot_needs_a_token(settings: Settings) -> None:
    assert "DISCORD_TOKEN" not in os.environ
    with pytest.raises(ConfigError, match="DISCORD_TOKEN is not set"):
        run_bot(settings)


def newsdesk(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`newsdesk ARGS` in a fresh process (`run` execs `python -m bot`, which would replace
    the test process if called in it), without DISCORD_TOKEN unless ``env`` sets it."""
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "index.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_newsdesk_run_without_token_is_one_line(tmp_path: Path) -> None:
    r = newsdesk("--data-dir", str(tmp_path / "d"), "run")
    assert r.returncode == 1
    assert r.stderr.startswith("newsdesk: error: DISCORD_TOKEN is not set")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_newsdesk_run_starts_newsdesks_bot_not_one_in_the_working_directory(
    tmp_path: Path,
) -> None:
    """`newsdesk run` execs `python -m bot`: a `bot` package in the folder it is started from
    (another project's) must not be the one that runs."""
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "__main__.py").write_text("print('the wrong bot')\nraise SystemExit(7)\n")
    r = newsdesk("--data-dir", str(tmp_path / "d"), "run", "--check", cwd=tmp_path)
    assert "the wrong bot" not in r.stdout and r.returncode == 1
    assert r.stdout.startswith("token:       DISCORD_TOKEN is not set: the bot cannot")


def test_python_m_bot_without_token_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env["NEWSDESK_DATA_DIR"] = str(tmp_path / "d")
    r = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 1
    assert r.stderr.startswith("newsdesk: error: DISCORD_TOKEN is not set")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_python_m_bot_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    with pytest.raises(SystemExit) as exit_:
        bot_main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--data-dir" in out and "DISCORD_TOKEN" in out
    assert "--check" in out and "--quiet" in out  # what `newsdesk run` passes on
    bad = tmp_path / "bad.toml"
    bad.write_text("[discord]\ncooldown_rate = 0\n", encoding="utf-8")
    assert bot_main(["--config", str(bad)]) == 1
    assert "discord.cooldown_rate" in capsys.readouterr().err


def test_config_example_works_as_is(tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    settings = load_settings(ROOT / "config.example.toml", data_dir=tmp_path / "d")
    intents = intents_for(settings)
    assert intents.guilds and intents.guild_messages and intents.dm_messages
    assert not intents.message_content and not intents.members and not intents.presences
    settings.discord.message_content = True
    assert intents_for(settings).message_content
    with Pipeline(settings, fake_embedder) as pipe:
        bot = NewsdeskBot(settings, pipe)
        assert bot.allowed_mentions is not None
        assert bot.allowed_mentions.to_dict() == {"parse": []}
        assert bot.cooldowns.rate == 3 and bot.cooldowns.per == 5.0


async def test_serve_from_settings_answers_and_stops_on_sigterm(
    discord_world: DiscordWorld,
    hash_config: Path,
    corpus_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real start path (`run_bot` minus asyncio.run): settings only, no injected pipeline."""
    fake = discord_world.fake
    token = "secret-token-do-not-log-7f3a9c"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    settings = load_settings(hash_config, data_dir=tmp_path / "served")
    assert settings.discord_token == token
    with Pipeline(settings) as p:  # `newsdesk index` beforehand
        p.add([str(corpus_dir)])
    caplog.set_level(logging.DEBUG)
    with fake.patch_discord():
        task = asyncio.create_task(serve(settings, token))
        await fake.wait_for(lambda: fake.identifies == 1 and fake.synced_commands, timeout=10)
        await fake.wait_until_ready()
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await inter.wait_done()
        assert "Lyon" in inter.original["embeds"][0]["description"]
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
        os.kill(os.getpid(), signal.SIGTERM)  # a service manager stopping the bot
        assert await asyncio.wait_for(task, 10) == 0
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert token not in caplog.text  # never logged, even at DEBUG
    assert "index loaded in" in caplog.text


async def test_a_mismatched_index_stops_start_up_with_its_message(
    discord_world: DiscordWorld, bot_settings: Settings, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    with (
        Pipeline(bot_settings, HashEmbedder(dimension=32)) as other,
        fake.patch_discord(),
        pytest.raises(IndexMismatchError, match="newsdesk reindex"),
    ):
        await asyncio.wait_for(serve(bot_settings, "fake-token", other), 10)


async def test_a_rejected_token_is_a_config_error(
    discord_world: DiscordWorld, bot_settings: Settings, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake

    async def unauthorized(*args: Any, **kwargs: Any) -> Any:
        return fake._json({"message": "401: Unauthorized", "code": 0}, 401)

    fake._r_get_me = unauthorized
    fake._register_routes()
    with fake.patch_discord(), pytest.raises(ConfigError, match="refused the token"):
        await asyncio.wait_for(serve(bot_settings, "wrong-token", bot_pipeline), 10)


# -- set-up and command sync -----------------------------------------------------------------------


async def test_setup_hook_loads_index_and_model_in_a_worker_thread(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    gated_pipeline: Pipeline,
    gated_embedder: GatedEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[threading.Thread] = []
    real_snapshot = gated_pipeline.snapshot

    def snapshot() -> Any:
        threads.append(threading.current_thread())
        return real_snapshot()

    monkeypatch.setattr(gated_pipeline, "snapshot", snapshot)
    gated_embedder.queries = 0
    async with start_bot(pipeline=gated_pipeline) as bot:
        assert threads and threads[0] is not threading.main_thread()
        assert gated_embedder.queries == 1  # the model was warmed up before the first question
        assert bot.load_seconds is not None and bot.ready_seconds is not None
        assert bot.ready_seconds >= bot.load_seconds


async def test_commands_sync_once_and_only_when_they_change(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    bot_settings: Settings,
) -> None:
    fake, guild = discord_world.fake, discord_world.guild
    data = Path(bot_settings.data_dir)
    async with start_bot() as bot:
        assert fake.sync_calls == 1 and bot.synced == ["global"]
        n_commands = len(bot.tree.get_commands())  # every slash command of every cog
        assert n_commands >= 7 and len(fake.synced_commands[None]) == n_commands
    digest = (data / "discord-commands.sha256").read_text()
    async with start_bot() as bot:  # a restart with the same commands: no PUT
        assert fake.sync_calls == 1 and bot.synced == []
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await inter.wait_done()
    # a changed command: the question option's max_length follows answer.max_question_chars
    # (each start loads the cogs afresh as extensions, so the config is what changes them)
    bot_settings.answer.max_question_chars = 700
    async with start_bot() as bot:  # a changed command: synced again
        assert fake.sync_calls == 2 and bot.synced == ["global"]
        ask = next(c for c in fake.synced_commands[None] if c["name"] == "ask")
        question = next(o for o in ask["options"] if o["name"] == "question")
        assert question["max_length"] == 700
    assert (data / "discord-commands.sha256").read_text() != digest

    bot_settings.discord.guild_ids = [guild]  # instant updates in one server
    async with start_bot() as bot:
        assert bot.synced == [f"guild {guild}", "global"]  # the global copies are cleared
        assert len(fake.synced_commands[guild]) == n_commands and fake.synced_commands[None] == []
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await inter.wait_done()
        assert "Lyon" in inter.original["embeds"][0]["description"]
    calls = fake.sync_calls
    async with start_bot() as bot:
        assert fake.sync_calls == calls and bot.synced == []
    bot_settings.discord.guild_ids = []  # back to global: the guild's copies are cleared
    async with start_bot() as bot:
        assert bot.synced == ["global"]
        assert len(fake.synced_commands[None]) == n_commands and fake.synced_commands[guild] == []
    assert not (data / f"discord-commands-{guild}.sha256").exists()


# -- a responsive event loop -----------------------------------------------------------------------


async def test_heartbeat_keeps_flowing_while_answering(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    gated_pipeline: Pipeline,
    gated_embedder: GatedEmbedder,
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    async with start_bot(pipeline=gated_pipeline):
        gated_embedder.query_delay = 1.5  # a slow embedding (first load, big model, busy CPU)
        gated_embedder.query_entered.clear()
        lags: list[float] = []

        async def probe() -> None:
            while True:
                t = time.monotonic()
                await asyncio.sleep(0.02)
                lags.append(time.monotonic() - t - 0.02)

        prober = asyncio.create_task(probe())
        await fake.send_message(ch, discord_world.user, BREAD_Q, mention_bot=True)
        await fake.wait_for(gated_embedder.query_entered.is_set, timeout=5)
        beats = fake.heartbeats
        inter = await fake.invoke_command(
            "ask", {"question": "When did the volcano erupt?"}, **where(discord_world)
        )
        await fake.wait_for(lambda: inter.callbacks, timeout=2)
        assert inter.callbacks[0]["type"] == 5 and not inter.expired  # deferred meanwhile
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        prober.cancel()
        assert fake.heartbeats >= beats + 4  # 200 ms interval, ~1.5 s of embedding
        assert max(lags) < 0.25, max(lags)
        await inter.wait_done(timeout=5)


# -- start-up in production (issue 18) -------------------------------------------------------


async def test_no_network_at_start_is_one_line_and_retried_with_backoff(
    discord_world: DiscordWorld,
    bot_settings: Settings,
    bot_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import discord

    import bot.client

    fake = discord_world.fake
    bots: list[Any] = []
    create_bot = bot.client.create_bot

    def create(settings: Settings, pipeline: Pipeline | None = None) -> Any:
        made = create_bot(settings, pipeline)
        made._connection.guild_ready_timeout = 0.05
        bots.append(made)
        return made

    monkeypatch.setattr(bot.client, "create_bot", create)
    # nothing listens where Discord should be: the connection is refused
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{closed_port()}/api/v10")
    delays: list[float] = []
    network = contextlib.ExitStack()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            network.enter_context(fake.patch_discord())  # the network comes back

    caplog.set_level(logging.INFO)
    with network:
        task = asyncio.create_task(serve(bot_settings, "fake-token", bot_pipeline, sleep=sleep))
        await fake.wait_for(lambda: bots and bots[-1].is_ready(), timeout=10)
        inter = await fake.invoke_command("ask", {"question": BREAD_Q}, **where(discord_world))
        await inter.wait_done()
        await bots[-1].close()
        assert await asyncio.wait_for(task, 10) == 0
    assert delays == [5.0, 10.0] and len(bots) == 3
    lines = [r.getMessage() for r in caplog.records if "cannot reach Discord" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        "cannot reach Discord (DNS/network): retrying in 5 s (cannot connect to 127.0.0.1:"
    )
    assert lines[1].startswith("cannot reach Discord (DNS/network): retrying in 10 s")
    assert not [r for r in caplog.records if r.exc_info]  # no traceback anywhere
    assert "voice will NOT be supported" not in caplog.text


def test_voice_library_warnings_are_silenced(
    settings: Settings,
    fake_embedder: HashEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import discord

    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True, raising=False)
    caplog.set_level(logging.WARNING)
    with Pipeline(settings, fake_embedder) as pipe:
        NewsdeskBot(settings, pipe)
    assert "PyNaCl" not in caplog.text and "davey" not in caplog.text


async def test_reply_in_thread_without_message_content_warns_at_start(
    start_bot: StartBot, bot_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="newsdesk.bot")
    async with start_bot():
        pass
    assert "reply_in_thread" not in caplog.text  # off by default: nothing to say
    bot_settings.discord.reply_in_thread = True
    async with start_bot():
        pass
    assert (
        "discord.reply_in_thread is on but discord.message_content is false: follow-up "
        "questions in the bot's threads arrive without their text"
    ) in caplog.text


def test_run_check_reports_without_connecting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    import base64

    import discord

    # any attempt to reach Discord would be refused: --check must not need it
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{closed_port()}/api/v10")
    app_id = 1234567890123456789
    token = base64.b64encode(str(app_id).encode()).decode().rstrip("=") + ".GsEcRt.k3y-part"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    config = tmp_path / "config.toml"
    config.write_text(
        "[discord]\nguild_ids = [111111111111111111]\nchannel_ids = [222222222222222222]\n"
        "reply_in_thread = true\n",
        encoding="utf-8",
    )
    args = ["--config", str(config), "--data-dir", str(tmp_path / "d"), "--check"]
    assert bot_main(args) == 0
    text = capsys.readouterr().out
    assert token not in text and "GsEcRt" not in text
    assert f"token:       DISCORD_TOKEN is set (application id {app_id})" in text
    assert "intents:     guilds, guild_messages, dm_messages\n" in text
    assert "privileged:  none" in text
    perms = discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        read_message_history=True,
        create_public_threads=True,
        send_messages_in_threads=True,
    ).value
    assert (
        f"invite:      https://discord.com/oauth2/authorize?client_id={app_id}"
        f"&permissions={perms}&integration_type=0&scope=bot+applications.commands\n"
    ) in text
    assert "synced to servers 111111111111111111 only" in text
    assert "every message in channels 222222222222222222" in text
    assert "warning:     discord.channel_ids is set but discord.message_content is false" in text
    assert "warning:     discord.reply_in_thread is on" in text

    # without a token: the same report, the missing token said first, exit status 1
    monkeypatch.delenv("DISCORD_TOKEN")
    assert bot_main(args) == 1
    without = capsys.readouterr().out
    assert without.startswith("token:       DISCORD_TOKEN is not set: the bot cannot")
    assert "client_id=YOUR_APPLICATION_ID" in without

    # `newsdesk run --check` is `python -m bot --check`: the same report, the same exit status
    cli = ["--config", str(config), "--data-dir", str(tmp_path / "d"), "run", "--check"]
    r = newsdesk(*cli, env={"DISCORD_TOKEN": token})
    assert (r.returncode, r.stdout) == (0, text)
    r = newsdesk(*cli)
    assert (r.returncode, r.stdout) == (1, without)


async def test_cogs_are_extensions_loaded_in_order_and_reloadable(start_bot: StartBot) -> None:
    from bot.client import INITIAL_EXTENSIONS

    async with start_bot() as bot:
        assert list(bot.extensions) == list(INITIAL_EXTENSIONS)
        assert {type(c).__name__ for c in bot.cogs.values()} == {
            "AskCog",
            "ArticlesCog",
            "AdminCog",
            "SubscriptionsCog",
            "ScopeCog",
            "BriefCog",
            "FeedbackCog",
            "ForumCog",
        }
        assert bot.tree.get_command("article") is not None
        await bot.unload_extension("bot.cogs.articles")  # an extension takes its commands along
        assert bot.tree.get_command("article") is None and "ArticlesCog" not in bot.cogs
        await bot.load_extension("bot.cogs.articles")
        assert bot.tree.get_command("article") is not None
