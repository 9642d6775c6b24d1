"""What the admin side shows: index stats, the progress and reports of ``/add``, ``/remove`` and
``/reindex``, the list of subscriptions, and the announcements of new articles they bring.

Pure, like :mod:`bot.formatting`, whose primitives (:func:`~bot.formatting.fit` and the limits)
keep every string here within Discord's limits and free of mentions and stray Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence

import discord

from index.feeds.models import Announcement, SubscriptionStatus, SyncResult
from index.models import Article, IndexReport, Stats
from index.text import human_bytes

from .formatting import (
    COLOUR_INFO,
    CONTENT_LIMIT,
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    clean,
    discord_time,
    embed_size,
    enforce_limits,
    fit,
    neutralise_mentions,
    public_error,
    published_date,
    safe_url,
    shorten,
    ulen,
)

# -- stats ----------------------------------------------------------------------------------------


def stats_embed(stats: Stats) -> discord.Embed:
    embed = discord.Embed(title="newsdesk index", colour=COLOUR_INFO)
    embed.add_field(name="Articles", value=str(stats.articles), inline=True)
    embed.add_field(name="Passages", value=str(stats.chunks), inline=True)
    embed.add_field(name="On disk", value=human_bytes(stats.bytes_on_disk), inline=True)
    model = f"{stats.model} (dimension {stats.dimension})" if stats.dimension else stats.model
    embed.add_field(name="Model", value=fit(model, 300) or "unknown", inline=True)
    embed.add_field(name="Index type", value=fit(stats.index_type, 100) or "?", inline=True)
    embed.add_field(name="Last indexed", value=fit(stats.last_indexed or "never", 100), inline=True)
    return enforce_limits(embed)


# -- admin progress and reports -----------------------------------------------------------------

STAGE_NAMES = {
    "chunking": "splitting into passages",
    "embedding": "embedding passages",
    "keyword index": "building the keyword index",
}


def progress_message(action: str, stage: str, done: int, total: int, seconds: float) -> str:
    """One line of progress, e.g. ``⏳ Re-indexing… embedding passages 120/480 (25%) · 3 s``."""
    what = STAGE_NAMES.get(stage, fit(stage, 60, content=True))
    count = ""
    if total > 0:
        pct = min(100, max(0, round(100 * done / total)))
        count = f" {done:,}/{total:,} ({pct}%)"
    return f"⏳ {fit(action, 100, content=True)}… {what}{count} · {seconds:.0f} s"


def _title_list(titles: Sequence[str], budget: int, limit: int = 10) -> list[str]:
    lines: list[str] = []
    used = 0
    for t in titles[:limit]:
        line = "• " + fit(t, 150, content=True)
        if used + ulen(line) + 1 > budget:
            break
        lines.append(line)
        used += ulen(line) + 1
    rest = len(titles) - len(lines)
    if rest > 0:
        lines.append(f"…and {rest:,} more")
    return lines


def add_report_message(source: str, report: IndexReport) -> str:
    where = fit(source, 300, content=True)
    head = (
        f"✅ Indexed {where}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged — {report.chunks_embedded:,} "
        f"passage{'' if report.chunks_embedded == 1 else 's'} embedded "
        f"in {report.seconds:.1f} s"
    )
    lines = [head]
    lines += _title_list(report.titles, 1000)
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)}:")
        lines += _title_list([public_error(s) for s in report.skipped], 400, limit=3)
    return shorten("\n".join(lines), CONTENT_LIMIT)


def reindex_report_message(report: IndexReport) -> str:
    return (
        f"✅ Re-indexed {report.updated:,} articles: {report.chunks_embedded:,} passages "
        f"embedded in {report.seconds:.1f} s"
    )


def removed_message(article: Article, seconds: float) -> str:
    return f"🗑️ Removed “{fit(article.title, 300, content=True)}” ({seconds:.1f} s)"


# -- subscriptions and announcements ------------------------------------------------------------

ANNOUNCE_TITLE_CHARS = EMBED_TITLE_LIMIT
ANNOUNCE_SUMMARY_CHARS = 400
ANNOUNCE_FOOTER_CHARS = 200
DIGEST_MAX_ARTICLES = 100
DIGEST_LINE_CHARS = 300
SUBSCRIPTION_LINES_CHARS = EMBED_DESCRIPTION_LIMIT - 200
COLOUR_NEWS = discord.Colour.from_rgb(230, 126, 34)


def announcement_embed(item: Announcement) -> discord.Embed:
    """One new article: its title (linked), its most central sentence, source and date."""
    embed = discord.Embed(
        title=fit(item.title, ANNOUNCE_TITLE_CHARS) or "Untitled",
        url=safe_url(item.link),
        description=f"> {fit(item.summary, ANNOUNCE_SUMMARY_CHARS)}" if item.summary else None,
        colour=COLOUR_NEWS,
    )
    date = published_date(item.published)
    # footers show text as is (no Markdown): mentions neutralised, nothing escaped
    origin = neutralise_mentions(clean(item.origin)) or "a subscription"
    footer = shorten(f"New from {origin}", ANNOUNCE_FOOTER_CHARS)
    footer += f" · published {date}" if date else ""
    embed.set_footer(text=footer)
    return embed


def digest_embeds(items: Sequence[Announcement]) -> list[discord.Embed]:
    """Many new articles at once: linked titles as a list, spread over embeds as needed."""
    origins = list(dict.fromkeys(clean(i.origin) for i in items if clean(i.origin)))
    source = fit(origins[0], 150) if len(origins) == 1 else "your subscriptions"
    title = shorten(f"📰 {len(items):,} new articles from {source}", EMBED_TITLE_LIMIT)
    lines = []
    for item in items[:DIGEST_MAX_ARTICLES]:
        date = published_date(item.published)
        tail = f" · {date}" if date else ""
        url = safe_url(item.link)
        label = fit(item.title, DIGEST_LINE_CHARS - (ulen(url) + 4 if url else 4)) or "Untitled"
        lines.append((f"• [{label}]({url})" if url else f"• **{label}**") + tail)
    if len(items) > DIGEST_MAX_ARTICLES:
        lines.append(f"…and {len(items) - DIGEST_MAX_ARTICLES:,} more")
    embeds: list[discord.Embed] = []
    part: list[str] = []
    used = 0
    for line in lines:
        if part and used + ulen(line) + 1 > EMBED_DESCRIPTION_LIMIT - 100:
            embeds.append(discord.Embed(description="\n".join(part), colour=COLOUR_NEWS))
            part, used = [], 0
        part.append(line)
        used += ulen(line) + 1
    if part:
        embeds.append(discord.Embed(description="\n".join(part), colour=COLOUR_NEWS))
    embeds[0].title = title
    return embeds


def pack_embeds(embeds: Sequence[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds into messages: at most 10 per message and 6000 characters in all."""
    messages: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    size = 0
    for e in embeds:
        n = embed_size(e)
        if current and (len(current) == EMBEDS_PER_MESSAGE or size + n > EMBED_TOTAL_LIMIT):
            messages.append(current)
            current, size = [], 0
        current.append(e)
        size += n
    if current:
        messages.append(current)
    return messages


