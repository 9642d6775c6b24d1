"""The 👍 / 👎 buttons under every answer, and logging the answer they vote on.

Each answer the bot sends is logged first (:mod:`index.community.feedback`), and its buttons
carry that log id in their custom ids: ``nd:vote:up:<answer id>`` / ``nd:vote:down:<answer id>``.
:class:`VoteButton` is a :class:`discord.ui.DynamicItem` registered once
(``bot.add_dynamic_items``, in :mod:`bot.cogs.feedback`): discord.py routes every click whose
custom id matches the template to it, so the buttons of answers sent before a restart keep
working, without a view per message kept in memory. One vote per member per answer: a second
click keeps or changes the vote (the log's business), and the member alone sees the
acknowledgement. Abstentions and small talk get no buttons (an abstention is logged for
``gaps`` anyway; a 👎 on "I could not find this" would say nothing).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from index.community.feedback import AnswerGoneError
from index.models import Answer

from .interactions import NO_MENTIONS, describe_error

if TYPE_CHECKING:
    from .client import NewsdeskBot

log = logging.getLogger("newsdesk.bot.feedback")

VOTE_PREFIX = "nd:vote:"
VOTES = {"up": (1, "👍"), "down": (-1, "👎")}


def vote_custom_id(direction: str, answer_id: int) -> str:
    return f"{VOTE_PREFIX}{direction}:{answer_id}"


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"nd:vote:(?P<direction>up|down):(?P<answer_id>[0-9]{1,18})",
):
    """A 👍 or 👎 button for one logged answer (persistent: its custom id says which)."""

    def __init__(self, direction: str, answer_id: int) -> None:
        self.direction = direction
        self.answer_id = answer_id
        _value, emoji = VOTES[direction]
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji=emoji,
                label="Helpful" if direction == "up" else "Not helpful",
                custom_id=vote_custom_id(direction, answer_id),
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> VoteButton:
        return cls(match["direction"], int(match["answer_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: NewsdeskBot = interaction.client
        value, _emoji = VOTES[self.direction]
        try:
            outcome, now = await bot.run_sync(
                bot.feedback.vote, self.answer_id, interaction.user.id, value
            )
            text = vote_message(outcome, now)
        except AnswerGoneError:
            days = bot.settings.privacy.retention_days
            kept = f" (answers are kept {days} days)" if days else ""
            text = f"This answer is no longer in the feedback log{kept}: the vote was not recorded."
        except Exception as e:  # a busy or damaged log: say so, never a silent failure
            text = describe_error(e, "a vote")
        log.info("vote %s on answer %s", self.direction, self.answer_id)
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def vote_message(outcome: str, value: int) -> str:
    """The private acknowledgement of a click."""
    emoji = "👍" if value > 0 else "👎"
    if outcome == "changed":
        return f"Changed to {emoji} — thanks."
    if outcome == "kept":
        return f"You already voted {emoji} on this answer."
    return f"Thanks — recorded {emoji}"


def vote_view(answer_id: int) -> discord.ui.View:
    """The buttons under one answer (``timeout=None``: they never expire)."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("up", answer_id))
    view.add_item(VoteButton("down", answer_id))
    return view


async def answer_view(
    bot: NewsdeskBot,
    answer: Answer,
    *,
    channel_id: int | None,
    guild_id: int | None,
    user_id: int | None,
) -> discord.ui.View | None:
    """Log ``answer`` (in a worker thread) and return the buttons to send with it: None for an
    abstention (logged for ``gaps``, without buttons), small talk, or when the log fails (the
    answer is sent all the same; the failure is logged)."""
    if answer.smalltalk is not None:
        return None
    try:
        answer_id = await bot.run_sync(
            bot.feedback.log_answer,
            answer,
            channel_id=channel_id,
            guild_id=guild_id,
            user_id=user_id,
        )
    except Exception as e:
        log.warning("could not log the answer to %r: %s", answer.question[:80], e)
        return None
    if answer_id is None or answer.abstained:
        return None
    return vote_view(answer_id)
