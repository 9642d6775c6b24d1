"""Admin slash commands: /add, /remove, /reindex, /stats — permissions, progress, busy index."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.checks import check_url, is_manager
from bot.interactions import NotAllowedHere
from bot.relay import ProgressRelay
from index.config import Settings
from index.errors import NewsdeskError
from index.pipeline import Pipeline
from tests.conftest import DiscordWorld, GatedEmbedder
from tests.fakes.discord import CommandNotAvailable
from tests.fakes.http import LoopbackServer, closed_port

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

EPHEMERAL = 1 << 6
MANAGE_GUILD = 1 << 5
HARBOUR = """<html><head><title>Harbour cranes get a new owner</title></head><body><article>
<h1>Harbour cranes get a new owner</h1>
<p>The port authority of Valmare sold its three harbour cranes to a Dutch shipping firm on
Monday. The firm paid eleven million euros for the cranes.</p>
<p>Dock workers said the cranes would keep working in Valmare until the end of the year.</p>
</article></body></html>"""


def admin_at(w: DiscordWorld) -> dict[str, Any]:
    return {"user_id": w.admin, "guild_id": w.guild, "channel_id": w.channel}


def user_at(w: DiscordWorld) -> dict[str, Any]:
    return {"user_id": w.user, "guild_id": w.guild, "channel_id": w.channel}


async def final_content(fake: Any, inter: Any, prefix: str = "✅", timeout: float = 10) -> str:
    await fake.wait_for(
        lambda: inter.original is not None and inter.original.get("content", "").startswith(prefix),
        timeout,
        description=f"final reply starting with {prefix!r} ({inter!r})",
    )
    return str(inter.original["content"])


def private_reply(inter: Any) -> str:
    """The text of an ephemeral refusal/error, whichever way it was sent; asserts ephemeral."""
    msg = inter.followups[-1] if inter.followups else inter.original
    assert msg is not None and msg["flags"] & EPHEMERAL, (inter, msg)
    if inter.deferred() and not inter.ephemeral():
        assert inter.original_deleted  # no public "thinking…" left behind
    return str(msg["content"])


async def test_admin_commands_are_registered_for_managers_only(
    discord_world: DiscordWorld, start_bot: StartBot
) -> None:
    fake = discord_world.fake
    async with start_bot():
        synced = {c["name"]: c for c in fake.synced_commands[None]}
        admin = (
            *("add", "remove", "reindex", "stats", "subscribe", "unsubscribe", "subscriptions"),
            *("feedback", "gaps", "scope"),
        )
        assert set(synced) == {"ask", "search", "article", "brief", *admin}
        for name in admin:
            assert int(synced[name]["default_member_permissions"]) == MANAGE_GUILD
            assert synced[name]["contexts"] == [0]  # guild only
        for name in ("ask", "search", "article", "brief"):
            assert synced[name]["default_member_permissions"] is None
        with pytest.raises(CommandNotAvailable):
            await fake.invoke_command("reindex", **user_at(discord_world))


async def test_runtime_permission_check_when_a_server_opens_the_command(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    generation = bot_pipeline.store.generation()
    async with start_bot():
        # a server owner lets everyone see /reindex (Integrations settings): Discord now offers
        # it to plain members, so the bot's own check is what stops them
        for cmd in fake.synced_commands[None]:
            if cmd["name"] in ("reindex", "add"):
                cmd["default_member_permissions"] = None
        inter = await fake.invoke_command("reindex", **user_at(discord_world))
        await inter.wait_done()
        assert inter.callback_types == [4]
        assert private_reply(inter) == (
            "Only members with the **Manage Server** permission can use this command."
        )
        inter = await fake.invoke_command(
            "add", {"url": "https://example.com/a"}, **user_at(discord_world)
        )
        await inter.wait_done()
        assert "Manage Server" in private_reply(inter)
    assert bot_pipeline.store.generation() == generation  # nothing was re-indexed


async def test_is_manager_check_names_servers_users_and_roles() -> None:
    """Manage Server counts only in the servers the operator named (admin_guild_ids, else
    guild_ids); admin_user_ids, admin_role_ids and the application's owner count anywhere."""
    HOME, STRANGER, OWNER, OPERATOR, ROLE = 11, 22, 33, 44, 55
    settings = Settings()

    async def is_owner(user: Any) -> bool:
        return bool(user.id == OWNER)

    def inter(
        guild: int | None, perms: discord.Permissions, user: int = 99, roles: tuple[int, ...] = ()
    ) -> Any:
        member = SimpleNamespace(id=user, roles=[SimpleNamespace(id=r) for r in roles])
        if roles:
            member = discord.Member.__new__(discord.Member)
            member._user = SimpleNamespace(id=user)  # type: ignore[assignment]
            member._roles = discord.utils.SnowflakeList(list(roles))
            member.guild = SimpleNamespace(  # type: ignore[assignment]
                id=guild, get_role=lambda rid: SimpleNamespace(id=rid), default_role=None
            )
        return SimpleNamespace(
            guild=None if guild is None else SimpleNamespace(id=guild),
            permissions=perms,
            user=member,
            command=None,
            client=SimpleNamespace(settings=settings, is_owner=is_owner),
        )

    manage = discord.Permissions(manage_guild=True)
    plain = discord.Permissions(send_messages=True, manage_messages=True)
    # nothing configured: no server's managers, only the application's owner
    for guild in (HOME, STRANGER):
        with pytest.raises(NotAllowedHere, match=r"discord\.admin_guild_ids"):
            await is_manager(inter(guild, manage))
    assert await is_manager(inter(STRANGER, plain, user=OWNER))
    # guild_ids (where the commands are registered) is the default list of admin servers
    settings.discord.guild_ids = [HOME]
    assert await is_manager(inter(HOME, manage))
    with pytest.raises(NotAllowedHere, match=str(STRANGER)):
        await is_manager(inter(STRANGER, manage))
    # admin_guild_ids, when set, is the list
    settings.discord.admin_guild_ids = [STRANGER]
    assert await is_manager(inter(STRANGER, manage))
    with pytest.raises(NotAllowedHere):
        await is_manager(inter(HOME, manage))
    # a plain member of an admin server still needs Manage Server
    with pytest.raises(app_commands.MissingPermissions):
        await is_manager(inter(STRANGER, plain))
    # named users anywhere; a named role wherever it is held
    settings.discord.admin_user_ids = [OPERATOR]
    settings.discord.admin_role_ids = [ROLE]
    assert await is_manager(inter(HOME, plain, user=OPERATOR))
    assert await is_manager(inter(HOME, plain, roles=(ROLE,)))
    with pytest.raises(app_commands.MissingPermissions):
        await is_manager(inter(HOME, plain, roles=(ROLE + 1,)))
    with pytest.raises(app_commands.NoPrivateMessage):
        await is_manager(inter(None, discord.Permissions.all(), user=OPERATOR))


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "/etc/passwd",
        "file:///etc/passwd",
        "ftp://example.com/feed.xml",
        "https://",
        "samples/",
        "https://exa mple.com",
    ],
)
def test_check_url_refuses_everything_but_http(url: str) -> None:
    with pytest.raises(NewsdeskError, match=r"http\(s\) address"):
        check_url(url)


