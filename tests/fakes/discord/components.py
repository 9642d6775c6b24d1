"""Message components in the fake Discord: validated like Discord validates them, and clicked
as a member would (:meth:`ComponentsMixin.click_button`).

What Discord refuses (400, Invalid Form Body 50035, with the path of the offending key), for
messages without the IS_COMPONENTS_V2 flag: a top-level component that is not an action row
(type 1); more than 5 action rows; an action row with no component or more than 5 buttons, or
a select menu sharing its row; a button (type 2) with a style outside 1-5, a label over 80
characters, neither label nor emoji; a link button (style 5) without ``url`` or with a
``custom_id``; any other button without ``custom_id``; a ``custom_id`` outside 1-100
characters or used twice in one message; an unknown component type.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.discord.common import F_IS_COMPONENTS_V2, JSON, _FormErrors
from tests.fakes.discord.interactions import FakeInteraction

ACTION_ROW, BUTTON = 1, 2
SELECTS = (3, 5, 6, 7, 8)
LINK = 5
MAX_ROWS = 5
MAX_PER_ROW = 5
CUSTOM_ID_MAX = 100
LABEL_MAX = 80


class ComponentsMixin:
    """Component validation and button clicks for :class:`FakeDiscord`."""

    def _validate_components(self, msg: JSON, errors: _FormErrors) -> None:
        """Add Discord's errors for ``msg["components"]`` to ``errors``."""
        components = msg.get("components") or []
        if int(msg.get("flags") or 0) & F_IS_COMPONENTS_V2:
            return  # layout components: not modelled
        if not isinstance(components, list):
            errors.add(["components"], "LIST_TYPE_CONVERT", "Must be a list.")
            return
        if len(components) > MAX_ROWS:
            errors.add(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        seen: set[str] = set()
        for i, row in enumerate(components):
            path: list[str | int] = ["components", i]
            if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
                errors.add(
                    [*path, "type"],
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,).',
                )
                continue
            children = row.get("components") or []
            if not 1 <= len(children) <= MAX_PER_ROW:
                errors.add(
                    [*path, "components"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                )
            if any(c.get("type") in SELECTS for c in children) and len(children) > 1:
                errors.add(
                    [*path, "components"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            for j, child in enumerate(children):
                self._validate_child(child, [*path, "components", j], seen, errors)

    @staticmethod
    def _validate_child(
        child: JSON, path: list[str | int], seen: set[str], errors: _FormErrors
    ) -> None:
        kind = child.get("type")
        if kind not in (BUTTON, *SELECTS):
            errors.add([*path, "type"], "UNION_TYPE_CHOICES", "Invalid component type.")
            return
        custom_id = child.get("custom_id")
        if kind == BUTTON:
            style = child.get("style")
            if not isinstance(style, int) or not 1 <= style <= 5:
                errors.add([*path, "style"], "BASE_TYPE_CHOICES", "Value must be one of (1-5).")
            label = child.get("label")
            if label is not None and len(str(label)) > LABEL_MAX:
                errors.add(
                    [*path, "label"], "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."
                )
            if not label and not child.get("emoji"):
                errors.add([*path], "BUTTON_COMPONENT_INVALID", "A button needs a label or emoji.")
            if style == LINK:
                if not child.get("url"):
                    errors.add([*path, "url"], "BASE_TYPE_REQUIRED", "This field is required")
                if custom_id is not None:
                    errors.add(
                        [*path, "custom_id"],
                        "BUTTON_COMPONENT_CUSTOM_ID_INVALID",
                        "A link button cannot have a custom id.",
                    )
                return
            if child.get("url") is not None:
                errors.add([*path, "url"], "BUTTON_COMPONENT_URL_INVALID", "Only link buttons.")
        if custom_id is None:
            errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
            return
        if not 1 <= len(str(custom_id)) <= CUSTOM_ID_MAX:
            errors.add(
                [*path, "custom_id"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        if custom_id in seen:
            errors.add(
                [*path, "custom_id"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(str(custom_id))

    def buttons(self, message_id: int) -> list[JSON]:
        """The buttons of a stored message, row by row."""
        message = self._all_messages.get(message_id)  # type: ignore[attr-defined]
        if message is None:
            raise AssertionError(f"unknown message {message_id}")
        return [
            c
            for row in message.get("components") or []
            for c in row.get("components") or []
            if c.get("type") == BUTTON
        ]

    async def click_button(
        self, message_id: int, custom_id: str, *, user_id: int, timeout: float = 10.0
    ) -> FakeInteraction:
        """A member clicks the button ``custom_id`` of a message, as Discord's client allows:
        it must be on the message, enabled, and not a link. Dispatches INTERACTION_CREATE
        (type 3, MESSAGE_COMPONENT, ``component_type`` 2) and waits for the bot's response
        (type 4 message, 6 deferred update or 7 update; ephemeral flag 64 on the data)."""
        found = [b for b in self.buttons(message_id) if b.get("custom_id") == custom_id]
        if not found:
            ids = [b.get("custom_id") for b in self.buttons(message_id)]
            raise AssertionError(f"message {message_id} has no button {custom_id!r} ({ids})")
        if found[0].get("disabled"):
            raise AssertionError(f"button {custom_id!r} is disabled")
        inter: FakeInteraction = await self.click_component(  # type: ignore[attr-defined]
            message_id, custom_id, user_id=user_id, component_type=BUTTON
        )
        await self.wait_for(  # type: ignore[attr-defined]
            lambda: bool(inter.callbacks),
            timeout,
            description=f"a response to the click on {custom_id!r}",
        )
        await asyncio.sleep(0)
        return inter


def response_text(inter: FakeInteraction) -> tuple[str, bool]:
    """The content of a component interaction's type-4 response and whether it is ephemeral."""
    for cb in inter.callbacks:
        if cb["type"] == 4:
            data: dict[str, Any] = cb.get("data") or {}
            return str(data.get("content") or ""), bool(int(data.get("flags") or 0) & 64)
    raise AssertionError(f"no message response: {inter!r}")
