"""Messages in the fake Discord: mentions, limits and validation, attachments, edits, and
messages that tests send as users (:meth:`MessagesMixin.send_message`, ``send_dm``)."""

from __future__ import annotations

import contextlib
import copy
import mimetypes
import re
from typing import Any

from tests.fakes.discord.common import (
    F_EPHEMERAL,
    F_IS_COMPONENTS_V2,
    F_LOADING,
    F_SUPPRESS_EMBEDS,
    F_SUPPRESS_NOTIFICATIONS,
    JSON,
    MENTION_RE,
    ROLE_MENTION_RE,
    THREAD_TYPES,
    _form_error,
    _FormErrors,
    _HTTPError,
    _not_found,
    _now_iso,
    _Upload,
)
from tests.fakes.discord.interactions import FakeInteraction


class MessagesMixin:
    """Building, validating, storing and sending messages for :class:`FakeDiscord`."""

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
        self._validate_components(draft, errors)  # type: ignore[attr-defined]
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
        self._validate_components(updated, errors)  # type: ignore[attr-defined]
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