async def test_add_a_loopback_page_then_ask_about_it(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    bot_settings.fetch.allow_hosts = ["127.0.0.1:*"]
    with LoopbackServer() as srv:
        srv.route("/harbour.html", HARBOUR)
        url = srv.url("/harbour.html")
        async with start_bot():
            inter = await fake.invoke_command("add", {"url": url}, **admin_at(discord_world))
            text = await final_content(fake, inter)
            assert inter.callbacks[0]["type"] == 5 and not inter.expired
            assert text.startswith(f"✅ Indexed <{url}>: 1 added, 0 updated, 0 unchanged")
            assert "• Harbour cranes get a new owner" in text
            assert inter.original["mentions"] == []

            await fake.send_message(
                discord_world.channel,
                discord_world.user,
                "Who bought the harbour cranes of Valmare?",
                mention_bot=True,
            )
            ch = discord_world.channel
            await fake.wait_for(lambda: fake.messages[ch], timeout=5)
            desc = fake.messages[ch][0]["embeds"][0]["description"]
            assert "sold its three harbour cranes to a Dutch shipping firm" in desc
            assert f"[Harbour cranes get a new owner]({url})" in desc


async def test_add_refuses_bad_urls_privately(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    before = len(bot_pipeline.list_articles())
    async with start_bot():
        for url in ("not a url", "/etc/passwd", "file:///etc/passwd"):
            inter = await fake.invoke_command("add", {"url": url}, **admin_at(discord_world))
            await inter.wait_done()
            assert inter.callback_types == [4]  # refused at once, no "thinking…"
            assert private_reply(inter).startswith(
                "Give the http(s) address of a web page or an RSS/Atom feed"
            )
    assert len(bot_pipeline.list_articles()) == before


async def test_add_unreachable_or_missing_page_reports_the_reason(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    fake = discord_world.fake
    bot_settings.fetch.allow_hosts = ["127.0.0.1:*"]
    bot_settings.fetch.timeout = 2.0
    with LoopbackServer() as srv:
        async with start_bot():
            inter = await fake.invoke_command(
                "add", {"url": srv.url("/missing.html")}, **admin_at(discord_world)
            )
            await inter.wait_done()
            text = private_reply(inter)
            assert "404" in text and "/missing.html" in text
            dead = f"http://127.0.0.1:{closed_port()}/x.html"
            inter = await fake.invoke_command("add", {"url": dead}, **admin_at(discord_world))
            await inter.wait_done()
            assert "127.0.0.1" in private_reply(inter)
            # private addresses stay refused unless allowed in the config
            bot_settings.fetch.allow_hosts = []
            inter = await fake.invoke_command(
                "add", {"url": srv.url("/missing.html")}, **admin_at(discord_world)
            )
            await inter.wait_done()
            assert private_reply(inter)


async def test_reindex_shows_throttled_progress_refuses_a_second_one_and_keeps_answering(
    discord_world: DiscordWorld,
    start_bot: StartBot,
    gated_pipeline: Pipeline,
    gated_embedder: GatedEmbedder,
) -> None:
    fake = discord_world.fake
    gated_embedder.index_delay = 0.8  # 3 passages: ~2.4 s of "embedding"
    async with start_bot(pipeline=gated_pipeline) as bot:
        assert bot.progress_interval == 1.0
        t0 = time.monotonic()
        inter = await fake.invoke_command("reindex", **admin_at(discord_world))
        edits: list[tuple[float, str]] = []

        async def watch() -> None:
            seen = 0
            while True:
                if inter.edits > seen:
                    seen = inter.edits
                    edits.append((time.monotonic(), inter.original["content"]))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        await fake.wait_for(lambda: gated_pipeline.writing, timeout=5)

        second = await fake.invoke_command("reindex", **admin_at(discord_world))
        await second.wait_done()
        assert second.callback_types == [4]
        refusal = private_reply(second)
        assert refusal.startswith("The index is being updated (/reindex, started ")
        add = await fake.invoke_command(
            "add", {"url": "https://example.com/a"}, **admin_at(discord_world)
        )
        await add.wait_done()
        assert "being updated" in private_reply(add)

        ask = await fake.invoke_command(
            "ask", {"question": "Who won the national bread prize?"}, **user_at(discord_world)
        )
        await ask.wait_done(timeout=3)
        assert "Lyon" in ask.original["embeds"][0]["description"]
        assert gated_pipeline.writing  # answered while the re-index was still running

        text = await final_content(fake, inter)
        await fake.wait_for(lambda: edits and edits[-1][1] == text, timeout=1)
        watcher.cancel()
        assert time.monotonic() - t0 < 4.5
        assert re.fullmatch(r"✅ Re-indexed 3 articles: 3 passages embedded in \d+\.\d s", text), (
            text
        )
        progress = [c for _, c in edits if c.startswith("⏳")]
        assert len(progress) >= 2 and edits[-1][1] == text, edits
        assert re.fullmatch(r"⏳ Re-indexing… .+ · \d+ s", progress[0])
        times = [t for t, _ in edits]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= 0.85 for g in gaps), gaps  # ≤ 1 edit per second, final one included
        assert times[0] - t0 >= 0.85  # the deferred reply stands for the first second

        # the engine's own writer flag (e.g. a write started elsewhere) also refuses
        with gated_pipeline.writer():
            busy = await fake.invoke_command("reindex", **admin_at(discord_world))
            await busy.wait_done()
            assert "being updated" in private_reply(busy)


async def test_remove_and_article_lookups(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command(
            "remove", {"article": "No such article at all"}, **admin_at(discord_world)
        )
        await inter.wait_done()
        assert inter.callback_types == [5]  # deferred before matching titles (issue 18)
        assert private_reply(inter).startswith("No indexed article matches")

        choices = await fake.autocomplete(
            "remove", {"article": "chess"}, "article", **admin_at(discord_world)
        )
        assert choices[0]["name"].startswith("Chess champion keeps her title")
        inter = await fake.invoke_command(
            "remove", {"article": choices[0]["value"]}, **admin_at(discord_world)
        )
        text = await final_content(fake, inter, "🗑️")
        assert text.startswith("🗑️ Removed “Chess champion keeps her title”")
        titles = sorted(a.title for a in bot_pipeline.list_articles())
        assert titles == ["Bakery wins bread prize", "Volcano erupts on remote island"]

        inter = await fake.invoke_command(
            "article", {"query": choices[0]["value"]}, **user_at(discord_world)
        )
        await inter.wait_done()
        assert inter.callback_types == [5]
        assert private_reply(inter).startswith("No indexed article matches")


async def test_stats_is_private(discord_world: DiscordWorld, start_bot: StartBot) -> None:
    fake = discord_world.fake
    async with start_bot():
        inter = await fake.invoke_command("stats", **admin_at(discord_world))
        await inter.wait_done()
        assert inter.ephemeral() and inter.deferred()
        fields = {f["name"]: f["value"] for f in inter.original["embeds"][0]["fields"]}
        assert fields["Articles"] == "3" and fields["Passages"] == "3"
        assert "hash-embedder" in fields["Model"]


async def test_progress_relay_throttles_and_keeps_the_latest() -> None:
    shown: list[tuple[float, str, int, int]] = []

    async def show(stage: str, done: int, total: int, seconds: float) -> None:
        shown.append((time.monotonic(), stage, done, total))

    relay = ProgressRelay(show, interval=0.2)

    def work(n: int, *, progress: Callable[[str, int, int], None]) -> str:
        assert threading.current_thread() is not threading.main_thread()
        for i in range(1, n + 1):
            progress("embedding", i, n)
            time.sleep(0.01)
        return "done"

    t0 = time.monotonic()
    assert await relay.run(work, 70) == "done"
    elapsed = time.monotonic() - t0
    assert 1 <= len(shown) <= elapsed / 0.2 + 1
    times = [t for t, *_ in shown]
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(times))
    assert shown[0][0] - t0 >= 0.19  # nothing in the first interval
    assert all(stage == "embedding" and total == 70 for _, stage, _, total in shown)
    dones = [d for *_, d, _ in shown]
    assert dones == sorted(dones)  # latest state, in order, intermediate ones skipped
    await relay.settle()
    assert time.monotonic() - shown[-1][0] >= 0.19


def stranger_server(w: DiscordWorld) -> dict[str, Any]:
    """Another server the (public) bot was added to, and its owner: Manage Server there."""
    fake = w.fake
    guild = fake.add_guild("Stranger's server")
    channel = fake.add_channel(guild, "general")
    manager = fake.add_user("mallory")
    fake.add_member(guild, manager, admin=True)
    return {"user_id": manager, "guild_id": guild, "channel_id": channel}


async def test_another_servers_managers_cannot_use_admin_commands(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    """All servers share one index: Manage Server in a server the operator did not name
    (``discord.admin_guild_ids``) must not add, remove, re-index or read it."""
    fake = discord_world.fake
    stranger = stranger_server(discord_world)
    generation = bot_pipeline.store.generation()
    titles = sorted(a.title for a in bot_pipeline.list_articles())
    with LoopbackServer() as srv:
        srv.route("/page.html", HARBOUR)
        async with start_bot() as bot:
            bot.settings.fetch.allow_hosts = ["127.0.0.1:*"]
            chess = (await bot.run_sync(bot_pipeline.match_titles, "chess", 1))[0]
            for name, options in (
                ("add", {"url": srv.url("/page.html")}),
                ("remove", {"article": chess.id}),
                ("reindex", {}),
                ("stats", {}),
                ("subscribe", {"url": srv.url("/feed.xml")}),
                ("unsubscribe", {"feed": "#1"}),
                ("subscriptions", {}),
                ("feedback", {}),
                ("gaps", {}),
            ):
                inter = await fake.invoke_command(name, options, **stranger)
                await inter.wait_done()
                text = private_reply(inter)
                assert text.startswith("Admin commands are not enabled in this server"), name
                assert str(stranger["guild_id"]) in text
                assert "`discord.admin_guild_ids`" in text and "\\" not in text  # code, unescaped
                assert inter.callback_types == [4]  # refused before deferring
            # autocomplete runs without the command's checks: it is checked itself
            assert await fake.autocomplete("remove", {"article": "c"}, "article", **stranger) == []
            assert await fake.autocomplete("unsubscribe", {"feed": ""}, "feed", **stranger) == []
            # the operator's own server still can
            choices = await fake.autocomplete(
                "remove", {"article": "chess"}, "article", **admin_at(discord_world)
            )
            assert choices and choices[0]["value"] == chess.id
        assert srv.requests_to("/page.html") == [] and srv.requests_to("/feed.xml") == []
    assert bot_pipeline.store.generation() == generation  # nothing re-indexed or removed
    assert sorted(a.title for a in bot_pipeline.list_articles()) == titles


async def test_admin_commands_default_to_guild_ids_then_only_the_owner(
    discord_world: DiscordWorld, start_bot: StartBot, bot_settings: Settings
) -> None:
    """Nothing named: managers of no server (not even the one the bot runs in) may use admin
    commands, only the application's owner; with guild_ids, managers of those servers."""
    fake = discord_world.fake
    d = bot_settings.discord
    d.admin_guild_ids, d.admin_user_ids, d.admin_role_ids = [], [], []
    async with start_bot():
        inter = await fake.invoke_command("stats", **admin_at(discord_world))
        await inter.wait_done()
        assert "discord.admin" in private_reply(inter).replace("\\", "")
        fake.add_member(discord_world.guild, fake.owner_id)
        inter = await fake.invoke_command(
            "stats",
            user_id=fake.owner_id,
            guild_id=discord_world.guild,
            channel_id=discord_world.channel,
            admin=True,
        )
        await inter.wait_done()
        assert inter.original["embeds"][0]["title"]  # the owner may
    d.guild_ids = [discord_world.guild]
    async with start_bot():
        inter = await fake.invoke_command("stats", **admin_at(discord_world))
        await inter.wait_done()
        assert inter.original["embeds"], inter.original
