"""The fake Discord refuses the component payloads Discord refuses, and clicks only real buttons."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord.ext import commands

from tests.conftest import DiscordWorld
from tests.fakes.discord import run_bot


def button(**over: Any) -> dict[str, Any]:
    return {"type": 2, "style": 2, "label": "ok", "custom_id": "x", **over}


def row(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(children)}


def make_bot() -> commands.Bot:
    return commands.Bot(command_prefix="!", intents=discord.Intents.default(), help_command=None)


R0 = "components.0.components"
BAD = {  # the payload, and where and how Discord reports it
    "not an action row": ([button()], "components.0.type", "UNION_TYPE_CHOICES"),
    "six rows": (
        [row(button(custom_id=f"b{i}")) for i in range(6)],
        "components",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "six buttons in a row": (
        [row(*(button(custom_id=f"b{i}") for i in range(6)))],
        R0,
        "BASE_TYPE_BAD_LENGTH",
    ),
    "empty row": ([row()], R0, "BASE_TYPE_BAD_LENGTH"),
    "custom_id too long": (
        [row(button(custom_id="x" * 101))],
        f"{R0}.0.custom_id",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "empty custom_id": ([row(button(custom_id=""))], f"{R0}.0.custom_id", "BASE_TYPE_BAD_LENGTH"),
    "duplicate custom_id": (
        [row(button(), button())],
        f"{R0}.1.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    "duplicate across rows": (
        [row(button()), row(button())],
        "components.1.components.0.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    "label too long": ([row(button(label="l" * 81))], f"{R0}.0.label", "BASE_TYPE_MAX_LENGTH"),
    "style 0": ([row(button(style=0))], f"{R0}.0.style", "BASE_TYPE_CHOICES"),
    "style 6": ([row(button(style=6))], f"{R0}.0.style", "BASE_TYPE_CHOICES"),
    "link without url": (
        [row(button(style=5, custom_id=None))],
        f"{R0}.0.url",
        "BASE_TYPE_REQUIRED",
    ),
    "link with custom_id": (
        [row(button(style=5, url="https://example.com"))],
        f"{R0}.0.custom_id",
        "BUTTON_COMPONENT_CUSTOM_ID_INVALID",
    ),
    "button without custom_id": (
        [row(button(custom_id=None))],
        f"{R0}.0.custom_id",
        "BASE_TYPE_REQUIRED",
    ),
    "url on a non-link button": (
        [row(button(url="https://example.com"))],
        f"{R0}.0.url",
        "BUTTON_COMPONENT_URL_INVALID",
    ),
    "no label or emoji": ([row(button(label=None))], f"{R0}.0", "BUTTON_COMPONENT_INVALID"),
    "unknown type": ([row({"type": 99, "custom_id": "z"})], f"{R0}.0.type", "UNION_TYPE_CHOICES"),
    "select sharing a row": (
        [row({"type": 3, "custom_id": "s", "options": []}, button())],
        R0,
        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
    ),
}


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """Discord's nested error tree as ``{"components.0.type": [codes]}``."""
    out: dict[str, list[str]] = {}
    for key, value in tree.items():
        if key == "_errors":
            out[prefix] = [e["code"] for e in value]
        else:
            out.update(flat(value, f"{prefix}.{key}" if prefix else key))
    return out


@pytest.mark.parametrize("name", list(BAD))
async def test_bad_components_are_refused(discord_world: DiscordWorld, name: str) -> None:
    components, path, code = BAD[name]
    w = discord_world
    bot = make_bot()
    async with run_bot(w.fake, bot):
        route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=w.channel)
        with pytest.raises(discord.HTTPException) as e:
            await bot.http.request(route, json={"content": "hi", "components": components})
        assert e.value.status == 400 and e.value.code == 50035
        assert flat(e.value._errors or {}) == {path: [code]}
        assert w.fake.request_log[-1].status == 400
        assert w.fake.messages[w.channel] == []
        # the same components in an edit are refused too
        sent = await bot.http.request(route, json={"content": "plain"})
        edit = discord.http.Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=w.channel,
            message_id=sent["id"],
        )
        with pytest.raises(discord.HTTPException) as e2:
            await bot.http.request(edit, json={"components": components})
        assert e2.value.code == 50035 and flat(e2.value._errors or {}) == {path: [code]}
        assert w.fake.messages[w.channel][0]["components"] == []


