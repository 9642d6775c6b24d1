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
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import importlib
import inspect
import itertools
import json
import logging
import mimetypes
import re
import secrets
import socket
import time
import traceback
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import discord
import discord.asset
import discord.gateway
import discord.http
import yarl
from aiohttp import web

__all__ = [
    "CommandNotAvailable",
    "FakeDiscord",
    "FakeInteraction",
    "RecordedRequest",
    "run_bot",
]

log = logging.getLogger("fakediscord")

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions)
P_CREATE_INSTANT_INVITE = 1 << 0
P_ADMINISTRATOR = 1 << 3
P_MANAGE_GUILD = 1 << 5
P_ADD_REACTIONS = 1 << 6
P_VIEW_CHANNEL = 1 << 10
P_SEND_MESSAGES = 1 << 11
P_MANAGE_MESSAGES = 1 << 13
P_EMBED_LINKS = 1 << 14
P_ATTACH_FILES = 1 << 15
P_READ_MESSAGE_HISTORY = 1 << 16
P_USE_EXTERNAL_EMOJIS = 1 << 18
P_CHANGE_NICKNAME = 1 << 26
P_USE_APPLICATION_COMMANDS = 1 << 31
P_MANAGE_THREADS = 1 << 34
P_CREATE_PUBLIC_THREADS = 1 << 35
P_CREATE_PRIVATE_THREADS = 1 << 36
P_SEND_MESSAGES_IN_THREADS = 1 << 38
P_ALL = discord.Permissions.all().value

EVERYONE_PERMISSIONS = (
    P_CREATE_INSTANT_INVITE
    | P_ADD_REACTIONS
    | P_VIEW_CHANNEL
    | P_SEND_MESSAGES
    | P_EMBED_LINKS
    | P_ATTACH_FILES
    | P_READ_MESSAGE_HISTORY
    | P_USE_EXTERNAL_EMOJIS
    | P_CHANGE_NICKNAME
    | P_USE_APPLICATION_COMMANDS
    | P_CREATE_PUBLIC_THREADS
    | P_CREATE_PRIVATE_THREADS
    | P_SEND_MESSAGES_IN_THREADS
)
BOT_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | P_MANAGE_MESSAGES | P_MANAGE_THREADS
ADMIN_ROLE_PERMISSIONS = P_ADMINISTRATOR | P_MANAGE_GUILD

# Gateway intents
I_GUILDS = 1 << 0
I_GUILD_MEMBERS = 1 << 1
I_GUILD_MESSAGES = 1 << 9
I_DIRECT_MESSAGES = 1 << 12
I_MESSAGE_CONTENT = 1 << 15

# Message flags
F_SUPPRESS_EMBEDS = 1 << 2
F_EPHEMERAL = 1 << 6
F_LOADING = 1 << 7
F_SUPPRESS_NOTIFICATIONS = 1 << 12
F_IS_COMPONENTS_V2 = 1 << 15

THREAD_TYPES = (10, 11, 12)
TEXT_LIKE_TYPES = (0, 5)
MENTION_RE = re.compile(r"<@!?(\d+)>")
ROLE_MENTION_RE = re.compile(r"<@&(\d+)>")
STRING_OPTION_MAX = 6000  # Discord's cap on a string option (and on its max_length)
CONTEXTS = (0, 1, 2)  # guild, bot DM, private channel (group DMs and others' DMs)
INTEGRATION_TYPES = (0, 1)  # guild install, user install
COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


