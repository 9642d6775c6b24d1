"""Constants, errors and small records shared by the parts of the fake Discord."""

from __future__ import annotations

import datetime
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import discord
from aiohttp import web

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


_RouteHandler = Callable[..., Awaitable[web.StreamResponse]]
