"""Forum channels (type 15) and their posts in the fake Discord.

A forum post is a public thread (type 11) whose starter message has the thread's id. Created
by the bot with ``POST /channels/{forum}/threads`` (``name`` 1–100 characters and ``message``
are required, the message validated like any other) or by a user with
:meth:`ForumsMixin.create_forum_post`; either way the gateway gets THREAD_CREATE and then the
starter's MESSAGE_CREATE (a user's post can also deliver them the other way round, or the
MESSAGE_CREATE not at all, as happens on Discord). Messages cannot be sent to the forum itself
(400, 50008); posting in a post's thread works like any thread.
"""

from __future__ import annotations

import copy
from typing import Literal

from aiohttp import web

from tests.fakes.discord.common import (
    JSON,
    P_SEND_MESSAGES,
    P_VIEW_CHANNEL,
    _form_error,
    _FormErrors,
    _HTTPError,
    _Req,
)

FORUM_TYPES = (15, 16)  # forum, media

Order = Literal["thread_first", "message_first", "thread_only", "offline"]


class ForumsMixin:
    """Forum posts for :class:`FakeDiscord` (used by ``RestMixin._r_thread``)."""

    def add_forum(self, guild_id: int, name: str = "help") -> int:
        """A forum channel (type 15) in ``guild_id``; returns its id."""
        return self.add_channel(guild_id, name, kind=15)

    def _check_forum_post(self, body: object) -> tuple[str, JSON]:
        """``name`` and ``message`` of a forum post body, or 400 like Discord."""
        if not isinstance(body, dict):
            raise _form_error(
                {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Expected a dict"}]}
            )
        name = self._check_thread_name(body)
        message = body.get("message")
        if not isinstance(message, dict):
            raise _form_error(
                {
                    "message": {
                        "_errors": [
                            {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}
                        ]
                    }
                }
            )
        return name, message

    async def _r_forum_post(self, req: _Req, forum: JSON) -> web.Response:
        """The bot creates a post: a thread and its starter message in one request."""
        name, message = self._check_forum_post(req.body)
        self._check_forum_permission(forum, self.application_id)
        # the starter is validated before anything exists: a bad message creates no thread
        errors = _FormErrors()
        draft = {**message, "attachments": message.get("attachments") or req.files}
        self._validate_message(draft, errors, check_empty=True)
        errors.raise_if_any()
        body = req.body or {}
        thread = self._new_thread(
            forum,
            name=name,
            owner_id=self.application_id,
            kind=11,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        thread["applied_tags"] = [str(t) for t in body.get("applied_tags") or []]
        starter = self._message_from_body(thread, message, req.files)
        starter["id"] = thread["id"]
        self._store_message(starter, bot_channel_message=True)
        result = {**copy.deepcopy(thread), "message": copy.deepcopy(starter)}
        self._dispatch("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        if self.echo_bot_messages:
            self._dispatch("MESSAGE_CREATE", copy.deepcopy(starter))
        return self._json(result, 201)

    def _check_forum_permission(self, forum: JSON, user_id: int) -> None:
        """Creating a post needs View Channel and Send Messages in the forum."""
        perms = self.channel_permissions(int(forum["id"]), user_id)
        if not perms & P_VIEW_CHANNEL:
            raise _HTTPError(403, "Missing Access", 50001)
        if not perms & P_SEND_MESSAGES:
            raise _HTTPError(403, "Missing Permissions", 50013)

    async def create_forum_post(
        self,
        forum_id: int,
        author_id: int,
        title: str,
        content: str,
        *,
        order: Order = "thread_first",
    ) -> tuple[int, JSON]:
        """A user creates a post in a forum: returns (thread id, starter message).

        ``order``: THREAD_CREATE then the starter's MESSAGE_CREATE (what Discord usually
        sends), ``message_first``, or ``thread_only`` (the MESSAGE_CREATE never arrives; the
        starter is still readable with ``GET /channels/{thread}/messages/{thread}``), or
        ``offline`` (no events: a post made while the bot was away).
        """
        forum = self.channels.get(forum_id)
        if forum is None or forum["type"] not in FORUM_TYPES:
            raise ValueError(f"{forum_id} is not a forum channel")
        if not 1 <= len(title) <= 100:
            raise ValueError("a forum post's title has 1-100 characters")
        if not content.strip() or len(content) > 2000:
            raise ValueError("a forum post's first message has 1-2000 characters")
        guild_id = int(forum["guild_id"])
        self._ensure_member(guild_id, author_id)
        thread = self._new_thread(forum, name=title, owner_id=author_id, kind=11)
        thread["member"]["user_id"] = str(author_id)
        starter = self._build_message(
            channel=thread, author_id=author_id, content=content, message_id=int(thread["id"])
        )
        self._store_message(starter, bot_channel_message=False)
        create = {**copy.deepcopy(thread), "newly_created": True}
        create.pop("member", None)  # the bot is not a member of someone else's post
        if order == "offline":
            pass
        elif order == "message_first":
            await self._send_checked("MESSAGE_CREATE", copy.deepcopy(starter))
            await self._send_checked("THREAD_CREATE", create)
        else:
            await self._send_checked("THREAD_CREATE", create)
            if order == "thread_first":
                await self._send_checked("MESSAGE_CREATE", copy.deepcopy(starter))
        return int(thread["id"]), starter
