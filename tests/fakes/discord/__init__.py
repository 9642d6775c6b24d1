"""A loopback fake Discord (REST + gateway) that the real discord.py client can talk to.

Usage::

    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild()
    channel = fake.add_channel(guild)
    user = fake.add_user("alice")
    fake.add_member(guild, user)
    async with run_bot(fake, bot):
        await fake.send_message(channel, user, "hello", mention_bot=True)
        await fake.wait_for(lambda: fake.messages[channel])
    await fake.stop()

Everything binds to 127.0.0.1; discord.py is pointed at the fake by
:meth:`FakeDiscord.patch_discord` (which swaps ``discord.http.Route.BASE``,
``DiscordWebSocket.DEFAULT_GATEWAY`` and ``Asset.BASE``).

Realism that the fake enforces (so tests catch bugs that production would hit):

* gateway intents: MESSAGE_CREATE is only dispatched with GUILD_MESSAGES / DIRECT_MESSAGES, and
  guild message content is blanked without MESSAGE_CONTENT unless the bot is mentioned;
* message limits (2000 chars content, embed limits, empty messages, 100-char thread names,
  autocomplete choice limits) answer 400 with Discord's error codes;
* an interaction must be acknowledged within ``interaction_response_timeout`` seconds (3 s like
  Discord, set to ``None`` to disable) and only once;
* commands with ``default_member_permissions`` / ``contexts`` cannot be invoked by users or in
  places where Discord would not offer them (:class:`CommandNotAvailable`);
* an interaction token lasts ``interaction_token_lifetime`` seconds (15 minutes, like Discord):
  later edits and follow-ups answer 401 (Invalid Webhook Token, 50027). The clock is
  :meth:`FakeDiscord.now`; tests move it with :meth:`FakeDiscord.advance_clock`;
* channel permission overwrites (:meth:`FakeDiscord.set_permission_overwrite`) are applied to
  the bot's messages: no View Channel → 403 (50001), no Send Messages → 403 (50013), and a reply
  (``message_reference``) without Read Message History → 403 (50013);
* string options: ``min_length``/``max_length`` are checked when synced (0–6000, 1–6000) and
  when invoked; a string without ``max_length`` is capped at 6000 characters as Discord's
  client does; ``contexts``/``integration_types`` must hold known values.

The parts, one mixin each, composed here into :class:`FakeDiscord`: ``state`` (ids, users,
guilds, roles, members, channels, permissions), ``messages``, ``gateway`` (websocket, intents,
shards, dispatch), ``commands`` (what a user invokes), ``interactions`` (command sync, the
interaction callback, follow-ups, webhook tokens), ``components`` (buttons validated and
clicked), ``forums`` (forum channels and their posts) and ``rest`` (the aiohttp app and
its routes); ``common`` holds the constants, errors and records they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import discord
import discord.asset
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from tests.fakes.discord.commands import CommandsMixin
from tests.fakes.discord.common import (
    BOT_ROLE_PERMISSIONS,
    JSON,
    CommandNotAvailable,
    RecordedRequest,
    _Guild,
    _RouteHandler,
    log,
)
from tests.fakes.discord.components import ComponentsMixin
from tests.fakes.discord.forums import ForumsMixin
from tests.fakes.discord.gateway import GatewayMixin, _GatewayConnection
from tests.fakes.discord.interactions import FakeInteraction, InteractionsMixin
from tests.fakes.discord.messages import MessagesMixin
from tests.fakes.discord.rest import RestMixin
from tests.fakes.discord.state import StateMixin

__all__ = [
    "CommandNotAvailable",
    "FakeDiscord",
    "FakeInteraction",
    "RecordedRequest",
    "run_bot",
]

ClientT = TypeVar("ClientT", bound=discord.Client)


class FakeDiscord(
    StateMixin,
    MessagesMixin,
    ComponentsMixin,
    GatewayMixin,
    CommandsMixin,
    InteractionsMixin,
    ForumsMixin,
    RestMixin,
):
    """An in-process fake of Discord's REST API and gateway, bound to 127.0.0.1."""

    def __init__(self, heartbeat_interval_ms: int = 1000) -> None:
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # Behaviour switches
        self.enforce_intents = True
        self.echo_bot_messages = True  # dispatch MESSAGE_CREATE for the bot's own messages
        self.interaction_response_timeout: float | None = 3.0
        self.interaction_token_lifetime: float | None = 15 * 60.0  # seconds, on self.now()
        self.clock_offset = 0.0  # added to time.monotonic() by now(); see advance_clock()
        self.expired_token_requests: list[tuple[str, str]] = []  # (method, path) answered 401
        self.bot_permissions = BOT_ROLE_PERMISSIONS
        # network latency: (method, path regex, seconds) -- a matching request takes effect at
        # once (others see it) but its response reaches the bot only after the delay
        self.response_delays: list[tuple[str, re.Pattern[str], float]] = []
        # FAKEDISCORD_LATENCY=0.3: every message create/edit and interaction response is
        # answered that late (a stress run for races; see docs/reliability.md)
        latency = float(os.environ.get("FAKEDISCORD_LATENCY") or 0)
        if latency > 0:
            for method, path in (
                ("POST", r"/channels/\d+/messages"),
                ("PATCH", r"/.*"),
                ("POST", r"/interactions/.*"),
            ):
                self.response_delays.append((method, re.compile(path), latency))

        self._last_id = 0
        self.port = 0
        self.base_url = ""
        self.gateway_url = ""
        self.cdn_url = ""

        # State
        self.users: dict[int, JSON] = {}
        self.guilds: dict[int, _Guild] = {}
        self.channels: dict[int, JSON] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.deleted_channels: set[int] = set()
        self.forbidden_channels: set[int] = set()
        self.closed_dms: set[int] = set()  # users who accept no DMs from the bot (403, 50007)
        self._all_messages: dict[int, JSON] = {}
        self._history: dict[int, list[int]] = defaultdict(list)
        self._cdn: dict[str, tuple[bytes, str]] = {}
        self._interactions: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}

        self.application_id = self._snowflake()
        self.bot_user: JSON = self._user_payload(self.application_id, "newsdesk-test", bot=True)
        self.bot_user.update(verified=True, mfa_enabled=False, locale="en-US")
        self.users[self.application_id] = self.bot_user
        self.owner_id = self.add_user("app-owner")
        self.application_flags = 0

        # Recordings for assertions
        self.messages: dict[int, list[JSON]] = defaultdict(list)
        self.requests: list[tuple[str, str, object]] = []
        self.request_log: list[RecordedRequest] = []
        self.unexpected: list[tuple[str, str]] = []
        self.errors: list[str] = []  # exceptions inside the fake itself
        self.uploads: list[JSON] = []
        self.reactions: list[tuple[int, int, str]] = []
        self.interactions: list[FakeInteraction] = []
        self.dispatched: list[tuple[str, JSON]] = []
        self.dropped_events: list[tuple[str, str]] = []  # (event, reason)
        self.gateway_queries: list[dict[str, str]] = []
        self.synced_commands: dict[int | None, list[JSON]] = {}
        self.sync_calls = 0
        self.heartbeats = 0
        self.identifies = 0
        self.resumes = 0
        self.disconnects = 0
        self.identify_payloads: list[JSON] = []

        self._conn: _GatewayConnection | None = None
        self._connections: set[_GatewayConnection] = set()
        # sharding: GET /gateway/bot reports shard_count; a connection that IDENTIFYs with
        # shard [id, count > 1] receives the guilds (guild_id >> 22) % count == id, and shard 0
        # the DMs, as Discord routes them
        self.shard_count = 1
        self._shards: dict[int, _GatewayConnection] = {}
        self._session_id: str | None = None
        self._session_seq = 0
        self._session_intents = 0
        self._guilds_sent = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._routes: list[tuple[str, re.Pattern[str], _RouteHandler, bool]] = []
        self._register_routes()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway_handler)
        app.router.add_route("*", "/api/v{version:\\d+}/{tail:.*}", self._api_handler)
        app.router.add_get("/cdn/{tail:.*}", self._cdn_handler)
        app.router.add_route("*", "/{tail:.*}", self._fallback_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        root = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{root}/api/v10"
        self.gateway_url = f"ws://{root}/gateway"
        self.cdn_url = f"http://{root}/cdn"
        log.debug("fake discord listening on %s", root)

    async def stop(self) -> None:
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"fake discord stopping")
            await conn.close()
        self._connections.clear()
        self._conn = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's REST, webhook, gateway and CDN base URLs at this fake."""
        if not self.base_url:
            raise RuntimeError("FakeDiscord.start() must be awaited before patch_discord()")
        route_cls = discord.http.Route
        ws_cls = discord.gateway.DiscordWebSocket
        asset_cls = discord.asset.Asset
        old = (route_cls.BASE, ws_cls.DEFAULT_GATEWAY, asset_cls.BASE)
        route_cls.BASE = self.base_url
        ws_cls.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        asset_cls.BASE = self.cdn_url
        try:
            yield
        finally:
            route_cls.BASE, ws_cls.DEFAULT_GATEWAY, asset_cls.BASE = old

    @property
    def connected(self) -> bool:
        if self._shards:
            return any(not c.ws.closed for c in self._shards.values())
        return self._conn is not None and not self._conn.ws.closed

    @property
    def bot_id(self) -> int:
        return self.application_id

    async def wait_for(
        self,
        predicate: Callable[[], object],
        timeout: float = 10.0,
        *,
        description: str | None = None,
    ) -> None:
        """Poll ``predicate`` until it is truthy; AssertionError (with context) on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)
        if description is None:
            try:
                description = inspect.getsource(predicate).strip()
            except (OSError, TypeError):
                description = repr(predicate)
        recent = [f"{r.method} {r.path} -> {r.status}" for r in self.request_log[-8:]]
        raise AssertionError(
            f"timed out after {timeout}s waiting for: {description}\n"
            f"  recent requests: {recent}\n"
            f"  unexpected routes: {self.unexpected}\n"
            f"  fake errors: {self.errors[-3:]}\n"
            f"  dropped events: {self.dropped_events[-5:]}\n"
            f"  connected: {self.connected}, identifies={self.identifies}"
        )


@contextlib.asynccontextmanager
async def run_bot(
    fake: FakeDiscord,
    bot: ClientT,
    token: str = "fake-token",
    *,
    timeout: float = 10.0,
    guild_ready_timeout: float | None = 0.05,
) -> AsyncIterator[ClientT]:
    """Run ``bot.start(token)`` against ``fake`` until the block exits, then close it cleanly.

    ``guild_ready_timeout`` (default 0.05 s) replaces discord.py's 2 s wait for further
    GUILD_CREATEs before READY fires; pass ``None`` to keep the bot's own setting.
    """
    with fake.patch_discord():
        if guild_ready_timeout is not None:
            bot._connection.guild_ready_timeout = guild_ready_timeout
        task = asyncio.create_task(bot.start(token), name="fakediscord-bot")
        try:
            deadline = time.monotonic() + timeout
            while not (bot.is_ready() and fake._guilds_sent.is_set()):
                if task.done():
                    exc = None if task.cancelled() else task.exception()
                    raise RuntimeError("bot.start() exited before the bot became ready") from exc
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"bot not ready after {timeout}s (identifies={fake.identifies}, "
                        f"requests={[(m, p) for m, p, _ in fake.requests]}, "
                        f"errors={fake.errors[-2:]})"
                    )
                await asyncio.sleep(0.01)
            yield bot
        finally:
            await bot.close()
            done, _ = await asyncio.wait({task}, timeout=5.0)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif not task.cancelled() and task.exception() is not None:
                log.warning("bot.start() ended with %r", task.exception())
