"""Application commands as a user invokes them: lookup, availability (permissions, contexts),
option resolution and validation, interaction payloads, ``invoke_command``, ``autocomplete``
and ``click_component``."""

from __future__ import annotations

import copy
import itertools
import secrets
from typing import Any

from tests.fakes.discord.common import (
    EVERYONE_PERMISSIONS,
    JSON,
    P_ADMINISTRATOR,
    STRING_OPTION_MAX,
    CommandNotAvailable,
)
from tests.fakes.discord.interactions import FakeInteraction


class CommandsMixin:
    """Invoking application commands on :class:`FakeDiscord` as a user would."""

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