def announcement_messages(
    items: Sequence[Announcement], max_each: int = 10
) -> list[tuple[list[discord.Embed], list[int]]]:
    """Messages announcing ``items`` in one channel, with the ids each message carries.

    Up to ``max_each`` articles get an embed each (several per message); more than that arrive
    as one digest of linked titles, so a burst of new articles never floods a channel.
    """
    if not items:
        return []
    if len(items) > max_each:
        digest = pack_embeds(digest_embeds(items))
        ids = [i.id for i in items]
        return [(m, ids if n == len(digest) - 1 else []) for n, m in enumerate(digest)]
    out: list[tuple[list[discord.Embed], list[int]]] = []
    pairs = [(announcement_embed(i), i.id) for i in items]
    start = 0
    for message in pack_embeds([e for e, _ in pairs]):
        ids = [i for _, i in pairs[start : start + len(message)]]
        start += len(message)
        out.append((message, ids))
    return out


def _subscription_lines(s: SubscriptionStatus) -> list[str]:
    sub = s.subscription
    icon = "📰" if sub.kind == "feed" else "📁"
    url = safe_url(sub.target) if sub.kind == "feed" else None
    name = fit(s.name, 150)
    head = f"{icon} [{name}]({url})" if url else f"{icon} **{name}**"
    if sub.origin == "config":
        where = "config file"
    elif sub.guild is None:
        where = "the operator (newsdesk subscribe)"
    else:
        where = "/subscribe"
    info = [f"every {sub.interval:g} min", _count(s.articles, "article")]
    if sub.channel:
        info.append(f"announced in <#{sub.channel}>")
    info.append(where)
    lines = [head, " · ".join(info)]
    success = discord_time(s.last_success) or "never"
    due = f"<t:{int(s.next_due)}:R>" if s.next_due else "now"
    if s.failures:
        since = discord_time(s.last_error_at) or "?"
        error = fit(public_error(s.last_error or ""), 300)
        lines.append(f"⚠️ failing since {since} ({s.failures} in a row): {error} · next try {due}")
        lines.append(f"last success {success}")
    else:
        lines.append(f"✅ last success {success} · next {due}")
        if s.last_error:
            error = fit(public_error(s.last_error), 200)
            lines.append(f"last error {discord_time(s.last_error_at)}: {error}")
    if s.last_warning:
        lines.append(f"skipped: {fit(public_error(s.last_warning), 200)}")
    return lines