async def test_good_components_are_stored_and_links_allowed(discord_world: DiscordWorld) -> None:
    w = discord_world
    bot = make_bot()
    ok = [
        row(*(button(custom_id=f"b{i}", style=1 + i % 4) for i in range(5))),
        row(button(style=5, custom_id=None, url="https://example.com", label="site")),
        row(button(custom_id="e", label=None, emoji={"name": "👍"})),
        row({"type": 3, "custom_id": "pick", "options": [{"label": "a", "value": "a"}]}),
        row(button(custom_id="c" * 100, label="l" * 80)),
    ]
    async with run_bot(w.fake, bot):
        route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=w.channel)
        sent = await bot.http.request(route, json={"content": "hi", "components": ok})
        stored = w.fake.messages[w.channel][0]
        assert stored["components"] == ok and sent["components"] == ok
        assert len(w.fake.buttons(int(sent["id"]))) == 8


async def test_click_button_only_clicks_what_the_message_has(
    discord_world: DiscordWorld,
) -> None:
    w = discord_world
    bot = make_bot()
    clicked: list[str] = []

    class Panel(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="go", custom_id="panel:go")
        async def go(self, interaction: discord.Interaction, _b: discord.ui.Button[Any]) -> None:
            clicked.append(str(interaction.data.get("custom_id") if interaction.data else ""))
            await interaction.response.send_message("done", ephemeral=True)

        @discord.ui.button(label="off", custom_id="panel:off", disabled=True)
        async def off(self, interaction: discord.Interaction, _b: discord.ui.Button[Any]) -> None:
            raise AssertionError("a disabled button cannot be clicked")

    async with run_bot(w.fake, bot):
        channel = bot.get_channel(w.channel)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("panel", view=Panel())
        inter = await w.fake.click_button(sent.id, "panel:go", user_id=w.user)
        assert inter.type == 3 and inter.payload["data"]["component_type"] == 2
        assert inter.payload["message"]["id"] == str(sent.id)
        assert inter.callbacks[0]["type"] == 4 and inter.callbacks[0]["data"]["flags"] & 64
        assert clicked == ["panel:go"]
        with pytest.raises(AssertionError, match="no button 'panel:nope'"):
            await w.fake.click_button(sent.id, "panel:nope", user_id=w.user)
        with pytest.raises(AssertionError, match="disabled"):
            await w.fake.click_button(sent.id, "panel:off", user_id=w.user)


async def test_interaction_responses_and_followups_are_validated(
    discord_world: DiscordWorld,
) -> None:
    """A component click answered (type 4), a follow-up and an update (type 7) with bad
    components are refused like a channel message; good ones are stored on the message."""
    import aiohttp

    w = discord_world
    bot = make_bot()  # no view: nothing in the bot answers the click, the test does
    async with run_bot(w.fake, bot):
        route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=w.channel)
        sent = await bot.http.request(
            route, json={"content": "panel", "components": [row(button(custom_id="p"))]}
        )
        w.fake.interaction_response_timeout = None
        inter = await w.fake.click_component(int(sent["id"]), "p", user_id=w.user)
        url = f"{w.fake.base_url}/interactions/{inter.id}/{inter.token}/callback"
        bad = [row(button(custom_id="x" * 101))]
        async with aiohttp.ClientSession() as http:
            for kind in (4, 7):
                data = {"content": "hi", "components": bad}
                async with http.post(url, json={"type": kind, "data": data}) as resp:
                    assert resp.status == 400
                    body = await resp.json()
                    assert body["code"] == 50035
                    assert flat(body["errors"]) == {
                        "components.0.components.0.custom_id": ["BASE_TYPE_BAD_LENGTH"]
                    }
            assert inter.callbacks == []
            good = [row(button(custom_id="q", label="next"))]
            data = {"content": "updated", "components": good}
            async with http.post(url, json={"type": 7, "data": data}) as resp:
                assert resp.status == 204
            assert w.fake.messages[w.channel][0]["components"] == good
            hook = f"{w.fake.base_url}/webhooks/{w.fake.application_id}/{inter.token}"
            async with http.post(hook, json={"content": "more", "components": bad}) as resp:
                assert resp.status == 400
            async with http.post(
                hook, json={"content": "more", "components": good, "flags": 64}
            ) as resp:
                assert resp.status == 204
            assert inter.followups[-1]["components"] == good
