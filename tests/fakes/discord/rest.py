"""The fake Discord's HTTP side: the aiohttp app, routing, request recording and the REST routes
for users, the gateway URL, guilds, channels, messages, threads and reactions."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import traceback
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.discord.common import (
    JSON,
    TEXT_LIKE_TYPES,
    THREAD_TYPES,
    RecordedRequest,
    _form_error,
    _Guild,
    _HTTPError,
    _not_found,
    _Req,
    _RouteHandler,
    _Upload,
    log,
)


class RestMixin:
    """HTTP plumbing and REST routes of :class:`FakeDiscord`."""

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
        for delay_method, pattern, seconds in self.response_delays:
            if delay_method == method and pattern.fullmatch(path):
                await asyncio.sleep(seconds)
                break
        return response

    def delay_responses(self, method: str, path: str, seconds: float) -> None:
        """Simulate latency: the response to ``method`` on a path matching the regex ``path``
        (e.g. ``r"/channels/\\d+/messages"``) reaches the client ``seconds`` after the request
        took effect -- a gateway event the request caused can arrive first, as on Discord."""
        self.response_delays.append((method, re.compile(path), seconds))

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
        if channel["type"] in (15, 16):  # a forum post (tests/fakes/discord/forums.py)
            return await self._r_forum_post(req, channel)
        kind = int(body.get("type") or 12)
        thread = self._new_thread(
            channel,
            name=self._check_thread_name(body),
            owner_id=self.application_id,
            kind=kind,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        self._dispatch("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return self._json(copy.deepcopy(thread), 201)

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