def subscriptions_embed(statuses: Sequence[SubscriptionStatus]) -> discord.Embed:
    """Every subscription with its status, in one embed (the rest counted when too many)."""
    embed = discord.Embed(title="Subscriptions", colour=COLOUR_INFO)
    if not statuses:
        embed.description = (
            "No subscriptions yet. `/subscribe url:…` adds an RSS or Atom feed; feeds and "
            "folders can also be listed in the config file (`[[feeds]]`, `[[folders]]`)."
        )
        return embed
    blocks: list[str] = []
    used = 0
    for n, s in enumerate(statuses):
        block = "\n".join(_subscription_lines(s))
        if used + ulen(block) + 2 > SUBSCRIPTION_LINES_CHARS:
            blocks.append(
                f"…and {len(statuses) - n:,} more (`newsdesk subscriptions` lists them all)"
            )
            break
        blocks.append(block)
        used += ulen(block) + 2
    embed.description = "\n\n".join(blocks)
    embed.set_footer(text=_count(len(statuses), "subscription"))
    return enforce_limits(embed)


def subscribed_message(status: SubscriptionStatus, result: SyncResult) -> str:
    sub = status.subscription
    where = fit(sub.target, 300, content=True)
    name = fit(status.name, 200, content=True)
    announce = f" New articles will be announced in <#{sub.channel}>." if sub.channel else ""
    return shorten(
        f"✅ Subscribed to {name} ({where}), checked every {sub.interval:g} min: "
        f"{_count(result.added, 'article')} added, {result.updated} updated, "
        f"{result.unchanged} unchanged.{announce}",
        CONTENT_LIMIT,
    )


def unsubscribed_message(status: SubscriptionStatus) -> str:
    name = fit(status.name, 200, content=True)
    where = fit(status.subscription.target, 300, content=True)
    return (
        f"🗑️ Unsubscribed from {name} ({where}). Its articles stay in the index "
        f"({_count(status.articles, 'article')}; `/remove` deletes one)."
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
