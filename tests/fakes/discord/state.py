"""The world of the fake Discord: ids, users, guilds, roles, members, channels, threads, DMs,
and the permissions that follow from roles and channel overwrites."""

from __future__ import annotations

import copy
import time

from tests.fakes.discord.common import (
    ADMIN_ROLE_PERMISSIONS,
    DISCORD_EPOCH_MS,
    EVERYONE_PERMISSIONS,
    JSON,
    P_ADMINISTRATOR,
    P_ALL,
    P_READ_MESSAGE_HISTORY,
    P_SEND_MESSAGES,
    P_SEND_MESSAGES_IN_THREADS,
    P_VIEW_CHANNEL,
    THREAD_TYPES,
    _Guild,
    _HTTPError,
    _now_iso,
)


class StateMixin:
    """Ids, payloads, permissions and world building of :class:`FakeDiscord`."""

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
