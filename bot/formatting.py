"""Pure presentation: engine results → Discord embeds and messages, within Discord's limits.

No I/O here. Every string that comes from an article (titles, quotes, passages) or from a user
(questions) goes through :func:`fit`, which cleans it, escapes Markdown and neutralises mention
syntax, and cuts it at a sentence (then word) boundary with "…" so that the escaped result fits
its limit. Lengths are counted in UTF-16 code units, which is never less than the number of
code points, so a value that fits here fits on Discord whichever way Discord counts.

This module holds the primitives and what every member sees (answers, passages, articles,
errors); what the admin commands and subscriptions show is in :mod:`bot.formatting_admin`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from pathlib import PurePath
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

import discord

from index.models import NOT_FOUND, Answer, Article, Hit, Quote
from index.written.generate import GeneratedAnswer

# -- Discord limits (https://discord.com/developers/docs/resources/message#embed-object-limits) --
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
EMBED_TOTAL_LIMIT = 6000
EMBED_FIELDS_LIMIT = 25
EMBEDS_PER_MESSAGE = 10
THREAD_NAME_LIMIT = 100
CHOICE_NAME_LIMIT = 100
CHOICES_LIMIT = 25

# Our own, smaller budgets: their sum stays below EMBED_TOTAL_LIMIT whatever the input.
QUESTION_TITLE_CHARS = EMBED_TITLE_LIMIT
QUOTE_CHARS = 1500
SEARCHED_AS_CHARS = 200  # the corrected question in the footer
SOURCE_LINE_CHARS = 600
PASSAGE_NAME_CHARS = 200
PASSAGE_VALUE_CHARS = 400
FURTHER_PASSAGES = 3
SEARCH_SNIPPET_CHARS = 220
OPENING_CHARS = 1200
URL_MAX_CHARS = 400


COLOUR_ANSWER = discord.Colour.from_rgb(46, 139, 87)
COLOUR_NOT_FOUND = discord.Colour.light_grey()
COLOUR_INFO = discord.Colour.blurple()

ZWSP = "\u200b"

# C0/C1 controls (whitespace is handled separately), bidi overrides/isolates, BOM
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_EVERYONE_RE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
# <@id> <@!id> <@&id> <#id> </command:id>: Discord's mention syntax starts with these
_MENTION_OPEN_RE = re.compile(r"<(?=[@#/])")
_UNESCAPED_BRACKET_RE = re.compile(r"(\\*)([\[\]])")
# a bare link in a plain message gets a preview; wrapped in <…> it does not. A "<" that is not
# closed (e.g. cut off by shortening) does not count as wrapped. A scheme with nothing linkable
# after it ("http://") is broken with a ZWSP, so text we append ("**") cannot complete it.
_URL_RE = re.compile(
    r"<(?:https?|steam)://[^\s<>]*>"
    # balanced (…) may end a link: https://en.wikipedia.org/wiki/Python_(programming_language)
    r"|(?:https?|steam)://(?:[^\s<>()]|\([^\s<>()]*\))*"
    r"(?:[^\s<>.,:;\"'’”()\]]|\([^\s<>()]*\))"
    r"|(?:https?|steam)://"
)
_SENTENCE_END_RE = re.compile(r"[.!?…。！？][\"'”’»)\]]*(?=\s)")


# -- text primitives ------------------------------------------------------------------------------


def ulen(text: str) -> int:
    """Length in UTF-16 code units (what JavaScript, and so Discord's clients, count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _prefix_units(text: str, units: int) -> str:
    """The longest prefix of ``text`` whose UTF-16 length is at most ``units``."""
    if units <= 0:
        return ""
    if ulen(text) <= units:
        return text
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return text[:i]
    return text


def clean(text: str | None, *, collapse: bool = True) -> str:
    """Drop what does not belong in a chat message: controls, lone surrogates, bidi tricks.

    With ``collapse`` (the default) all whitespace, newlines included, becomes single spaces, so
    the text can sit inside a ``>`` quote or a list line without breaking it.
    """
    if not text:
        return ""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL_RE.sub("", text)
    if collapse:
        return " ".join(text.split())
    return text.strip()


def neutralise_mentions(text: str) -> str:
    """Make ``@everyone``, ``@here``, ``<@…>``, ``<@&…>``, ``<#…>``, ``</…>`` inert (ZWSP)."""
    text = discord.utils.escape_mentions(text)
    text = _EVERYONE_RE.sub("@" + ZWSP, text)
    return _MENTION_OPEN_RE.sub("<" + ZWSP, text)


def _escape_brackets(text: str) -> str:
    # After escape_markdown every literal backslash is doubled, so a bracket preceded by an odd
    # number of backslashes is already escaped; escape the others (no masked links survive).
    def repl(m: re.Match[str]) -> str:
        slashes, bracket = m.group(1), m.group(2)
        return slashes + ("" if len(slashes) % 2 else "\\") + bracket

    return _UNESCAPED_BRACKET_RE.sub(repl, text)


def escape(text: str) -> str:
    """Escape Markdown and neutralise mentions and masked links in untrusted text."""
    text = discord.utils.escape_markdown(text)
    text = _escape_brackets(text)
    return neutralise_mentions(text)


def shorten(text: str, limit: int) -> str:
    """Cut plain ``text`` to ``limit`` UTF-16 units: at a sentence end, else a word, with "…"."""
    if ulen(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = _prefix_units(text, limit - 2)  # room for " …"
    keep = max(1, len(cut) // 2)  # never drop more than half of what would fit
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(cut) if m.end() >= keep]
    if ends:
        return cut[: ends[-1]].rstrip() + " …"
    space = cut.rfind(" ")
    if space >= keep:
        return cut[:space].rstrip() + "…"
    return _prefix_units(text, limit - 1) + "…"


def wrap_urls(text: str) -> str:
    """Wrap bare links in ``<…>`` so a plain message shows no previews for them."""

    def repl(m: re.Match[str]) -> str:
        url = m.group(0)
        if url.startswith("<"):
            return url
        if url.endswith("://"):
            return url[:-1] + ZWSP + "/"
        return f"<{url}>"

    return _URL_RE.sub(repl, text)


def fit(text: str | None, limit: int, *, collapse: bool = True, content: bool = False) -> str:
    """Clean, escape and shorten untrusted text so the escaped result is at most ``limit``.

    ``content``: the text goes into a plain message (not an embed), so bare links are wrapped
    in ``<…>`` (no previews).
    """
    plain = clean(text, collapse=collapse)
    budget = limit
    while True:
        out = escape(shorten(plain, budget))
        if content:
            out = wrap_urls(out)
        excess = ulen(out) - limit
        if excess <= 0:
            return out
        budget -= max(1, excess)
        if budget <= 1:
            return "…"[:limit]


def safe_url(url: str | None) -> str | None:
    """An http(s) URL safe inside ``[text](url)`` and ``<url>``, or None."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if _CONTROL_RE.search(url) or any(ord(c) < 0x20 for c in url):
        return None
    # percent-encode spaces, ()<>[]"`{}|@ and non-ASCII: nothing can end the link early, and no
    # "@everyone" survives inside a URL (user:password@host URLs lose their user part)
    url = urlquote(url, safe=":/?#!$&'*+,;=%~-._")
    if len(url) > URL_MAX_CHARS:
        return None
    return url


def source_label(source: str, url: str | None) -> str:
    """How to name an article's origin when there is no link: its file name (never a path)."""
    if url and safe_url(url):
        host = urlsplit(url).hostname or ""
        return host.removeprefix("www.") or "link"
    name = PurePath(source.replace("\\", "/")).name if source else ""
    return name or "unknown source"


def _linked_title(title: str, source: str, link: str | None, limit: int) -> str:
    """``[Title](url)``, or ``Title (file.txt)`` when there is no http(s) link; ≤ ``limit``."""
    url = safe_url(link)
    if url:
        label = fit(title, max(8, limit - ulen(url) - 4))
        return f"[{label or 'link'}]({url})"
    name = fit(source_label(source, None), 120)
    label = fit(title, max(8, limit - ulen(name) - 8))
    return f"**{label}** ({name})"


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{max(ms, 0):.0f} ms"
    return f"{ms / 1000:.1f} s"


def published_date(published: str | None) -> str:
    """``"2024-03-05"`` from an ISO date or datetime; "" when missing or not a date."""
    text = clean(published)[:10]
    return text if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else ""


def discord_time(iso: str | None, style: str = "R") -> str:
    """Discord's ``<t:unix:R>`` markup ("3 days ago", in the reader's language); "" if no date."""
    if not iso:
        return ""
    try:
        when = dt.datetime.fromisoformat(iso.strip().replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return f"<t:{int(when.timestamp())}:{style}>"


def freshness(published: str | None) -> str:
    """`` · published 2024-03-05 (<t:…:R>)`` for the answer card; "" for undated articles."""
    date = published_date(published)
    if not date:
        return ""
    ago = discord_time(published)
    return f" · published {date}" + (f" ({ago})" if ago else "")


def _overlaps(h: Hit, q: Quote) -> bool:
    return h.article_id == q.article_id and h.start < q.end and q.start < h.end


# -- answers -------------------------------------------------------------------------------------


def answer_embed(answer: Answer) -> discord.Embed:
    """ONE embed: the quote, its article (linked), 2–3 further passages, the time taken."""
    title = fit(answer.question, QUESTION_TITLE_CHARS) or "Question"
    footer = f"Answered in {_duration(answer.elapsed_ms)}"
    if answer.searched_as:  # misspelt words were corrected: say what was searched
        footer = f"Searched for “{fit(answer.searched_as, SEARCHED_AS_CHARS)}” · {footer}"
    q = answer.quote
    if answer.smalltalk:  # "help", "thanks", "hi": how to ask, never a random quote
        from index.search.smalltalk import REPLIES

        text = REPLIES.get(answer.smalltalk, REPLIES["noise"])
        embed = discord.Embed(title=title, description=text, colour=COLOUR_NOT_FOUND)
        return enforce_limits(embed)
    if q is None:
        lines = [NOT_FOUND]
        if answer.suggestions:
            links = {h.title: h.link for h in answer.passages}
            sources = {h.title: h.source for h in answer.passages}
            lines.append("")
            lines.append("Closest articles:")
            for s in answer.suggestions[:5]:
                lines.append("• " + _linked_title(s, sources.get(s, ""), links.get(s), 300))
        embed = discord.Embed(title=title, description="\n".join(lines), colour=COLOUR_NOT_FOUND)
        embed.set_footer(text=footer)
        return enforce_limits(embed)

    quote = fit(q.text, QUOTE_CHARS)
    source = _linked_title(q.title, q.source, q.link, SOURCE_LINE_CHARS)
    description = f"> “{quote}”\n— {source}{freshness(q.published)}"
    for more in answer.also:  # the other parts of a multi-part question
        more_source = _linked_title(more.title, more.source, more.link, SOURCE_LINE_CHARS)
        description += f"\n\n> “{fit(more.text, QUOTE_CHARS)}”\n— {more_source}"
    embed = discord.Embed(title=title, description=description, colour=COLOUR_ANSWER)
    further = [h for h in answer.passages if not _overlaps(h, q)][:FURTHER_PASSAGES]
    for h in further:
        date = published_date(h.published)
        tail_date = f" · {date}" if date else ""
        name = (fit(h.title, PASSAGE_NAME_CHARS - ulen(tail_date)) or "Untitled") + tail_date
        url = safe_url(h.link)
        tail = f"\n[source]({url})" if url else ""
        snippet = fit(h.text, max(80, PASSAGE_VALUE_CHARS - ulen(tail))) or "…"
        embed.add_field(name=name, value=snippet + tail, inline=False)
    embed.set_footer(text=footer)
    return enforce_limits(embed)


# -- written answers ([llm]) ---------------------------------------------------------------------

GENERATED_CHARS = 2400
EVIDENCE_QUOTE_CHARS = 1000
EVIDENCE_SOURCE_CHARS = 400
SOURCE_TITLE_CHARS = 300
MODEL_NAME_CHARS = 80
WRITING = "✍️ Writing an answer from the passages…"
CURSOR = " ▌"


def generated_embed(gen: GeneratedAnswer) -> discord.Embed:
    """ONE embed: the written answer (only what passed verification), its sources, and the
    extractive quote under it as evidence. A fallback is exactly :func:`answer_embed`.

    While streaming (``not gen.final``) the verified text so far is shown with a cursor, or
    "Writing an answer…" before there is any.
    """
    q = gen.answer.quote
    if gen.fell_back or q is None or (gen.final and not gen.text):
        return answer_embed(gen.answer)
    title = fit(gen.question, QUESTION_TITLE_CHARS) or "Question"
    text = fit(gen.text, GENERATED_CHARS, collapse=False)
    if not gen.final:
        text = text + CURSOR if text else f"*{WRITING}*"
    source = _linked_title(q.title, q.source, q.link, EVIDENCE_SOURCE_CHARS)
    evidence = f"**Evidence**\n> “{fit(q.text, EVIDENCE_QUOTE_CHARS)}”\n— {source}"
    embed = discord.Embed(title=title, description=f"{text}\n\n{evidence}", colour=COLOUR_ANSWER)
    lines: list[str] = []
    used = 0
    for c in gen.citations:
        h = c.hit
        line = f"\\[{c.n}\\] " + _linked_title(h.title, h.source, h.link, SOURCE_TITLE_CHARS)
        if used + ulen(line) + 1 > FIELD_VALUE_LIMIT:
            break
        lines.append(line)
        used += ulen(line) + 1
    if lines:
        embed.add_field(name="Sources", value="\n".join(lines), inline=False)
    # footers show no Markdown: mentions neutralised, nothing escaped
    model = shorten(neutralise_mentions(clean(gen.model)), MODEL_NAME_CHARS) or "the model"
    if gen.final:
        footer = (
            f"Written by {model} from the passages; quotes checked against the articles · "
            f"{_duration(gen.elapsed_ms)}"
        )
    else:
        footer = f"Writing with {model}…"
    embed.set_footer(text=footer)
    return enforce_limits(embed)


def enforce_limits(embed: discord.Embed) -> discord.Embed:
    """Last line of defence: drop fields from the end until the embed fits every limit."""
    while embed.fields and (
        len(embed.fields) > EMBED_FIELDS_LIMIT or embed_size(embed) > EMBED_TOTAL_LIMIT
    ):
        embed.remove_field(len(embed.fields) - 1)
    return embed


def embed_size(embed: discord.Embed) -> int:
    """The embed's total as Discord counts it (title, description, fields, footer, author)."""
    total = ulen(embed.title or "") + ulen(embed.description or "")
    for f in embed.fields:
        total += ulen(f.name or "") + ulen(f.value or "")
    total += ulen(embed.footer.text or "") + ulen(embed.author.name or "")
    return total


# -- search and articles -------------------------------------------------------------------------


def search_message(query: str, hits: Sequence[Hit]) -> str:
    """Top passages as a compact list; links wrapped in <…> so Discord shows no previews."""
    header = f"**Top passages for** “{fit(query, 200, content=True)}”"
    if not hits:
        return header + "\nNothing matches that."
    lines = [header]
    used = ulen(header)
    for i, h in enumerate(hits, 1):
        url = safe_url(h.link)
        label = fit(source_label(h.source, None), 120, content=True)
        where = f" <{url}>" if url else f" ({label})"
        title = fit(h.title, 120, content=True) or "Untitled"
        for snippet_chars in (SEARCH_SNIPPET_CHARS, 80, 0):
            snippet = f" — {fit(h.text, snippet_chars, content=True)}" if snippet_chars else ""
            line = f"**{i}. {title}**{snippet}{where}"
            if used + 1 + ulen(line) <= CONTENT_LIMIT:
                lines.append(line)
                used += 1 + ulen(line)
                break
        else:
            break
    return "\n".join(lines)


def article_embed(article: Article) -> discord.Embed:
    """The article card: title, source, date, passage count, opening paragraph."""
    opening_raw = article.text.strip().split("\n\n", 1)[0]
    opening = fit(opening_raw, OPENING_CHARS) or "(no text)"
    embed = discord.Embed(
        title=fit(article.title, EMBED_TITLE_LIMIT) or "Untitled",
        description=opening,
        colour=COLOUR_INFO,
    )
    url = safe_url(article.link)
    if url:
        source = f"[{fit(source_label(article.source, article.link), 200)}]({url})"
    else:
        source = fit(source_label(article.source, None), 300)
    embed.add_field(name="Source", value=source, inline=True)
    published = clean(article.published)[:10] if article.published else ""
    embed.add_field(name="Published", value=fit(published, 40) or "unknown", inline=True)
    embed.add_field(name="Passages", value=str(article.chunk_count), inline=True)
    embed.set_footer(text=f"Article id {clean(article.id)[:40]}")
    return enforce_limits(embed)


# -- names for threads and autocomplete ---------------------------------------------------------


QUOTED_QUESTION_CHARS = 300


def clip(text: str, limit: int = CONTENT_LIMIT) -> str:
    """``text`` (already safe Markdown) cut to ``limit`` UTF-16 units, "…" marking a cut."""
    if ulen(text) <= limit:
        return text
    return _prefix_units(text, limit - 1) + "…"


def quoted_question(author_mention: str, question: str) -> str:
    """The line that stands for a reply where the bot may not reply (no Read Message History):
    who asked (a mention that pings nobody: answers use AllowedMentions.none()) and what."""
    quoted = fit(question, QUOTED_QUESTION_CHARS, content=True)
    return f"{author_mention} asked:\n> {quoted}" if quoted else f"{author_mention}:"


def thread_name(question: str) -> str:
    """A thread name (1–100 characters, one line) from the question."""
    name = shorten(neutralise_mentions(clean(question)), THREAD_NAME_LIMIT)
    return name or "Question"


def choice_name(title: str, extra: str = "") -> str:
    """An autocomplete choice name (1–100 characters) for an article title."""
    tail = f" · {clean(extra)}" if extra else ""
    base = shorten(clean(title) or "Untitled", CHOICE_NAME_LIMIT - ulen(tail))
    return shorten(base + tail, CHOICE_NAME_LIMIT) or "Untitled"


def help_message(bot_name: str = "newsdesk") -> str:
    """What a bare mention (or an empty DM) gets back."""
    name = fit(bot_name, 80, content=True) or "newsdesk"
    return (
        "Ask me about the indexed articles: mention me with a question, for example "
        f"“@{name} What did Ma say about Apple Pay?”, or use `/ask`. "
        "`/search` lists matching passages and `/article` shows one article."
    )


# -- errors ----------------------------------------------------------------------------------------


# "refused: <host> resolves to <address>, which is private (add it to fetch.allow_hosts …)":
# the clause up to the next "; " (several reasons joined) or the end
_REFUSED_RE = re.compile(r"\brefused:[^;]*", re.IGNORECASE)
# what might be an IP address (checked with ipaddress): hex digits, dots and colons
_IP_CANDIDATE_RE = re.compile(r"(?<![\w.:%])[0-9a-f.:]*[.:][0-9a-f.:]*(?:%\w+)?", re.IGNORECASE)
_IPV4_PORT_RE = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$")


def _hide_address(m: re.Match[str]) -> str:
    token = m.group(0)
    core = token.rstrip(".:")
    port = _IPV4_PORT_RE.match(core)
    if port:
        core = port.group(1)
    try:
        ipaddress.ip_address(core.split("%", 1)[0])
    except ValueError:
        return token
    return "[address]" + token[len(core) :]


def public_error(text: str) -> str:
    """An error as a Discord user may see it: a refused address says only "not allowed", and
    no IP address appears (a refusal would otherwise tell any member what an internal name
    resolves to, a map of the operator's network). The full text goes to the bot's log."""
    text = _REFUSED_RE.sub("not allowed", str(text))
    # addresses inside links stay: a link is what the member (or a feed) wrote, not an answer
    # of the operator's DNS
    out, pos = [], 0
    for m in _URL_RE.finditer(text):
        out.append(_IP_CANDIDATE_RE.sub(_hide_address, text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_IP_CANDIDATE_RE.sub(_hide_address, text[pos:]))
    return "".join(out)


# a command or config key in backticks: no "@", "<", ":" or "()" inside, so a span can never
# hold a mention, a link or a masked link (anything else is escaped as usual)
_CODE_SPAN_RE = re.compile(r"`([\w .=/,\[\]\"'-]{1,100})`")


def error_message(text: str) -> str:
    """An error for a person (from a NewsdeskError), escaped and within the content limit.

    Error texts name commands and config keys in backticks (`newsdesk reindex`,
    `discord.admin_guild_ids`): those spans stay code, as the CLI shows them, instead of
    literal escaped backticks; everything around them is escaped like any untrusted text
    (inside a code span Markdown, links and mentions do nothing).
    """
    plain = clean(public_error(text))
    parts, pos = [], 0
    for m in _CODE_SPAN_RE.finditer(plain):
        parts.append(wrap_urls(escape(plain[pos : m.start()])))
        parts.append(m.group(0))
        pos = m.end()
    parts.append(wrap_urls(escape(plain[pos:])))
    out = "".join(parts)
    if ulen(out) <= CONTENT_LIMIT - 2:
        return out or "Something went wrong."
    return fit(public_error(text), CONTENT_LIMIT - 2, content=True) or "Something went wrong."


def unexpected_error_message(ref: str) -> str:
    return f"Something went wrong (ref {ref}). The bot's operator can find the details in the log."


def cooldown_message(retry_after: float) -> str:
    seconds = max(1, round(retry_after + 0.5))
    return f"You're asking quickly — please wait {seconds} s and ask again."
