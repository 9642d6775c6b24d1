"""Interactions over REST: :class:`FakeInteraction`, the command registry the bot syncs (names
and options validated), and responses — the callback, follow-ups and webhook edits, with
Discord's 3 s acknowledgement and 15-minute token lifetime."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord.common import (
    COMMAND_NAME_RE,
    CONTEXTS,
    F_EPHEMERAL,
    F_IS_COMPONENTS_V2,
    F_LOADING,
    F_SUPPRESS_EMBEDS,
    F_SUPPRESS_NOTIFICATIONS,
    INTEGRATION_TYPES,
    JSON,
    STRING_OPTION_MAX,
    _form_error,
    _FormErrors,
    _HTTPError,
    _not_found,
    _Req,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord


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


class InteractionsMixin:
    """Command sync and interaction responses of :class:`FakeDiscord`."""

    def interaction(self, interaction_id: int) -> FakeInteraction:
        return self._interactions[interaction_id]

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
