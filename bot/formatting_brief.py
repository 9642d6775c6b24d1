"""What ``/brief`` and ``/article summary:True`` show: the newest articles, each with its most
central sentence, and an article's three-sentence extractive summary.

Pure, like :mod:`bot.formatting`, whose primitives keep every string within Discord's limits
(counted in UTF-16 units, as Discord counts) and free of mentions and stray Markdown. A brief is
one message: its articles share the 6,000-character budget of a message's embeds, each gets an
equal part, and a long sentence is shortened (at a sentence or word end, marked "…") rather
than an article dropped.
"""

from __future__ import annotations

import discord

from index.search.brief import ArticleSummary, Brief, BriefItem

from .formatting import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    article_embed,
    discord_time,
    embed_size,
    enforce_limits,
    fit,
    safe_url,
    shorten,
    source_label,
    ulen,
)

BRIEF_MAX_ARTICLES = 10  # the most /brief shows (its limit option's maximum)
BRIEF_ITEM_CHARS = 700  # an article's block at most, even when few share the message
BRIEF_TITLE_CHARS = 200  # an article's title (its link text) at most
BRIEF_SLACK = 200  # room kept in the message for the embed title, header line and footer
SUMMARY_SENTENCE_CHARS = 1200
COLOUR_BRIEF = discord.Colour.from_rgb(230, 126, 34)  # the colour of announcements
BRIEF_FOOTER = "Each article's most central sentence, quoted verbatim · /article shows one"


def _dated(item: BriefItem) -> str:
    return item.date if item.dated_by == "published" else f"indexed {item.date}"


def _headline(n: int, item: BriefItem, budget: int) -> str:
    """``**1.** [Title](url) · 2024-03-05`` (or the title in bold with its file or host when
    the link does not fit or there is none), at most ``budget`` units."""
    tail = f" · {_dated(item)}"
    room = budget - ulen(f"**{n}.** ") - ulen(tail)
    url = safe_url(item.link)
    if url and ulen(url) + 12 <= room // 2:
        label = fit(item.title, min(BRIEF_TITLE_CHARS, room - ulen(url) - 4)) or "Untitled"
        return f"**{n}.** [{label}]({url}){tail}"
    origin = fit(source_label(item.source, item.link), 60)
    label = fit(item.title, min(BRIEF_TITLE_CHARS, room - ulen(origin) - 7)) or "Untitled"
    return f"**{n}.** **{label}** ({origin}){tail}"


def brief_block(n: int, item: BriefItem, budget: int) -> str:
    """One article of a brief: its headline, then its central sentence as a quote."""
    head = _headline(n, item, min(budget, BRIEF_TITLE_CHARS + 200))
    room = budget - ulen(head) - 3
    sentence = fit(item.sentence, room) if item.sentence and room >= 20 else ""
    return f"{head}\n> {sentence}" if sentence else head


def _window(brief: Brief) -> str:
    if brief.since is None:
        return ""
    return f" since {discord_time(brief.since.isoformat(), 'f')}"


def brief_embeds(brief: Brief) -> list[discord.Embed]:
    """The embeds of one ``/brief`` message (≤ 10 embeds, ≤ 6,000 characters in all)."""
    items = brief.items[:BRIEF_MAX_ARTICLES]
    if not items:
        text = (
            f"No articles{_window(brief)}: try a longer `since`, e.g. `7d`."
            if brief.since is not None
            else "Nothing is indexed yet."
        )
        return [discord.Embed(title="📰 News brief", description=text, colour=COLOUR_BRIEF)]
    shown = len(items)
    title = (
        "📰 News brief: the newest article"
        if shown == 1
        else (f"📰 News brief: the {shown} newest articles")
    )
    count = f"{shown} of {brief.total:,}" if brief.total > shown else f"{shown}"
    noun = "article" if brief.total == 1 else "articles"
    header = f"{count} {noun}{_window(brief)}, newest first"
    used = ulen(title) + ulen(header) + ulen(BRIEF_FOOTER) + BRIEF_SLACK
    budget = min(BRIEF_ITEM_CHARS, (EMBED_TOTAL_LIMIT - used) // shown)
    blocks = [brief_block(i, item, budget) for i, item in enumerate(items, 1)]
    if header:
        blocks.insert(0, header)
    embeds: list[discord.Embed] = []
    part: list[str] = []
    size = 0
    for block in blocks:
        if part and size + 2 + ulen(block) > EMBED_DESCRIPTION_LIMIT:
            embeds.append(discord.Embed(description="\n\n".join(part), colour=COLOUR_BRIEF))
            part, size = [], 0
        size += (2 if part else 0) + ulen(block)
        part.append(block)
    if part:
        embeds.append(discord.Embed(description="\n\n".join(part), colour=COLOUR_BRIEF))
    embeds[0].title = shorten(title, EMBED_TITLE_LIMIT)
    embeds[-1].set_footer(text=BRIEF_FOOTER)
    # the per-article budget keeps the total under 6,000; this only guards the arithmetic
    while len(embeds) > EMBEDS_PER_MESSAGE or sum(map(embed_size, embeds)) > EMBED_TOTAL_LIMIT:
        embeds.pop()
    return embeds


def summary_embed(summary: ArticleSummary) -> discord.Embed:
    """The article card with its most central sentences (verbatim, in article order) in place
    of the opening paragraph."""
    embed = article_embed(summary.article)
    each = min(SUMMARY_SENTENCE_CHARS, 3600 // max(1, len(summary.sentences)))
    sentences = [fit(s.text, each) for s in summary.sentences]
    sentences = [s for s in sentences if s]
    if sentences:
        n = len(sentences)
        what = "most central sentence" if n == 1 else f"{n} most central sentences"
        lead = f"**Summary** — its {what}, verbatim, in article order:"
        # at most 3,600 units of sentences: within the description's 4,096
        embed.description = lead + "\n" + "\n".join(f"> {s}" for s in sentences)
    url = safe_url(summary.article.link)
    if url:
        embed.url = url
    return enforce_limits(embed)