class CommandNotAvailable(AssertionError):
    """Discord would not offer this command to this user / in this place."""


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: int, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {message} ({code})")
        self.status = status
        self.body: JSON = {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors


def _not_found(what: str, code: int) -> _HTTPError:
    return _HTTPError(404, f"Unknown {what}", code)


def _form_error(errors: JSON) -> _HTTPError:
    return _HTTPError(400, "Invalid Form Body", 50035, errors)


class _FormErrors:
    """Collects errors in Discord's nested ``{"a": {"0": {"_errors": [...]}}}`` shape."""

    def __init__(self) -> None:
        self.tree: JSON = {}

    def add(self, path: list[str | int], code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def raise_if_any(self) -> None:
        if self.tree:
            raise _form_error(self.tree)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    files: list[JSON] = field(default_factory=list)
    status: int = 0
    at: float = field(default_factory=time.monotonic)  # when the request arrived


@dataclass
class _Upload:
    field_name: str
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class _Req:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    files: list[_Upload]


@dataclass
class _Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, JSON] = field(default_factory=dict)
    members: dict[int, JSON] = field(default_factory=dict)  # user id -> {roles, joined_at, nick}
    channel_ids: list[int] = field(default_factory=list)
    admin_role_id: int | None = None
    bot_role_id: int | None = None


class FakeInteraction:
    """What the bot did with one interaction that the fake dispatched."""

    def __init__(
        self,
        fake: FakeDiscord,
        *,
        id: int,
        token: str,
        type: int,
        name: str | None,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        payload: JSON,
        target_message_id: int | None = None,
    ) -> None:
        self._fake = fake
        self.id = id
        self.token = token
        self.type = type  # 2 command, 3 component, 4 autocomplete
        self.name = name
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        self.payload = payload  # the INTERACTION_CREATE data that was dispatched
        self.dispatched_at = time.monotonic()
        self.created_at = fake.now()  # the token's lifetime counts from here (fake clock)
        self.callbacks: list[JSON] = []  # [{"type": int, "data": dict}]
        self.followups: list[JSON] = []
        self.original: JSON | None = None
        self.original_deleted = False
        self.edits = 0
        self.expired = False  # a callback arrived after the response deadline
        self.token_expired = False  # a webhook request came after the 15-minute token lifetime
        self.target_message_id = target_message_id  # component interactions

    def __repr__(self) -> str:
        types = [cb["type"] for cb in self.callbacks]
        return (
            f"<FakeInteraction id={self.id} type={self.type} name={self.name!r} callbacks={types}"
            f" followups={len(self.followups)} edits={self.edits}>"
        )

    @property
    def callback_types(self) -> list[int]:
        return [cb["type"] for cb in self.callbacks]

    def deferred(self) -> bool:
        return any(t in (5, 6) for t in self.callback_types)

    def ephemeral(self) -> bool:
        """Whether the initial response (message or deferral) was ephemeral."""
        if self.original is not None:
            return bool(int(self.original.get("flags") or 0) & F_EPHEMERAL)
        for cb in self.callbacks:
            data = cb.get("data") or {}
            return bool(int(data.get("flags") or 0) & F_EPHEMERAL)
        return False

    def all_messages(self) -> list[JSON]:
        out: list[JSON] = []
        if self.original is not None and self.target_message_id is None:
            out.append(self.original)
        out.extend(self.followups)
        return out

    @property
    def choices(self) -> list[JSON] | None:
        for cb in self.callbacks:
            if cb["type"] == 8:
                return list((cb.get("data") or {}).get("choices", []))
        return None

    def is_done(self) -> bool:
        types = self.callback_types
        if any(t in (4, 7, 8, 9) for t in types):
            return True
        return self.deferred() and (self.edits > 0 or bool(self.followups))

    async def wait_done(self, timeout: float = 10.0) -> None:
        """Wait for a type-4 (or 7/8/9) response, or a deferral followed by an edit/followup."""
        await self._fake.wait_for(
            self.is_done,
            timeout,
            description=f"interaction {self.name!r} to be answered ({self!r})",
        )


class _GatewayConnection:
    def __init__(self, fake: FakeDiscord, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.fake = fake
        self.ws = ws
        self.compress = compress
        self.compressor: Callable[[bytes], bytes] | None = _make_compressor(compress)
        self.queue: asyncio.Queue[tuple[str, asyncio.Future[None] | None]] = asyncio.Queue()
        self.session_id: str | None = None
        self.intents = 0
        self.identified = False
        self.shard: tuple[int, int] | None = None  # (shard id, shard count) when sharded
        self.seq = 0
        self.writer = asyncio.create_task(self._writer(), name="fakediscord-gateway-writer")

    def send(self, payload: JSON) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((json.dumps(payload), fut))
        return fut

    async def _writer(self) -> None:
        while True:
            text, fut = await self.queue.get()
            try:
                if not self.ws.closed:
                    if self.compressor is not None:
                        await self.ws.send_bytes(self.compressor(text.encode()))
                    else:
                        await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("gateway send failed: %r", exc)
            finally:
                if fut is not None and not fut.done():
                    fut.set_result(None)

    async def close(self) -> None:
        self.writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.writer
        while not self.queue.empty():
            _, fut = self.queue.get_nowait()
            if fut is not None and not fut.done():
                fut.set_result(None)


def _make_compressor(kind: str | None) -> Callable[[bytes], bytes] | None:
    if kind is None:
        return None
    if kind == "zlib-stream":
        zobj = zlib.compressobj()

        def _zlib(data: bytes) -> bytes:
            return zobj.compress(data) + zobj.flush(zlib.Z_SYNC_FLUSH)

        return _zlib
    if kind == "zstd-stream":
        # discord.py only asks for zstd when it can import one of these, so we can too.
        try:
            zstandard: Any = importlib.import_module("zstandard")
        except ImportError:
            zmod: Any = importlib.import_module("compression.zstd")
            zc = zmod.ZstdCompressor()

            def _zstd_stdlib(data: bytes) -> bytes:
                return bytes(zc.compress(data, mode=zmod.ZstdCompressor.FLUSH_BLOCK))

            return _zstd_stdlib
        cobj = zstandard.ZstdCompressor().compressobj()

        def _zstd(data: bytes) -> bytes:
            return bytes(cobj.compress(data) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))

        return _zstd
    raise ValueError(f"unsupported gateway compression {kind!r}")


_RouteHandler = Callable[..., Awaitable[web.StreamResponse]]
ClientT = TypeVar("ClientT", bound=discord.Client)


class FakeDiscord:
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

    # ------------------------------------------------------------------ lifecycle

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

    # ------------------------------------------------------------------ ids / payloads

    def now(self) -> float:
        """The fake's clock for token lifetimes: ``time.monotonic()`` plus what tests added."""
        return time.monotonic() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock forward (e.g. past the 15-minute interaction token)."""
        self.clock_offset += seconds

    def _snowflake(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        new = ms << 22
        if new <= self._last_id:
            new = self._last_id + 1
        self._last_id = new
        return new

    @staticmethod
    def _user_payload(user_id: int, name: str, *, bot: bool = False) -> JSON:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }

    def _role_payload(self, role_id: int, name: str, permissions: int, position: int) -> JSON:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _member_payload(
        self,
        guild_id: int,
        user_id: int,
        *,
        with_user: bool = True,
        extra_roles: tuple[int, ...] = (),
    ) -> JSON:
        guild = self.guilds[guild_id]
        info = guild.members[user_id]
        roles = [str(r) for r in [*info["roles"], *extra_roles]]
        data: JSON = {
            "roles": list(dict.fromkeys(roles)),
            "joined_at": info["joined_at"],
            "nick": info.get("nick"),
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = copy.deepcopy(self.users[user_id])
        return data

    def member_permissions(self, guild_id: int, user_id: int, *, admin: bool = False) -> int:
        guild = self.guilds[guild_id]
        perms = int(guild.roles[guild_id]["permissions"])
        info = guild.members.get(user_id)
        if info is not None:
            for role_id in info["roles"]:
                perms |= int(guild.roles[role_id]["permissions"])
        if admin or user_id == guild.owner_id or perms & P_ADMINISTRATOR:
            return P_ALL
        return perms

    def set_permission_overwrite(
        self,
        channel_id: int,
        target_id: int,
        *,
        allow: int = 0,
        deny: int = 0,
        dispatch: bool = True,
    ) -> None:
        """Set a channel's overwrite for a role (the guild id is @everyone) or a member, like
        a server admin editing the channel's permissions; dispatches CHANNEL_UPDATE unless
        ``dispatch=False`` (a change the bot has not heard about: its cache is stale)."""
        channel = self.channels[channel_id]
        guild = self.guilds[int(channel["guild_id"])]
        kind = 0 if target_id in guild.roles else 1
        overwrites = [o for o in channel["permission_overwrites"] if int(o["id"]) != target_id]
        overwrites.append(
            {"id": str(target_id), "type": kind, "allow": str(allow), "deny": str(deny)}
        )
        channel["permission_overwrites"] = overwrites
        if dispatch and self.connected:
            self._dispatch("CHANNEL_UPDATE", copy.deepcopy(channel))

    def channel_permissions(self, channel_id: int, user_id: int) -> int:
        """A member's permissions in a channel, overwrites applied as Discord documents
        (@everyone, then the member's roles together, then the member; threads use their
        parent's)."""
        channel = self.channels[channel_id]
        if channel.get("guild_id") is None:
            return EVERYONE_PERMISSIONS
        guild_id = int(channel["guild_id"])
        perms = self.member_permissions(guild_id, user_id)
        if perms & P_ADMINISTRATOR or perms == P_ALL:
            return P_ALL
        if channel["type"] in THREAD_TYPES:
            channel = self.channels.get(int(channel["parent_id"]), channel)
        overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites") or []}
        everyone = overwrites.get(guild_id)
        if everyone is not None:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        info = self.guilds[guild_id].members.get(user_id) or {"roles": []}
        allow = deny = 0
        for role_id in info["roles"]:
            o = overwrites.get(int(role_id))
            if o is not None and int(o["type"]) == 0:
                allow |= int(o["allow"])
                deny |= int(o["deny"])
        perms = (perms & ~deny) | allow
        member = overwrites.get(user_id)
        if member is not None and int(member["type"]) == 1:
            perms = (perms & ~int(member["deny"])) | int(member["allow"])
        return perms

    def _check_can_send(self, channel: JSON, body: object) -> None:
        """403 where Discord would refuse the bot's message in a guild channel."""
        if channel.get("guild_id") is None:
            recipients = channel.get("recipients") or [{}]
            if int(recipients[0].get("id") or 0) in self.closed_dms:
                raise _HTTPError(403, "Cannot send messages to this user", 50007)
            return
        perms = self.channel_permissions(int(channel["id"]), self.application_id)
        if not perms & P_VIEW_CHANNEL:
            raise _HTTPError(403, "Missing Access", 50001)
        send = P_SEND_MESSAGES_IN_THREADS if channel["type"] in THREAD_TYPES else P_SEND_MESSAGES
        if not perms & send:
            raise _HTTPError(403, "Missing Permissions", 50013)
        replying = isinstance(body, dict) and body.get("message_reference")
        if replying and not perms & P_READ_MESSAGE_HISTORY:
            raise _HTTPError(403, "Missing Permissions", 50013)

    def _guild_payload(self, guild: _Guild) -> JSON:
        channels = [
            copy.deepcopy(self.channels[c])
            for c in guild.channel_ids
            if c in self.channels and self.channels[c]["type"] not in THREAD_TYPES
        ]
        threads = [
            copy.deepcopy(self.channels[c])
            for c in guild.channel_ids
            if c in self.channels and self.channels[c]["type"] in THREAD_TYPES
        ]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [copy.deepcopy(r) for r in guild.roles.values()],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "max_members": 500000,
            "application_id": None,
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "members": [self._member_payload(guild.id, uid) for uid in guild.members],
            "channels": channels,
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _app_info(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot_user["username"],
            "description": "",
            "icon": None,
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": copy.deepcopy(self.users[self.owner_id]),
            "team": None,
            "flags": self.application_flags,
            "bot": copy.deepcopy(self.bot_user),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    # ------------------------------------------------------------------ world building

    def add_user(self, name: str, *, bot: bool = False) -> int:
        user_id = self._snowflake()
        self.users[user_id] = self._user_payload(user_id, name, bot=bot)
        return user_id

    def add_guild(self, name: str = "Test Guild") -> int:
        guild_id = self._snowflake()
        guild = _Guild(id=guild_id, name=name, owner_id=self.add_user(f"{name} owner"))
        guild.roles[guild_id] = self._role_payload(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        bot_role = self._snowflake()
        guild.roles[bot_role] = self._role_payload(
            bot_role, self.bot_user["username"], self.bot_permissions, 1
        )
        guild.roles[bot_role]["managed"] = True
        guild.roles[bot_role]["tags"] = {"bot_id": str(self.application_id)}
        guild.bot_role_id = bot_role
        guild.members[self.application_id] = {"roles": [bot_role], "joined_at": _now_iso()}
        self.guilds[guild_id] = guild
        if self.connected:
            self._dispatch("GUILD_CREATE", self._guild_payload(guild))
        return guild_id

    def add_channel(self, guild_id: int, name: str = "general", kind: int = 0) -> int:
        guild = self.guilds[guild_id]
        if kind in THREAD_TYPES:
            raise ValueError("use add_thread() for thread channels")
        channel_id = self._snowflake()
        data: JSON = {
            "id": str(channel_id),
            "type": kind,
            "guild_id": str(guild_id),
            "name": name,
            "position": len(guild.channel_ids),
            "permission_overwrites": [],
            "parent_id": None,
            "nsfw": False,
            "flags": 0,
        }
        if kind in (0, 5, 15, 16):
            data.update(
                topic=None,
                last_message_id=None,
                rate_limit_per_user=0,
                default_auto_archive_duration=1440,
                default_thread_rate_limit_per_user=0,
            )
        if kind in (2, 13):
            data.update(bitrate=64000, user_limit=0, rtc_region=None, last_message_id=None)
        if kind in (15, 16):
            data.update(
                available_tags=[],
                default_reaction_emoji=None,
                default_sort_order=None,
                default_forum_layout=0,
            )
        self.channels[channel_id] = data
        guild.channel_ids.append(channel_id)
        if self.connected:
            self._dispatch("CHANNEL_CREATE", copy.deepcopy(data))
        return channel_id

    def add_thread(
        self,
        parent_id: int,
        name: str = "thread",
        *,
        owner_id: int | None = None,
        private: bool = False,
    ) -> int:
        """Create an (active) thread under a guild text/forum channel; returns its id."""
        thread = self._new_thread(
            self.channels[parent_id],
            name=name,
            owner_id=owner_id or self.application_id,
            kind=12 if private else 11,
        )
        if self.connected:
            self._dispatch("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return int(thread["id"])

    def add_member(self, guild_id: int, user_id: int, *, admin: bool = False) -> None:
        guild = self.guilds[guild_id]
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}; create it with add_user()")
        info = guild.members.setdefault(user_id, {"roles": [], "joined_at": _now_iso()})
        if admin:
            role_id = self._admin_role(guild)
            if role_id not in info["roles"]:
                info["roles"].append(role_id)
        if self.connected:
            self._dispatch(
                "GUILD_MEMBER_ADD",
                {**self._member_payload(guild_id, user_id), "guild_id": str(guild_id)},
            )

    def _admin_role(self, guild: _Guild) -> int:
        if guild.admin_role_id is None:
            role_id = self._snowflake()
            guild.roles[role_id] = self._role_payload(
                role_id, "Admin", ADMIN_ROLE_PERMISSIONS, len(guild.roles)
            )
            guild.admin_role_id = role_id
            if self.connected:
                self._dispatch(
                    "GUILD_ROLE_CREATE",
                    {"guild_id": str(guild.id), "role": copy.deepcopy(guild.roles[role_id])},
                )
        return guild.admin_role_id

    def _ensure_member(self, guild_id: int, user_id: int) -> None:
        if user_id not in self.guilds[guild_id].members:
            self.add_member(guild_id, user_id)

    def delete_channel(self, channel_id: int, *, dispatch: bool = True) -> None:
        """Delete a channel; REST calls on it then 404 (Unknown Channel, 10003).

        With ``dispatch`` (default) the bot also gets CHANNEL_DELETE / THREAD_DELETE, like on
        Discord; pass ``dispatch=False`` to simulate a deletion the bot has not heard about.
        """
        data = self.channels.pop(channel_id)
        self.deleted_channels.add(channel_id)
        guild_id = data.get("guild_id")
        if guild_id is not None:
            guild = self.guilds[int(guild_id)]
            if channel_id in guild.channel_ids:
                guild.channel_ids.remove(channel_id)
        if data["type"] == 1:
            self.dm_channels = {u: c for u, c in self.dm_channels.items() if c != channel_id}
        if dispatch and self.connected:
            if data["type"] in THREAD_TYPES:
                self._dispatch(
                    "THREAD_DELETE",
                    {
                        "id": data["id"],
                        "guild_id": data["guild_id"],
                        "parent_id": data["parent_id"],
                        "type": data["type"],
                    },
                )
            else:
                self._dispatch("CHANNEL_DELETE", copy.deepcopy(data))

    def dm_channel(self, user_id: int) -> int:
        """The DM channel between the bot and ``user_id`` (created if needed)."""
        if user_id in self.dm_channels:
            return self.dm_channels[user_id]
        return self._create_dm(user_id)

    def _create_dm(self, user_id: int, channel_id: int | None = None) -> int:
        channel_id = channel_id or self._snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [copy.deepcopy(self.users[user_id])],
        }
        self.dm_channels[user_id] = channel_id
        return channel_id

    def _new_thread(
        self,
        parent: JSON,
        *,
        name: str,
        owner_id: int,
        kind: int = 11,
        thread_id: int | None = None,
        auto_archive_duration: int = 1440,
    ) -> JSON:
        if parent["type"] not in (0, 5, 15, 16):
            raise _HTTPError(400, "Cannot execute action on this channel type", 50024)
        guild = self.guilds[int(parent["guild_id"])]
        thread_id = thread_id or self._snowflake()
        now = _now_iso()
        thread: JSON = {
            "id": str(thread_id),
            "type": kind,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": now,
                "locked": False,
                "invitable": True,
                "create_timestamp": now,
            },
            "member": {
                "id": str(thread_id),
                "user_id": str(self.application_id),
                "join_timestamp": now,
                "flags": 0,
            },
        }
        self.channels[thread_id] = thread
        guild.channel_ids.append(thread_id)
        return thread

    # ------------------------------------------------------------------ messages

    def _channel(self, channel_id: int) -> JSON:
        data = self.channels.get(channel_id)
        if data is None:
            raise _not_found("Channel", 10003)
        if channel_id in self.forbidden_channels:
            raise _HTTPError(403, "Missing Access", 50001)
        return data

    def _guild_id_of(self, channel: JSON) -> int | None:
        gid = channel.get("guild_id")
        return int(gid) if gid is not None else None

    def _user_with_member(self, user_id: int, guild_id: int | None) -> JSON:
        data = copy.deepcopy(self.users[user_id])
        if guild_id is not None and user_id in self.guilds[guild_id].members:
            data["member"] = self._member_payload(guild_id, user_id, with_user=False)
        return data

    def _compute_mentions(
        self,
        content: str,
        guild_id: int | None,
        allowed: JSON | None,
        replied_user: int | None = None,
    ) -> tuple[list[JSON], list[str], bool]:
        parse = None if allowed is None else list(allowed.get("parse") or [])
        allowed_users = None if allowed is None else {int(u) for u in allowed.get("users") or []}
        allowed_roles = None if allowed is None else {int(r) for r in allowed.get("roles") or []}
        users: list[int] = []
        for match in MENTION_RE.finditer(content or ""):
            uid = int(match.group(1))
            if uid not in self.users or uid in users:
                continue
            if parse is None or "users" in parse or (allowed_users and uid in allowed_users):
                users.append(uid)
        reply_ping = allowed is None or allowed.get("replied_user", True)
        if replied_user is not None and replied_user not in users and reply_ping:
            users.append(replied_user)
        roles: list[str] = []
        if guild_id is not None:
            for match in ROLE_MENTION_RE.finditer(content or ""):
                rid = int(match.group(1))
                if rid not in self.guilds[guild_id].roles:
                    continue
                if parse is None or "roles" in parse or (allowed_roles and rid in allowed_roles):
                    roles.append(str(rid))
        everyone = ("@everyone" in (content or "") or "@here" in (content or "")) and (
            parse is None or "everyone" in parse
        )
        return [self._user_with_member(u, guild_id) for u in users], roles, everyone

    def _build_message(
        self,
        *,
        channel: JSON,
        author_id: int,
        content: str,
        embeds: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        components: list[JSON] | None = None,
        flags: int = 0,
        allowed_mentions: JSON | None = None,
        message_reference: JSON | None = None,
        tts: bool = False,
        nonce: str | int | None = None,
        message_id: int | None = None,
        webhook: bool = False,
        interaction: FakeInteraction | None = None,
    ) -> JSON:
        channel_id = int(channel["id"])
        guild_id = self._guild_id_of(channel)
        message_id = message_id or self._snowflake()
        msg_type = 0
        referenced: JSON | None = None
        replied_user: int | None = None
        if message_reference:
            ref_id = int(message_reference.get("message_id") or 0)
            referenced = self._all_messages.get(ref_id)
            if referenced is None:
                if message_reference.get("fail_if_not_exists", True):
                    raise _form_error(
                        {
                            "message_reference": {
                                "_errors": [
                                    {
                                        "code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                        "message": "Unknown message",
                                    }
                                ]
                            }
                        }
                    )
            else:
                msg_type = 19
                replied_user = int(referenced["author"]["id"])
        if interaction is not None and interaction.type == 2:
            msg_type = 20
        mentions, mention_roles, mention_everyone = self._compute_mentions(
            content, guild_id, allowed_mentions, replied_user
        )
        msg: JSON = {
            "id": str(message_id),
            "type": msg_type,
            "channel_id": str(channel_id),
            "author": copy.deepcopy(self.users[author_id]),
            "content": content or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": tts,
            "mention_everyone": mention_everyone,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "mention_channels": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "reactions": [],
            "pinned": False,
            "flags": flags,
            "components": components or [],
        }
        if nonce is not None:
            msg["nonce"] = nonce
        if guild_id is not None:
            msg["guild_id"] = str(guild_id)
            if author_id in self.guilds[guild_id].members:
                msg["member"] = self._member_payload(guild_id, author_id, with_user=False)
        if message_reference and referenced is not None:
            msg["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                **({"guild_id": referenced["guild_id"]} if "guild_id" in referenced else {}),
            }
            msg["referenced_message"] = copy.deepcopy(referenced)
            msg["referenced_message"].pop("referenced_message", None)
        if webhook:
            msg["webhook_id"] = str(self.application_id)
            msg["application_id"] = str(self.application_id)
        if interaction is not None:
            msg["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "name": interaction.name,
                "user": copy.deepcopy(self.users[interaction.user_id]),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        return msg

    def _store_message(self, msg: JSON, *, bot_channel_message: bool) -> None:
        mid = int(msg["id"])
        cid = int(msg["channel_id"])
        self._all_messages[mid] = msg
        self._history[cid].append(mid)
        channel = self.channels.get(cid)
        if channel is not None:
            channel["last_message_id"] = msg["id"]
            if channel["type"] in THREAD_TYPES:
                channel["message_count"] = channel.get("message_count", 0) + 1
                channel["total_message_sent"] = channel.get("total_message_sent", 0) + 1
        if bot_channel_message:
            self.messages[cid].append(msg)

    def _forget_message(self, msg: JSON) -> None:
        mid = int(msg["id"])
        cid = int(msg["channel_id"])
        self._all_messages.pop(mid, None)
        with contextlib.suppress(ValueError):
            self._history[cid].remove(mid)
        bucket = self.messages.get(cid)
        if bucket is not None:
            self.messages[cid] = [m for m in bucket if m is not msg]

    def _attachments_from(
        self, channel_id: int, body: JSON, files: list[_Upload], existing: list[JSON] | None = None
    ) -> list[JSON] | None:
        """Resolve a payload's ``attachments`` + uploaded files into attachment objects."""
        if "attachments" not in body and not files:
            return None
        by_index: dict[int, _Upload] = {}
        for upload in files:
            m = re.fullmatch(r"files\[(\d+)\]", upload.field_name) or re.fullmatch(
                r"file(\d*)", upload.field_name
            )
            index = int(m.group(1) or 0) if m else len(by_index)
            by_index[index] = upload
        old = {str(a["id"]): a for a in existing or []}
        result: list[JSON] = []
        specs = body.get("attachments")
        if specs is None:
            specs = [{"id": i, "filename": u.filename} for i, u in sorted(by_index.items())]
        for spec in specs:
            sid = str(spec.get("id"))
            if sid in old:
                result.append(old[sid])
                continue
            found = by_index.get(int(spec.get("id", 0)))
            if found is None:
                continue
            upload = found
            result.append(
                self._make_attachment(
                    channel_id,
                    spec.get("filename") or upload.filename,
                    upload.data,
                    upload.content_type,
                    description=spec.get("description"),
                )
            )
            self.uploads.append(
                {"channel_id": channel_id, "filename": upload.filename, "data": upload.data}
            )
        return result

    def _make_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        description: str | None = None,
        attachment_id: int | None = None,
    ) -> JSON:
        attachment_id = attachment_id or self._snowflake()
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        path = f"attachments/{channel_id}/{attachment_id}/{filename}"
        self._cdn[path] = (data, content_type)
        url = f"{self.cdn_url}/{path}"
        result: JSON = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        if description:
            result["description"] = description
        return result

    @staticmethod
    def _validate_message(msg: JSON, errors: _FormErrors, *, check_empty: bool) -> None:
        content = msg.get("content") or ""
        if len(content) > 2000:
            errors.add(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = msg.get("embeds") or []
        if len(embeds) > 10:
            errors.add(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        limits = (("title", 256), ("description", 4096))
        for i, embed in enumerate(embeds):
            for key, limit in limits:
                value = embed.get(key) or ""
                total += len(value)
                if len(value) > limit:
                    errors.add(
                        ["embeds", i, key],
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            fields = embed.get("fields") or []
            if len(fields) > 25:
                errors.add(["embeds", i, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer.")
            for j, fld in enumerate(fields):
                for key, limit in (("name", 256), ("value", 1024)):
                    value = fld.get(key) or ""
                    total += len(value)
                    if not value:
                        errors.add(
                            ["embeds", i, "fields", j, key],
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        )
                    elif len(value) > limit:
                        errors.add(
                            ["embeds", i, "fields", j, key],
                            "BASE_TYPE_MAX_LENGTH",
                            f"Must be {limit} or fewer in length.",
                        )
            for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
                value = (embed.get(key) or {}).get(sub) or ""
                total += len(value)
                if len(value) > limit:
                    errors.add(
                        ["embeds", i, key, sub],
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
        if total > 6000:
            errors.add(
                ["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
        if check_empty and not (
            content.strip()
            or embeds
            or msg.get("attachments")
            or msg.get("components")
            or msg.get("sticker_ids")
            or msg.get("poll")
        ):
            raise _HTTPError(400, "Cannot send an empty message", 50006)

    def _message_from_body(
        self,
        channel: JSON,
        body: JSON,
        files: list[_Upload],
        *,
        webhook: bool = False,
        interaction: FakeInteraction | None = None,
        allowed_flags: int = F_SUPPRESS_EMBEDS | F_SUPPRESS_NOTIFICATIONS | F_IS_COMPONENTS_V2,
    ) -> JSON:
        if not isinstance(body, dict):
            raise _form_error(
                {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Expected a dict"}]}
            )
        attachments = self._attachments_from(int(channel["id"]), body, files) or []
        draft = {**body, "attachments": attachments}
        errors = _FormErrors()
        self._validate_message(draft, errors, check_empty=True)
        errors.raise_if_any()
        return self._build_message(
            channel=channel,
            author_id=self.application_id,
            content=body.get("content") or "",
            embeds=body.get("embeds"),
            attachments=attachments,
            components=body.get("components"),
            flags=int(body.get("flags") or 0) & allowed_flags,
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=body.get("message_reference"),
            tts=bool(body.get("tts")),
            nonce=body.get("nonce"),
            webhook=webhook,
            interaction=interaction,
        )

    def _apply_edit(self, msg: JSON, body: JSON, files: list[_Upload]) -> None:
        if not isinstance(body, dict):
            raise _form_error(
                {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Expected a dict"}]}
            )
        updated = copy.deepcopy(msg)
        if "content" in body:
            updated["content"] = body["content"] or ""
        for key in ("embeds", "components"):
            if key in body:
                updated[key] = body[key] or []
        if "flags" in body and body["flags"] is not None:
            keep = int(updated.get("flags") or 0) & (F_EPHEMERAL | F_LOADING)
            updated["flags"] = keep | (
                int(body["flags"]) & (F_SUPPRESS_EMBEDS | F_IS_COMPONENTS_V2)
            )
        new_attachments = self._attachments_from(
            int(msg["channel_id"]), body, files, existing=msg.get("attachments")
        )
        if new_attachments is not None:
            updated["attachments"] = new_attachments
        was_loading = bool(int(updated.get("flags") or 0) & F_LOADING)
        updated["flags"] = int(updated.get("flags") or 0) & ~F_LOADING
        errors = _FormErrors()
        self._validate_message(updated, errors, check_empty=True)
        errors.raise_if_any()
        if "content" in body or "allowed_mentions" in body:
            guild_id = int(msg["guild_id"]) if "guild_id" in msg else None
            replied = (
                int(msg["referenced_message"]["author"]["id"])
                if msg.get("referenced_message")
                else None
            )
            mentions, roles, everyone = self._compute_mentions(
                updated["content"], guild_id, body.get("allowed_mentions"), replied
            )
            updated.update(mentions=mentions, mention_roles=roles, mention_everyone=everyone)
        if not was_loading:
            updated["edited_timestamp"] = _now_iso()
        msg.clear()
        msg.update(updated)

    # ------------------------------------------------------------------ gateway

    def shard_of(self, guild_id: int, shard_count: int) -> int:
        """The shard Discord routes a guild's events to."""
        return (int(guild_id) >> 22) % shard_count

    def _shard_conn(self, event: str, data: JSON) -> _GatewayConnection | None:
        if not self._shards:
            return self._conn
        count = next(iter(self._shards.values())).shard[1]  # type: ignore[index]
        gid = data.get("guild_id") or (data.get("id") if event.startswith("GUILD_") else None)
        return self._shards.get(self.shard_of(int(gid), count) if gid else 0)

    def _dispatch(self, event: str, data: JSON) -> asyncio.Future[None] | None:
        conn = self._shard_conn(event, data)
        if conn is None or conn.ws.closed:
            log.warning("fakediscord: no gateway connection, dropping %s", event)
            self.dropped_events.append((event, "not connected"))
            return None
        needed = self._intent_needed(event, data)
        if self.enforce_intents and needed and not conn.intents & needed:
            log.warning("fakediscord: bot lacks intent %#x, not dispatching %s", needed, event)
            self.dropped_events.append((event, f"missing intent {needed:#x}"))
            return None
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and self.enforce_intents:
            data = self._mask_content(data, conn.intents)
        self._session_seq += 1
        self.dispatched.append((event, data))
        seq = self._session_seq
        if conn.shard is not None:
            conn.seq += 1
            seq = conn.seq
        return conn.send({"op": 0, "t": event, "s": seq, "d": data})

    @staticmethod
    def _intent_needed(event: str, data: JSON) -> int:
        if event.startswith("MESSAGE_"):
            return I_GUILD_MESSAGES if "guild_id" in data else I_DIRECT_MESSAGES
        if event.startswith("GUILD_MEMBER"):
            return I_GUILD_MEMBERS
        if event.startswith(("GUILD_", "CHANNEL_", "THREAD_")):
            return I_GUILDS
        return 0

    def _mask_content(self, data: JSON, intents: int) -> JSON:
        if intents & I_MESSAGE_CONTENT or "guild_id" not in data:
            return data
        author = data.get("author") or {}
        if str(author.get("id")) == str(self.application_id):
            return data
        if any(str(m.get("id")) == str(self.application_id) for m in data.get("mentions") or []):
            return data
        masked = dict(data)
        masked.update(content="", embeds=[], attachments=[], components=[])
        masked.pop("poll", None)
        return masked

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send an arbitrary gateway DISPATCH event to the bot and wait until it is written."""
        fut = self._dispatch(event, data)
        if fut is not None:
            await fut

    async def _send_checked(self, event: str, data: JSON) -> None:
        if not self.connected:
            raise RuntimeError(f"cannot send {event}: no bot is connected to the fake gateway")
        await self.dispatch(event, data)

    async def _gateway_handler(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.gateway_queries.append(query)
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        try:
            conn = _GatewayConnection(self, ws, query.get("compress"))
        except ValueError as exc:
            await ws.close(code=4000, message=str(exc).encode())
            return ws
        self._connections.add(conn)
        conn.send(
            {
                "op": 10,
                "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fakediscord"]},
                "s": None,
                "t": None,
            }
        )
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._gateway_receive(conn, json.loads(msg.data))
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await self._gateway_receive(conn, json.loads(msg.data.decode()))
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    break
        except Exception:
            self.errors.append(traceback.format_exc())
            log.exception("fakediscord gateway error")
        finally:
            self.disconnects += 1
            if self._conn is conn:
                self._conn = None
            if conn.shard is not None and self._shards.get(conn.shard[0]) is conn:
                del self._shards[conn.shard[0]]
            self._connections.discard(conn)
            await conn.close()
        return ws

    async def _gateway_receive(self, conn: _GatewayConnection, payload: JSON) -> None:
        op = payload.get("op")
        data: JSON = payload.get("d") or {}
        if op == 1:
            self.heartbeats += 1
            conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, data)
        elif op == 6:
            await self._resume(conn, data)
        elif op == 8:
            self._request_members(conn, data)
        elif op in (3, 4):
            pass  # presence / voice state updates are accepted and ignored
        else:
            log.warning("fakediscord: unknown gateway op %r", op)
            self.unexpected.append(("GATEWAY", f"op {op}"))

    async def _identify(self, conn: _GatewayConnection, data: JSON) -> None:
        self.identifies += 1
        self.identify_payloads.append(data)
        self._guilds_sent.clear()
        conn.intents = int(data.get("intents", 0))
        conn.identified = True
        conn.session_id = self._session_id = secrets.token_hex(16)
        self._session_seq = 0
        self._session_intents = conn.intents
        guilds = list(self.guilds)
        shard = data.get("shard")
        if shard and int(shard[1]) > 1:
            conn.shard = (int(shard[0]), int(shard[1]))
            self._shards[conn.shard[0]] = conn
            guilds = [g for g in guilds if self.shard_of(g, conn.shard[1]) == conn.shard[0]]
            if conn.shard[0] == 0:
                self._conn = conn
        else:
            self._conn = conn
        ready: JSON = {
            "v": 10,
            "user": copy.deepcopy(self.bot_user),
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": conn.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fakediscord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        futures = [self._send_to(conn, "READY", ready)]
        for gid in guilds:
            futures.append(
                self._send_to(conn, "GUILD_CREATE", self._guild_payload(self.guilds[gid]))
            )
        for fut in futures:
            if fut is not None:
                await fut
        self._guilds_sent.set()

    def _send_to(
        self, conn: _GatewayConnection, event: str, data: JSON
    ) -> asyncio.Future[None] | None:
        """Dispatch on this connection (READY and its guilds go to the shard that identified)."""
        if not self._shards:
            return self._dispatch(event, data)
        conn.seq += 1
        self.dispatched.append((event, data))
        return conn.send({"op": 0, "t": event, "s": conn.seq, "d": data})

    async def _resume(self, conn: _GatewayConnection, data: JSON) -> None:
        if not data or data.get("session_id") != self._session_id:
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        self.resumes += 1
        conn.session_id = self._session_id
        conn.intents = self._session_intents
        conn.identified = True
        self._conn = conn
        fut = self._dispatch("RESUMED", {"_trace": ["fakediscord"]})
        if fut is not None:
            await fut
        self._guilds_sent.set()

    def _request_members(self, conn: _GatewayConnection, data: JSON) -> None:
        guild_id = int(data["guild_id"])
        guild = self.guilds.get(guild_id)
        if guild is None or self._conn is not conn:
            return
        members = list(guild.members)
        if data.get("user_ids"):
            wanted = {int(u) for u in data["user_ids"]}
            members = [m for m in members if m in wanted]
        query = (data.get("query") or "").lower()
        if query:
            members = [m for m in members if self.users[m]["username"].lower().startswith(query)]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: JSON = {
            "guild_id": str(guild_id),
            "members": [self._member_payload(guild_id, m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        if data.get("presences"):
            chunk["presences"] = []
        self._dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects and RESUMEs."""
        if self._conn is None:
            raise RuntimeError("no bot is connected")
        await self._conn.send({"op": 7, "d": None, "s": None, "t": None})

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Wait until READY and every GUILD_CREATE has been written to the bot."""
        try:
            await asyncio.wait_for(self._guilds_sent.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"bot did not IDENTIFY within {timeout}s (identifies={self.identifies}, "
                f"gateway connections={len(self._connections)})"
            ) from None

    # ------------------------------------------------------------------ test driving

    async def send_message(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        mention_bot: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
    ) -> JSON:
        """A user posts a message; dispatches MESSAGE_CREATE and returns the (full) message.

        ``attachments`` entries may carry ``data`` (bytes or str): it is then served from the
        fake CDN so ``Attachment.read()`` works; other keys override the attachment payload.
        """
        channel = self.channels.get(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        guild_id = self._guild_id_of(channel)
        if author_id not in self.users:
            raise KeyError(f"unknown user {author_id}")
        if guild_id is not None:
            self._ensure_member(guild_id, author_id)
        if mention_bot:
            content = f"<@{self.application_id}> {content}"
        files: list[JSON] = []
        for spec in attachments or []:
            spec = dict(spec)
            raw = spec.pop("data", b"")
            raw_bytes = raw.encode() if isinstance(raw, str) else bytes(raw)
            filename = spec.pop("filename", "file.txt")
            att = self._make_attachment(
                channel_id, filename, raw_bytes, spec.pop("content_type", None)
            )
            att.update(spec)
            files.append(att)
        msg = self._build_message(
            channel=channel,
            author_id=author_id,
            content=content,
            attachments=files,
            message_reference={"message_id": str(reply_to)} if reply_to else None,
        )
        self._store_message(msg, bot_channel_message=False)
        await self._send_checked("MESSAGE_CREATE", copy.deepcopy(msg))
        return msg

    async def send_dm(self, user_id: int, content: str) -> JSON:
        return await self.send_message(self.dm_channel(user_id), user_id, content)

    def _find_command(self, root: str, guild_id: int | None, ctype: int = 1) -> JSON:
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for cmd in self.synced_commands.get(scope, []):
                if cmd["name"] == root and int(cmd.get("type", 1)) == ctype:
                    return cmd
        known = {
            "global" if k is None else f"guild {k}": [c["name"] for c in v]
            for k, v in self.synced_commands.items()
        }
        raise AssertionError(
            f"command {root!r} has not been synced to Discord (synced: {known}); "
            "did the bot call `await bot.tree.sync()`?"
        )

    def _check_available(self, cmd: JSON, guild_id: int | None, permissions: int) -> None:
        contexts = cmd.get("contexts")
        context = 0 if guild_id is not None else 1
        if contexts is not None and context not in contexts:
            raise CommandNotAvailable(f"/{cmd['name']} is not available in context {context}")
        if guild_id is None and cmd.get("dm_permission") is False:
            raise CommandNotAvailable(f"/{cmd['name']} is not available in DMs")
        required = cmd.get("default_member_permissions")
        if guild_id is not None and required is not None and not permissions & P_ADMINISTRATOR:
            need = int(required)
            if need == 0 or permissions & need != need:
                raise CommandNotAvailable(
                    f"/{cmd['name']} needs permissions {need:#x}; the member has {permissions:#x}"
                )

    def _resolve_option(
        self,
        definition: JSON,
        value: object,
        *,
        resolved: dict[str, dict[str, JSON]],
        guild_id: int | None,
        focused: bool,
    ) -> JSON:
        name = definition["name"]
        kind = int(definition["type"])
        opt: JSON = {"name": name, "type": kind}
        if focused:
            if not definition.get("autocomplete"):
                raise AssertionError(f"option {name!r} has no autocomplete")
            opt.update(value="" if value is None else str(value), focused=True)
            return opt

        def bad(why: str) -> AssertionError:
            return AssertionError(f"option {name!r}: {why} (got {value!r})")

        if kind == 3:
            if not isinstance(value, str):
                raise bad("expected a string")
            if len(value) < int(definition.get("min_length", 0)):
                raise bad("shorter than min_length")
            if "max_length" in definition and len(value) > int(definition["max_length"]):
                raise bad("longer than max_length")
            if len(value) > STRING_OPTION_MAX:
                raise bad(f"longer than Discord's {STRING_OPTION_MAX} characters")
            opt["value"] = value
        elif kind in (4, 10):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad("expected a number")
            if kind == 4 and value != int(value):
                raise bad("expected an integer")
            number = int(value) if kind == 4 else float(value)
            if "min_value" in definition and number < definition["min_value"]:
                raise bad("below min_value")
            if "max_value" in definition and number > definition["max_value"]:
                raise bad("above max_value")
            opt["value"] = number
        elif kind == 5:
            if not isinstance(value, bool):
                raise bad("expected a bool")
            opt["value"] = value
        elif kind in (6, 8, 9):
            if not isinstance(value, int | str):
                raise bad("expected an id")
            sid = int(value)
            if kind in (6, 9) and sid in self.users:
                resolved.setdefault("users", {})[str(sid)] = copy.deepcopy(self.users[sid])
                if guild_id is not None and sid in self.guilds[guild_id].members:
                    member = self._member_payload(guild_id, sid, with_user=False)
                    member["permissions"] = str(self.member_permissions(guild_id, sid))
                    resolved.setdefault("members", {})[str(sid)] = member
            elif kind in (8, 9) and guild_id is not None and sid in self.guilds[guild_id].roles:
                role = copy.deepcopy(self.guilds[guild_id].roles[sid])
                resolved.setdefault("roles", {})[str(sid)] = role
            else:
                raise bad("unknown user/role")
            opt["value"] = str(sid)
        elif kind == 7:
            if not isinstance(value, int | str):
                raise bad("expected a channel id")
            cid = int(value)
            channel = self.channels.get(cid)
            if channel is None:
                raise bad("unknown channel")
            allowed_types = definition.get("channel_types")
            if allowed_types and channel["type"] not in allowed_types:
                raise bad(f"channel type {channel['type']} not in {allowed_types}")
            entry = copy.deepcopy(channel)
            if guild_id is not None:
                entry["permissions"] = str(self.member_permissions(guild_id, self.application_id))
            else:
                entry["permissions"] = str(EVERYONE_PERMISSIONS)
            resolved.setdefault("channels", {})[str(cid)] = entry
            opt["value"] = str(cid)
        elif kind == 11:
            if not isinstance(value, dict):
                raise bad("expected an attachment dict (filename, data)")
            spec = dict(value)
            raw = spec.pop("data", b"")
            raw_bytes = raw.encode() if isinstance(raw, str) else bytes(raw)
            att = self._make_attachment(
                0, spec.pop("filename", "file.txt"), raw_bytes, spec.pop("content_type", None)
            )
            att.update(spec)
            att["ephemeral"] = True
            resolved.setdefault("attachments", {})[att["id"]] = att
            opt["value"] = att["id"]
        else:
            raise bad(f"unsupported option type {kind}")
        choices = definition.get("choices")
        if choices and opt["value"] not in [c["value"] for c in choices]:
            raise bad(f"not one of the choices {[c['value'] for c in choices]}")
        return opt

    def _build_command_options(
        self,
        cmd: JSON,
        path: list[str],
        values: dict[str, object],
        *,
        resolved: dict[str, dict[str, JSON]],
        guild_id: int | None,
        focused: str | None,
    ) -> list[JSON]:
        definitions: list[JSON] = list(cmd.get("options") or [])
        wrappers: list[JSON] = []
        for part in path:
            sub = next(
                (d for d in definitions if d["name"] == part and int(d["type"]) in (1, 2)), None
            )
            if sub is None:
                raise AssertionError(f"/{cmd['name']} has no subcommand (group) {part!r}")
            wrappers.append({"name": part, "type": int(sub["type"]), "options": []})
            definitions = list(sub.get("options") or [])
        if any(int(d["type"]) in (1, 2) for d in definitions):
            names = [d["name"] for d in definitions]
            raise AssertionError(f"/{cmd['name']} needs a subcommand, one of {names}")
        by_name = {d["name"]: d for d in definitions}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            raise AssertionError(
                f"/{cmd['name']} has no option(s) {unknown}; options are {sorted(by_name)}"
            )
        params: list[JSON] = []
        for definition in definitions:
            name = definition["name"]
            if name not in values:
                if definition.get("required") and focused is None:
                    raise AssertionError(f"/{cmd['name']}: required option {name!r} missing")
                continue
            params.append(
                self._resolve_option(
                    definition,
                    values[name],
                    resolved=resolved,
                    guild_id=guild_id,
                    focused=name == focused,
                )
            )
        if not wrappers:
            return params
        wrappers[-1]["options"] = params
        for outer, inner in itertools.pairwise(wrappers):
            outer["options"] = [inner]
        return [wrappers[0]]

    def _interaction_base(
        self,
        itype: int,
        data: JSON,
        *,
        name: str | None,
        user_id: int,
        guild_id: int | None,
        channel_id: int,
        admin: bool,
        message: JSON | None = None,
    ) -> tuple[JSON, FakeInteraction]:
        if user_id not in self.users:
            raise AssertionError(f"unknown user {user_id}")
        if guild_id is not None:
            if guild_id not in self.guilds:
                raise AssertionError(f"unknown guild {guild_id}")
            channel = self.channels.get(channel_id)
            if channel is None or channel.get("guild_id") != str(guild_id):
                raise AssertionError(f"channel {channel_id} is not a channel of guild {guild_id}")
            self._ensure_member(guild_id, user_id)
        else:
            channel = self.channels.get(channel_id)
            if channel is None:
                channel = self.channels[self._create_dm(user_id, channel_id)]
            elif channel["type"] != 1:
                raise AssertionError(f"channel {channel_id} is a guild channel but guild_id=None")
        interaction_id = self._snowflake()
        token = "fake-interaction-" + secrets.token_urlsafe(24)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": copy.deepcopy(channel),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild_id is not None:
            member_admin = admin and not (
                self.member_permissions(guild_id, user_id) & P_ADMINISTRATOR
            )
            extra = (self._admin_role(self.guilds[guild_id]),) if member_admin else ()
            member = self._member_payload(guild_id, user_id, extra_roles=extra)
            member["permissions"] = str(self.member_permissions(guild_id, user_id, admin=admin))
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=member,
                app_permissions=str(self.member_permissions(guild_id, self.application_id)),
                context=0,
                authorizing_integration_owners={"0": str(guild_id)},
            )
            payload["channel"]["permissions"] = member["permissions"]
        else:
            payload.update(
                user=copy.deepcopy(self.users[user_id]),
                app_permissions=str(EVERYONE_PERMISSIONS),
                context=1,
                authorizing_integration_owners={"0": "0"},
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        inter = FakeInteraction(
            self,
            id=interaction_id,
            token=token,
            type=itype,
            name=name,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            target_message_id=int(message["id"]) if message is not None else None,
        )
        self._interactions[interaction_id] = inter
        self._interactions_by_token[token] = inter
        self.interactions.append(inter)
        return payload, inter

    def _command_interaction(
        self,
        itype: int,
        name: str,
        options: dict[str, object],
        *,
        user_id: int,
        guild_id: int | None,
        channel_id: int,
        admin: bool,
        focused: str | None,
    ) -> tuple[JSON, FakeInteraction]:
        root, *path = name.split()
        cmd = self._find_command(root, guild_id)
        if guild_id is not None:
            self._ensure_member(guild_id, user_id)
            perms = self.member_permissions(guild_id, user_id, admin=admin)
        else:
            perms = 0
        self._check_available(cmd, guild_id, perms)
        resolved: dict[str, dict[str, JSON]] = {}
        built = self._build_command_options(
            cmd, path, options, resolved=resolved, guild_id=guild_id, focused=focused
        )
        data: JSON = {"id": cmd["id"], "name": root, "type": 1, "options": built}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return self._interaction_base(
            itype,
            data,
            name=name,
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            admin=admin,
        )

    async def invoke_command(
        self,
        name: str,
        options: dict[str, object] | None = None,
        *,
        user_id: int,
        guild_id: int | None,
        channel_id: int,
        admin: bool = False,
    ) -> FakeInteraction:
        """A user runs ``/name`` (``"group sub"`` for subcommands); dispatches INTERACTION_CREATE.

        Option values are checked and typed against the *synced* definition (ids for
        user/channel/role options, a dict with ``filename``/``data`` for attachments).
        """
        payload, inter = self._command_interaction(
            2,
            name,
            dict(options or {}),
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            admin=admin,
            focused=None,
        )
        await self._send_checked("INTERACTION_CREATE", payload)
        return inter

    async def autocomplete(
        self,
        name: str,
        options: dict[str, object],
        focused: str,
        *,
        user_id: int,
        guild_id: int | None,
        channel_id: int,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Dispatch an autocomplete interaction and return the choices the bot answered with."""
        values = dict(options)
        values.setdefault(focused, "")
        payload, inter = self._command_interaction(
            4,
            name,
            values,
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            admin=False,
            focused=focused,
        )
        await self._send_checked("INTERACTION_CREATE", payload)
        await self.wait_for(
            lambda: bool(inter.callbacks),
            timeout,
            description=f"autocomplete response for /{name} option {focused!r}",
        )
        if inter.callbacks[0]["type"] != 8:
            raise AssertionError(f"autocomplete answered with callback type {inter.callback_types}")
        return inter.choices or []

    async def click_component(
        self,
        message_id: int,
        custom_id: str,
        *,
        user_id: int,
        component_type: int = 2,
        values: list[str] | None = None,
        admin: bool = False,
    ) -> FakeInteraction:
        """A user clicks a button (or picks ``values`` in a select) on a message."""
        message = self._all_messages.get(message_id)
        if message is None:
            raise AssertionError(f"unknown message {message_id}")
        channel_id = int(message["channel_id"])
        guild_id = int(message["guild_id"]) if "guild_id" in message else None
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        payload, inter = self._interaction_base(
            3,
            data,
            name=custom_id,
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            admin=admin,
            message=message,
        )
        await self._send_checked("INTERACTION_CREATE", payload)
        return inter

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

    def interaction(self, interaction_id: int) -> FakeInteraction:
        return self._interactions[interaction_id]

    # ------------------------------------------------------------------ HTTP plumbing

    def _register_routes(self) -> None:
        snow = r"(?P<{}>\d+)"
        ch = snow.format("channel_id")
        msg = snow.format("message_id")
        app = snow.format("application_id")
        gid = snow.format("guild_id")
        tok = r"(?P<token>[^/]+)"
        routes: list[tuple[str, str, _RouteHandler, bool]] = [
            ("GET", r"/users/@me", self._r_get_me, True),
            ("GET", rf"/users/{snow.format('user_id')}", self._r_get_user, True),
            ("POST", r"/users/@me/channels", self._r_create_dm, True),
            ("GET", r"/gateway", self._r_gateway, False),
            ("GET", r"/gateway/bot", self._r_gateway_bot, True),
            ("GET", r"/oauth2/applications/@me", self._r_app_info, True),
            ("GET", r"/applications/@me", self._r_app_info, True),
            ("GET", rf"/applications/{app}/commands", self._r_get_commands, True),
            ("PUT", rf"/applications/{app}/commands", self._r_put_commands, True),
            ("POST", rf"/applications/{app}/commands", self._r_post_command, True),
            ("GET", rf"/applications/{app}/guilds/{gid}/commands", self._r_get_commands, True),
            ("PUT", rf"/applications/{app}/guilds/{gid}/commands", self._r_put_commands, True),
            ("POST", rf"/applications/{app}/guilds/{gid}/commands", self._r_post_command, True),
            ("GET", rf"/guilds/{gid}", self._r_get_guild, True),
            ("GET", rf"/guilds/{gid}/channels", self._r_get_guild_channels, True),
            ("GET", rf"/guilds/{gid}/members/{snow.format('user_id')}", self._r_get_member, True),
            ("GET", rf"/channels/{ch}", self._r_get_channel, True),
            ("PATCH", rf"/channels/{ch}", self._r_edit_channel, True),
            ("GET", rf"/channels/{ch}/messages", self._r_history, True),
            ("POST", rf"/channels/{ch}/messages", self._r_create_message, True),
            ("GET", rf"/channels/{ch}/messages/{msg}", self._r_get_message, True),
            ("PATCH", rf"/channels/{ch}/messages/{msg}", self._r_edit_message, True),
            ("DELETE", rf"/channels/{ch}/messages/{msg}", self._r_delete_message, True),
            ("POST", rf"/channels/{ch}/messages/{msg}/threads", self._r_thread_from_msg, True),
            ("POST", rf"/channels/{ch}/threads", self._r_thread, True),
            ("PUT", rf"/channels/{ch}/thread-members/@me", self._r_no_content_channel, True),
            ("POST", rf"/channels/{ch}/typing", self._r_no_content_channel, True),
            (
                "PUT",
                rf"/channels/{ch}/messages/{msg}/reactions/(?P<emoji>[^/]+)/@me",
                self._r_add_reaction,
                True,
            ),
            (
                "DELETE",
                rf"/channels/{ch}/messages/{msg}/reactions/(?P<emoji>[^/]+)/@me",
                self._r_remove_reaction,
                True,
            ),
            (
                "POST",
                rf"/interactions/{snow.format('interaction_id')}/{tok}/callback",
                self._r_callback,
                False,
            ),
            ("POST", rf"/webhooks/{app}/{tok}", self._r_followup, False),
            (
                "GET",
                rf"/webhooks/{app}/{tok}/messages/(?P<message_id>@original|\d+)",
                self._r_webhook_get,
                False,
            ),
            (
                "PATCH",
                rf"/webhooks/{app}/{tok}/messages/(?P<message_id>@original|\d+)",
                self._r_webhook_edit,
                False,
            ),
            (
                "DELETE",
                rf"/webhooks/{app}/{tok}/messages/(?P<message_id>@original|\d+)",
                self._r_webhook_delete,
                False,
            ),
        ]
        self._routes = [(m, re.compile(p), h, auth) for m, p, h, auth in routes]

    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        # discord.py only parses bodies whose Content-Type is exactly "application/json".
        return web.Response(
            body=json.dumps(data).encode(),
            status=status,
            headers={"Content-Type": "application/json"},
        )

    @staticmethod
    def _no_content() -> web.Response:
        return web.Response(status=204)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[_Upload]]:
        files: list[_Upload] = []
        if not request.can_read_body:
            return None, files
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader):
                    continue
                raw = await part.read(decode=False)
                if part.name == "payload_json":
                    body = json.loads(raw.decode())
                else:
                    files.append(
                        _Upload(
                            field_name=part.name or "",
                            filename=part.filename or "file",
                            data=bytes(raw),
                            content_type=part.headers.get(aiohttp.hdrs.CONTENT_TYPE),
                        )
                    )
            return body, files
        raw_body = await request.read()
        if not raw_body:
            return None, files
        try:
            return json.loads(raw_body), files
        except ValueError:
            return raw_body.decode(errors="replace"), files

    async def _api_handler(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        body, files = await self._read_body(request)
        record = RecordedRequest(
            method=method,
            path=path,
            query=dict(request.query),
            body=body,
            files=[{"filename": f.filename, "size": len(f.data)} for f in files],
        )
        self.requests.append((method, path, body))
        self.request_log.append(record)
        response = await self._route(request, method, path, body, files)
        record.status = response.status
        return response

    async def _route(
        self, request: web.Request, method: str, path: str, body: Any, files: list[_Upload]
    ) -> web.StreamResponse:
        for route_method, pattern, handler, auth in self._routes:
            if route_method != method:
                continue
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if auth and not request.headers.get("Authorization", "").startswith("Bot "):
                return self._json({"message": "401: Unauthorized", "code": 0}, 401)
            req = _Req(method=method, path=path, query=dict(request.query), body=body, files=files)
            try:
                return await handler(req, **match.groupdict())
            except _HTTPError as exc:
                if exc.status == 401:
                    self.expired_token_requests.append((method, path))
                return self._json(exc.body, exc.status)
            except Exception:
                # 503 is not retried by discord.py (500 would be, with long sleeps).
                self.errors.append(traceback.format_exc())
                log.exception("fakediscord: error handling %s %s", method, path)
                return self._json({"message": "fakediscord internal error", "code": 0}, 503)
        return self._unexpected(method, path)

    def _unexpected(self, method: str, path: str) -> web.Response:
        log.warning("fakediscord: unimplemented route %s %s", method, path)
        self.unexpected.append((method, path))
        return self._json(
            {"message": f"fakediscord: unimplemented route {method} {path}", "code": 0}, 404
        )

    async def _fallback_handler(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        self.requests.append((request.method, path, None))
        self.request_log.append(RecordedRequest(request.method, path, dict(request.query), None))
        return self._unexpected(request.method, path)

    async def _cdn_handler(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        item = self._cdn.get(path)
        if item is None:
            return web.Response(status=404, text="not found")
        data, content_type = item
        return web.Response(body=data, content_type=content_type)

    # ------------------------------------------------------------------ REST routes

    async def _r_get_me(self, req: _Req) -> web.Response:
        return self._json(self.bot_user)

    async def _r_get_user(self, req: _Req, user_id: str) -> web.Response:
        user = self.users.get(int(user_id))
        if user is None:
            raise _not_found("User", 10013)
        return self._json(user)

    async def _r_create_dm(self, req: _Req) -> web.Response:
        user_id = int((req.body or {}).get("recipient_id", 0))
        if user_id not in self.users:
            raise _not_found("User", 10013)
        return self._json(self.channels[self.dm_channel(user_id)])

    async def _r_gateway(self, req: _Req) -> web.Response:
        return self._json({"url": self.gateway_url})

    async def _r_gateway_bot(self, req: _Req) -> web.Response:
        return self._json(
            {
                "url": self.gateway_url,
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _r_app_info(self, req: _Req) -> web.Response:
        return self._json(self._app_info())

    def _check_app(self, application_id: str) -> None:
        if int(application_id) != self.application_id:
            raise _not_found("Application", 10002)

    async def _r_get_commands(
        self, req: _Req, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        self._check_app(application_id)
        scope = int(guild_id) if guild_id else None
        return self._json(self.synced_commands.get(scope, []))

    def _store_command(
        self, scope: int | None, spec: JSON, errors: _FormErrors, index: int
    ) -> JSON:
        name = str(spec.get("name", ""))
        ctype = int(spec.get("type", 1))
        if ctype == 1:
            if not COMMAND_NAME_RE.fullmatch(name) or name != name.lower():
                errors.add([index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
            description = spec.get("description") or ""
            if not 1 <= len(description) <= 100:
                errors.add(
                    [index, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100"
                )
            self._validate_command_options(spec.get("options") or [], errors, [index, "options"])
        for key_name, known in (("contexts", CONTEXTS), ("integration_types", INTEGRATION_TYPES)):
            values = spec.get(key_name)
            if values is not None and (
                not isinstance(values, list) or not values or any(v not in known for v in values)
            ):
                errors.add([index, key_name], "ENUM_TYPE_COERCE", f"Must be a subset of {known}")
        key = (scope, name, ctype)
        command_id = self._command_ids.get(key) or self._snowflake()
        self._command_ids[key] = command_id
        stored: JSON = {
            "id": str(command_id),
            "application_id": str(self.application_id),
            "version": str(self._snowflake()),
            "type": ctype,
            "name": name,
            "description": spec.get("description", ""),
            "options": copy.deepcopy(spec.get("options") or []),
            "default_member_permissions": spec.get("default_member_permissions"),
            "dm_permission": spec.get("dm_permission", True),
            "nsfw": spec.get("nsfw", False),
            "contexts": spec.get("contexts"),
            "integration_types": spec.get("integration_types", [0]),
            "name_localizations": spec.get("name_localizations"),
            "description_localizations": spec.get("description_localizations"),
        }
        if scope is not None:
            stored["guild_id"] = str(scope)
        return stored

    def _validate_command_options(
        self, options: list[JSON], errors: _FormErrors, path: list[str | int]
    ) -> None:
        if len(options) > 25:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        seen_optional = False
        for i, opt in enumerate(options):
            name = str(opt.get("name", ""))
            if not COMMAND_NAME_RE.fullmatch(name) or name != name.lower():
                errors.add([*path, i, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
            if not 1 <= len(opt.get("description") or "") <= 100:
                errors.add(
                    [*path, i, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100"
                )
            if int(opt.get("type", 0)) in (1, 2):
                self._validate_command_options(
                    opt.get("options") or [], errors, [*path, i, "options"]
                )
                continue
            if opt.get("required"):
                if seen_optional:
                    errors.add(
                        [*path, i],
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
            for key, low in (("min_length", 0), ("max_length", 1)):
                if key not in opt:
                    continue
                if int(opt.get("type", 0)) != 3:
                    errors.add([*path, i, key], "BASE_TYPE_BAD_TYPE", "Only for string options")
                elif not low <= int(opt[key]) <= STRING_OPTION_MAX:
                    errors.add(
                        [*path, i, key],
                        "NUMBER_TYPE_MAX" if int(opt[key]) > low else "NUMBER_TYPE_MIN",
                        f"Must be between {low} and {STRING_OPTION_MAX}.",
                    )
            if int(opt.get("min_length", 0)) > int(opt.get("max_length", STRING_OPTION_MAX)):
                errors.add([*path, i], "BASE_TYPE_BAD_LENGTH", "min_length exceeds max_length")
            choices = opt.get("choices") or []
            if len(choices) > 25:
                errors.add([*path, i, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer.")

    async def _r_put_commands(
        self, req: _Req, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        self._check_app(application_id)
        scope = int(guild_id) if guild_id else None
        if scope is not None and scope not in self.guilds:
            raise _HTTPError(403, "Missing Access", 50001)
        specs = req.body if isinstance(req.body, list) else []
        errors = _FormErrors()
        names = [(str(s.get("name")), int(s.get("type", 1))) for s in specs]
        if len(set(names)) != len(names):
            errors.add(
                [],
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            )
        stored = [self._store_command(scope, spec, errors, i) for i, spec in enumerate(specs)]
        errors.raise_if_any()
        self.sync_calls += 1
        self.synced_commands[scope] = stored
        return self._json(stored)

    async def _r_post_command(
        self, req: _Req, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        self._check_app(application_id)
        scope = int(guild_id) if guild_id else None
        errors = _FormErrors()
        stored = self._store_command(scope, req.body or {}, errors, 0)
        errors.raise_if_any()
        existing = [
            c
            for c in self.synced_commands.get(scope, [])
            if (c["name"], c["type"]) != (stored["name"], stored["type"])
        ]
        self.synced_commands[scope] = [*existing, stored]
        return self._json(stored, 201)

    def _guild(self, guild_id: str) -> _Guild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise _not_found("Guild", 10004)
        return guild

    async def _r_get_guild(self, req: _Req, guild_id: str) -> web.Response:
        payload = self._guild_payload(self._guild(guild_id))
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at"):
            payload.pop(key, None)
        return self._json(payload)

    async def _r_get_guild_channels(self, req: _Req, guild_id: str) -> web.Response:
        guild = self._guild(guild_id)
        return self._json(
            [
                self.channels[c]
                for c in guild.channel_ids
                if c in self.channels and self.channels[c]["type"] not in THREAD_TYPES
            ]
        )

    async def _r_get_member(self, req: _Req, guild_id: str, user_id: str) -> web.Response:
        guild = self._guild(guild_id)
        if int(user_id) not in guild.members:
            raise _not_found("Member", 10007)
        return self._json(self._member_payload(guild.id, int(user_id)))

    async def _r_get_channel(self, req: _Req, channel_id: str) -> web.Response:
        return self._json(self._channel(int(channel_id)))

    async def _r_edit_channel(self, req: _Req, channel_id: str) -> web.Response:
        channel = self._channel(int(channel_id))
        body = req.body or {}
        if "name" in body:
            channel["name"] = body["name"]
        if channel["type"] in THREAD_TYPES:
            meta = channel["thread_metadata"]
            for key in ("archived", "locked", "auto_archive_duration", "invitable"):
                if key in body:
                    meta[key] = body[key]
            event = "THREAD_UPDATE"
        else:
            for key in ("topic", "nsfw", "rate_limit_per_user", "position", "parent_id"):
                if key in body:
                    channel[key] = body[key]
            event = "CHANNEL_UPDATE"
        if channel.get("guild_id"):
            self._dispatch(event, copy.deepcopy(channel))
        return self._json(channel)

    async def _r_history(self, req: _Req, channel_id: str) -> web.Response:
        cid = int(channel_id)
        self._channel(cid)
        ids = sorted(self._history.get(cid, []))
        limit = max(1, min(100, int(req.query.get("limit", 50))))
        if "before" in req.query:
            ids = [i for i in ids if i < int(req.query["before"])]
            ids = ids[-limit:]
        elif "after" in req.query:
            ids = [i for i in ids if i > int(req.query["after"])][:limit]
        elif "around" in req.query:
            around = int(req.query["around"])
            older = [i for i in ids if i <= around][-(limit // 2 + 1) :]
            newer = [i for i in ids if i > around][: limit - len(older)]
            ids = older + newer
        else:
            ids = ids[-limit:]
        return self._json([self._all_messages[i] for i in sorted(ids, reverse=True)])

    async def _r_create_message(self, req: _Req, channel_id: str) -> web.Response:
        cid = int(channel_id)
        channel = self._channel(cid)
        if channel["type"] not in (0, 1, 2, 5, 10, 11, 12, 13):
            raise _HTTPError(400, "Cannot send messages in a non-text channel", 50008)
        if channel["type"] in THREAD_TYPES and channel["thread_metadata"].get("locked"):
            raise _HTTPError(403, "Thread is locked", 160005)
        self._check_can_send(channel, req.body)
        msg = self._message_from_body(channel, req.body, req.files)
        if channel["type"] in THREAD_TYPES:
            channel["thread_metadata"]["archived"] = False
        self._store_message(msg, bot_channel_message=True)
        if self.echo_bot_messages:
            self._dispatch("MESSAGE_CREATE", copy.deepcopy(msg))
        return self._json(msg)

    def _message(self, channel_id: str, message_id: str) -> JSON:
        cid = int(channel_id)
        self._channel(cid)
        msg = self._all_messages.get(int(message_id))
        if msg is None or int(msg["channel_id"]) != cid:
            raise _not_found("Message", 10008)
        return msg

    async def _r_get_message(self, req: _Req, channel_id: str, message_id: str) -> web.Response:
        return self._json(self._message(channel_id, message_id))

    async def _r_edit_message(self, req: _Req, channel_id: str, message_id: str) -> web.Response:
        msg = self._message(channel_id, message_id)
        if int(msg["author"]["id"]) != self.application_id:
            raise _HTTPError(403, "Cannot edit a message authored by another user", 50005)
        self._apply_edit(msg, req.body or {}, req.files)
        self._dispatch("MESSAGE_UPDATE", copy.deepcopy(msg))
        return self._json(msg)

    async def _r_delete_message(self, req: _Req, channel_id: str, message_id: str) -> web.Response:
        msg = self._message(channel_id, message_id)
        self._forget_message(msg)
        event: JSON = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if "guild_id" in msg:
            event["guild_id"] = msg["guild_id"]
        self._dispatch("MESSAGE_DELETE", event)
        return self._no_content()

    def _check_thread_name(self, body: JSON) -> str:
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _form_error(
                {
                    "name": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_BAD_LENGTH",
                                "message": "Must be between 1 and 100 in length.",
                            }
                        ]
                    }
                }
            )
        return name

    async def _r_thread_from_msg(self, req: _Req, channel_id: str, message_id: str) -> web.Response:
        msg = self._message(channel_id, message_id)
        channel = self._channel(int(channel_id))
        if channel["type"] not in TEXT_LIKE_TYPES:
            raise _HTTPError(400, "Cannot execute action on this channel type", 50024)
        if int(message_id) in self.channels or "thread" in msg:
            raise _HTTPError(400, "A thread has already been created for this message", 160004)
        body = req.body or {}
        thread = self._new_thread(
            channel,
            name=self._check_thread_name(body),
            owner_id=self.application_id,
            kind=10 if channel["type"] == 5 else 11,
            thread_id=int(message_id),
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        msg["thread"] = copy.deepcopy(thread)
        self._dispatch("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return self._json(thread, 201)

    async def _r_thread(self, req: _Req, channel_id: str) -> web.Response:
        channel = self._channel(int(channel_id))
        body = req.body or {}
        is_forum = channel["type"] in (15, 16)
        kind = 11 if is_forum else int(body.get("type") or 12)
        thread = self._new_thread(
            channel,
            name=self._check_thread_name(body),
            owner_id=self.application_id,
            kind=kind,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        result = copy.deepcopy(thread)
        if is_forum:
            starter = self._message_from_body(thread, body.get("message") or {}, req.files)
            starter["id"] = thread["id"]
            self._store_message(starter, bot_channel_message=True)
            result["message"] = starter
        self._dispatch("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        if is_forum and self.echo_bot_messages:
            self._dispatch("MESSAGE_CREATE", copy.deepcopy(result["message"]))
        return self._json(result, 201)

    async def _r_no_content_channel(self, req: _Req, channel_id: str) -> web.Response:
        self._channel(int(channel_id))
        return self._no_content()

    async def _r_add_reaction(
        self, req: _Req, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        self._message(channel_id, message_id)
        self.reactions.append((int(channel_id), int(message_id), emoji))
        return self._no_content()

    async def _r_remove_reaction(
        self, req: _Req, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        self._message(channel_id, message_id)
        with contextlib.suppress(ValueError):
            self.reactions.remove((int(channel_id), int(message_id), emoji))
        return self._no_content()

    # --- interactions & webhooks

    def _interaction_channel(self, inter: FakeInteraction) -> JSON:
        channel = self.channels.get(inter.channel_id)
        if channel is None:
            raise _not_found("Channel", 10003)
        return channel

    def _echo(self, msg: JSON, event: str = "MESSAGE_CREATE") -> None:
        flags = int(msg.get("flags") or 0)
        if self.echo_bot_messages and not flags & F_EPHEMERAL:
            self._dispatch(event, copy.deepcopy(msg))

    async def _r_callback(self, req: _Req, interaction_id: str, token: str) -> web.Response:
        inter = self._interactions.get(int(interaction_id))
        if inter is None or inter.token != token:
            raise _not_found("interaction", 10062)
        if inter.callbacks:
            raise _HTTPError(400, "Interaction has already been acknowledged.", 40060)
        timeout = self.interaction_response_timeout
        if timeout is not None and time.monotonic() - inter.dispatched_at > timeout:
            inter.expired = True
            raise _not_found("interaction", 10062)
        body = req.body if isinstance(req.body, dict) else {}
        cb_type = int(body.get("type", 0))
        data = body.get("data") or {}
        allowed = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9), 4: (8,), 5: (4, 5, 6, 7)}.get(inter.type, ())
        if cb_type not in allowed:
            raise _HTTPError(
                400, "Interaction callback type is invalid for this interaction", 50035
            )
        message: JSON | None = None
        if cb_type == 4:
            message = self._message_from_body(
                self._interaction_channel(inter),
                data,
                req.files,
                webhook=True,
                interaction=inter,
                allowed_flags=F_EPHEMERAL
                | F_SUPPRESS_EMBEDS
                | F_SUPPRESS_NOTIFICATIONS
                | F_IS_COMPONENTS_V2,
            )
            inter.original = message
            self._store_message(message, bot_channel_message=False)
            self._echo(message)
        elif cb_type == 5:
            flags = F_LOADING | (int(data.get("flags") or 0) & F_EPHEMERAL)
            message = self._build_message(
                channel=self._interaction_channel(inter),
                author_id=self.application_id,
                content="",
                flags=flags,
                webhook=True,
                interaction=inter,
            )
            inter.original = message
            self._store_message(message, bot_channel_message=False)
            self._echo(message)
        elif cb_type in (6, 7):
            target = self._all_messages.get(inter.target_message_id or 0)
            if target is None:
                raise _not_found("Message", 10008)
            if cb_type == 7:
                self._apply_edit(target, data, req.files)
                self._echo(target, "MESSAGE_UPDATE")
            inter.original = target
            message = target
        elif cb_type == 8:
            self._validate_choices(data.get("choices"))
        elif cb_type == 9 and (not data.get("custom_id") or not data.get("title")):
            raise _form_error({"data": {"_errors": [{"code": "MODAL", "message": "bad modal"}]}})
        inter.callbacks.append({"type": cb_type, "data": data})
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return self._no_content()
        resource: JSON = {"type": cb_type}
        if message is not None:
            resource["message"] = message
        return self._json(
            {
                "interaction": {
                    "id": str(inter.id),
                    "type": inter.type,
                    "response_message_id": message["id"] if message is not None else None,
                    "response_message_loading": cb_type == 5,
                    "response_message_ephemeral": bool(
                        message is not None and int(message.get("flags") or 0) & F_EPHEMERAL
                    ),
                },
                "resource": resource,
            }
        )

    @staticmethod
    def _validate_choices(choices: object) -> None:
        errors = _FormErrors()
        if not isinstance(choices, list):
            errors.add(["data", "choices"], "BASE_TYPE_REQUIRED", "This field is required")
            errors.raise_if_any()
            return
        if len(choices) > 25:
            errors.add(
                ["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for i, choice in enumerate(choices):
            name = str(choice.get("name") or "")
            if not 1 <= len(name) <= 100:
                errors.add(
                    ["data", "choices", i, "name"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            value = choice.get("value")
            if isinstance(value, str) and len(value) > 100:
                errors.add(
                    ["data", "choices", i, "value"],
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 100 or fewer in length.",
                )
        errors.raise_if_any()

    def _webhook_interaction(self, application_id: str, token: str) -> FakeInteraction:
        inter = self._interactions_by_token.get(token)
        if inter is None or int(application_id) != self.application_id or not inter.callbacks:
            raise _not_found("Webhook", 10015)
        lifetime = self.interaction_token_lifetime
        if lifetime is not None and self.now() - inter.created_at > lifetime:
            inter.token_expired = True
            raise _HTTPError(401, "Invalid Webhook Token", 50027)
        return inter

    def _webhook_message(self, inter: FakeInteraction, message_id: str) -> JSON:
        if message_id == "@original":
            if inter.original is None:
                raise _not_found("Message", 10008)
            return inter.original
        for msg in [inter.original, *inter.followups]:
            if msg is not None and msg["id"] == message_id:
                return msg
        raise _not_found("Message", 10008)

    async def _r_followup(self, req: _Req, application_id: str, token: str) -> web.Response:
        inter = self._webhook_interaction(application_id, token)
        msg = self._message_from_body(
            self._interaction_channel(inter),
            req.body,
            req.files,
            webhook=True,
            interaction=inter,
            allowed_flags=F_EPHEMERAL
            | F_SUPPRESS_EMBEDS
            | F_SUPPRESS_NOTIFICATIONS
            | F_IS_COMPONENTS_V2,
        )
        inter.followups.append(msg)
        self._store_message(msg, bot_channel_message=False)
        self._echo(msg)
        if req.query.get("wait", "").lower() in ("1", "true"):
            return self._json(msg)
        return self._no_content()

    async def _r_webhook_get(
        self, req: _Req, application_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(application_id, token)
        return self._json(self._webhook_message(inter, message_id))

    async def _r_webhook_edit(
        self, req: _Req, application_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(application_id, token)
        msg = self._webhook_message(inter, message_id)
        self._apply_edit(msg, req.body or {}, req.files)
        if msg is inter.original:
            inter.edits += 1
        self._echo(msg, "MESSAGE_UPDATE")
        return self._json(msg)

    async def _r_webhook_delete(
        self, req: _Req, application_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(application_id, token)
        msg = self._webhook_message(inter, message_id)
        if msg is inter.original:
            inter.original = None
            inter.original_deleted = True
        else:
            inter.followups.remove(msg)
        self._forget_message(msg)
        return self._no_content()


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
