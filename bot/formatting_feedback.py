"""What ``/feedback`` and ``/gaps`` show (pure, like :mod:`bot.formatting`, whose primitives keep
every string within Discord's limits and free of mentions and stray Markdown)."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from index.community.feedback import FeedbackSummary
from index.community.gaps import Gap

from .formatting import (
    COLOUR_INFO,
    EMBED_DESCRIPTION_LIMIT,
    enforce_limits,
    fit,
    ulen,
)

WORST_SHOWN = 5
GAPS_SHOWN = 10
QUESTION_CHARS = 180
WORST_QUOTE_CHARS = 300


def _period(since: str | None) -> str:
    return f"the last {fit(since, 20)}" if since else "all kept answers"


def _when(ts: float) -> str:
    return f"<t:{int(ts)}:R>"


def feedback_embed(s: FeedbackSummary, since: str | None) -> discord.Embed:
    share = s.share_up
    ratio = f" ({share:.0%} 👍)" if share is not None else ""
    embed = discord.Embed(
        title=f"Feedback — {_period(since)}",
        description=(
            f"**{s.answers:,}** answers · **{s.abstentions:,}** abstentions\n"
            f"👍 **{s.up:,}** · 👎 **{s.down:,}**{ratio}"
        ),
        colour=COLOUR_INFO,
    )
    if not s.worst:
        embed.set_footer(text="No answer has a 👎." if s.up + s.down else "No votes yet.")
        return embed
    for a in s.worst[:WORST_SHOWN]:
        name = f"👎 {a.down} · 👍 {a.up} — “{fit(a.question, QUESTION_CHARS)}”"
        quote = fit(a.quote or "", WORST_QUOTE_CHARS)
        title = fit(a.title or "", 200)
        value = f"> {quote}\n— *{title}* · asked {_when(a.asked_at)}"
        embed.add_field(name=name, value=value, inline=False)
    embed.set_footer(text="Worst-rated answers: most 👎 first · newsdesk feedback for all")
    return enforce_limits(embed)


def gaps_embed(gaps: Sequence[Gap], total: int, since: str | None) -> discord.Embed:
    embed = discord.Embed(
        title=f"Unanswered questions — {_period(since)}",
        colour=COLOUR_INFO,
    )
    if not gaps:
        embed.description = "No abstentions and no 👎 on any answer: nothing to add for now."
        return embed
    lines: list[str] = []
    used = 0
    for i, g in enumerate(gaps[:GAPS_SHOWN], 1):
        why = []
        if g.abstained:
            why.append(f"{g.abstained} unanswered")
        if g.downvoted:
            why.append(f"{g.downvoted} 👎")
        where = " ".join(f"<#{c}>" for c in g.channels[:3])
        more = f" +{len(g.channels) - 3}" if len(g.channels) > 3 else ""
        line = (
            f"**{i}.** ×{g.count} “{fit(g.question, QUESTION_CHARS)}”\n"
            f"    last asked {_when(g.last_asked)}"
            + (f" · {where}{more}" if where else "")
            + f" · {', '.join(why)}"
        )
        if used + ulen(line) + 1 > EMBED_DESCRIPTION_LIMIT:
            break
        lines.append(line)
        used += ulen(line) + 1
    embed.description = "\n".join(lines)
    embed.set_footer(
        text=f"{total:,} questions grouped by meaning, most asked first · newsdesk gaps for all"
    )
    return embed
