"""The fake Discord's gateway: the websocket, compression, IDENTIFY/RESUME, intents, shards and
event dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import json
import secrets
import traceback
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from tests.fakes.discord.common import (
    I_DIRECT_MESSAGES,
    I_GUILD_MEMBERS,
    I_GUILD_MESSAGES,
    I_GUILDS,
    I_MESSAGE_CONTENT,
    JSON,
    log,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord


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


class GatewayMixin:
    """The gateway side of :class:`FakeDiscord`."""

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
