"""Fetched web pages and feeds into articles: what a page is, its text, a feed's entries.

Canonical sources: the URL as given without its fragment and tracking parameters (``utm_*``),
see :func:`canonical_url`.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit, urlunsplit

from index.config import FetchSettings
from index.errors import SourceError
from index.ingest.extract import (
    decode_http,
    from_html,
    from_markdown,
    from_text,
    looks_binary,
    normalise_date,
    sniff_charset,
    unusable_charset,
)
from index.ingest.fetch import FetchedPage
from index.ingest.files import MARKDOWN_SUFFIXES, title_from_name
from index.models import Document

log = logging.getLogger(__name__)

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown"})
_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:rdf)[\s>]")
_HTML_ROOT = re.compile(rb"<(?:!doctype\s+html|html|head|body)[\s>]")


def title_from_url(url: str) -> str:
    parts = urlsplit(url)
    segment = unquote(PurePosixPath(parts.path).name) if parts.path not in ("", "/") else ""
    stem = PurePosixPath(segment).stem if segment else ""
    return title_from_name(stem) if stem.strip("-_ ") else (parts.hostname or url)


# query parameters that only say where a reader came from: the same article with or without them
_TRACKING_PARAM = re.compile(r"^(utm_[a-z0-9_]*|fbclid|gclid|mc_eid)$", re.I)


def canonical_url(url: str) -> str:
    """The canonical form of an article URL: without its fragment and without tracking
    parameters (``utm_*``, ``fbclid``, ``gclid``), so ``…/a?utm_source=rss#top`` and ``…/a``
    are one article."""
    url = urldefrag(url.strip())[0]
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if not _TRACKING_PARAM.match(p.split("=", 1)[0])]
    return urlunsplit(parts._replace(query="&".join(kept)))


def fetchable(media: str) -> bool:
    """Content types worth downloading (decided before the body is read)."""
    return (
        not media
        or media in _HTML_TYPES
        or media in _MARKDOWN_TYPES
        or media == "text/plain"
        or any(word in media for word in ("xml", "rss", "atom"))
    )


def page_kind(page: FetchedPage) -> str | None:
    """ "html", "feed", "markdown", "text", or None (unsupported)."""
    media = page.content_type
    head = page.body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    looks_feed = bool(_FEED_ROOT.search(head[:2048])) and not _HTML_ROOT.search(head)
    looks_html = bool(_HTML_ROOT.search(head))
    if media in _HTML_TYPES:
        return "feed" if looks_feed else "html"
    if "rss" in media or "atom" in media:
        return "feed"
    if "xml" in media:
        return "feed" if looks_feed else ("html" if looks_html else "xml")
    if media in _MARKDOWN_TYPES:
        return "markdown"
    if media in ("text/plain", ""):
        if looks_feed:
            return "feed"
        if looks_html and not media:
            return "html"
        path = urlsplit(page.final_url).path.lower()
        return "markdown" if path.endswith(MARKDOWN_SUFFIXES) else "text"
    return None


def _page_text(page: FetchedPage, source: str, *, sniff: bool) -> str:
    body = page.body
    if not body.strip():
        raise SourceError(source, "no text (the page is empty)")
    if not body.startswith((b"\xff\xfe", b"\xfe\xff")) and looks_binary(body):
        raise SourceError(source, "looks like a binary file")
    return decode_http(body, page.charset, sniff=sniff)


def document_from_page(page: FetchedPage, source: str, fallback_title: str) -> Document:
    """An article from a fetched page (HTML, markdown or plain text); not for feeds."""
    kind = page_kind(page)
    link = canonical_url(page.final_url)
    if kind == "html":
        html = _page_text(page, source, sniff=True)
        title, text, _url, date = from_html(html, link, fallback_title, source=source)
        return Document(source=source, title=title, text=text, url=link, published=date)
    if kind == "markdown":
        title, text, _url, date = from_markdown(
            _page_text(page, source, sniff=False), fallback_title, source=source
        )
        return Document(source=source, title=title, text=text, url=link, published=date)
    if kind == "text":
        title, text = from_text(
            _page_text(page, source, sniff=False), fallback_title, source=source
        )
        return Document(source=source, title=title, text=text, url=link)
    if kind == "feed":
        raise SourceError(source, "links to a feed, not an article")
    if kind == "xml":
        raise SourceError(source, "XML document that is not an RSS or Atom feed")
    raise SourceError(source, f"unsupported content type {page.content_type or '(none)'}")


def parse_feed(page: FetchedPage, source: str) -> Any:
    """feedparser's result for a fetched feed. Raises SourceError (one line) when the document
    cannot be decoded.

    feedparser takes a str or bytes argument for a file name or URL first and reads *that*
    (a feed whose body is ``/etc/...xml`` or ``/dev/zero`` would read the local file), so it is
    only ever given a file object holding the body.
    """
    import feedparser

    declared = sniff_charset(page.body)
    if unusable_charset(declared):
        raise SourceError(source, f"unsupported charset {declared!r} (not a text encoding)")
    content_type = page.content_type or "application/xml"
    if page.charset and not unusable_charset(page.charset):
        content_type += f"; charset={page.charset}"
    try:
        return feedparser.parse(
            io.BytesIO(page.body),
            response_headers={"content-type": content_type, "content-location": page.final_url},
        )
    except (UnicodeError, LookupError, ValueError) as e:
        log.debug("feedparser failed on %s", source, exc_info=True)
        raise SourceError(source, f"not a valid RSS or Atom feed ({type(e).__name__})") from None


def entry_link(entry: Any) -> str | None:
    for cand in (entry.get("link"), entry.get("id")):
        if isinstance(cand, str) and cand.strip().lower().startswith(("http://", "https://")):
            return cand.strip()
    for link in entry.get("links") or []:
        href = link.get("href")
        if isinstance(href, str) and href.lower().startswith(("http://", "https://")):
            return href
    return None


def entry_date(entry: Any) -> str | None:
    for key in ("published", "updated", "created"):
        date = normalise_date(entry.get(key))
        if date:
            return date
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        date = normalise_date(entry.get(key))
        if date:
            return date
    return None


def entry_feed_text(entry: Any, source: str, title: str) -> str | None:
    """The entry's own content (or summary) from the feed, as plain text, if any."""
    candidates: list[tuple[str, str]] = []
    for content in entry.get("content") or []:
        if content.get("value"):
            candidates.append((content.get("value"), content.get("type") or "text/html"))
    if entry.get("summary"):
        detail = entry.get("summary_detail") or {}
        candidates.append((entry.get("summary"), detail.get("type") or "text/html"))
    for value, media in candidates:
        try:
            if "html" in media:
                _t, text, _u, _d = from_html(value, source, title, source=source)
            else:
                _t, text = from_text(value, title, source=source)
        except SourceError:
            continue
        if text.strip():
            return text
    return None


def cap_entries(
    todo: list[tuple[Any, str]], settings: FetchSettings
) -> tuple[list[tuple[Any, str]], int]:
    """The first ``fetch.max_feed_entries`` entries to fetch (feed order), and how many are left:
    a feed of thousands of links must not make thousands of requests in one round."""
    cap = max(1, settings.max_feed_entries)
    return todo[:cap], max(0, len(todo) - cap)
