"""Polling an RSS/Atom feed: a conditional GET, then only its new and changed entries.

The subscriptions (:mod:`index.feeds`) call :func:`poll_feed` each round with what the previous
poll returned (ETag, Last-Modified, each entry's fingerprint).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from index.config import FetchSettings
from index.errors import SourceError
from index.ingest.fetch import fetch_url
from index.ingest.pages import (
    canonical_url,
    cap_entries,
    entry_link,
    fetchable,
    page_kind,
    parse_feed,
)
from index.ingest.sources import Collector
from index.models import Document, MessageProgress

FEED_ACCEPT = (
    "application/rss+xml,application/atom+xml,application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5"
)
_NOT_A_FEED = {
    "html": "a web page",
    "markdown": "a Markdown document",
    "text": "a plain-text document",
    "xml": "an XML document",
}


@dataclass(frozen=True)
class FeedEntry:
    """An entry of a polled feed: its article link and a fingerprint of what the feed says."""

    link: str
    fingerprint: str
    title: str


@dataclass
class FeedPoll:
    """What one poll of a feed found (see :func:`poll_feed`)."""

    url: str
    not_modified: bool = False  # HTTP 304: nothing else is filled in
    etag: str | None = None
    last_modified: str | None = None
    title: str = ""
    # every entry with a link, in feed order
    entries: list[FeedEntry] = field(default_factory=list)
    # the new and changed entries' articles, fetched (by link)
    documents: dict[str, Document] = field(default_factory=dict)
    # entries skipped (no link, page unreadable and no text in the feed)
    warnings: list[SourceError] = field(default_factory=list)
    # entries read from the feed's own text because their page failed (indexed, not skipped)
    notes: list[SourceError] = field(default_factory=list)
    # new or changed entries not fetched this round (fetch.max_feed_entries): next round
    deferred: int = 0


def entry_fingerprint(entry: Any) -> str:
    """A hash of what the feed says about an entry: it changes when the entry is edited."""
    contents = [c.get("value") for c in entry.get("content") or []]
    parts = [
        entry.get(k) if isinstance(entry.get(k), str) else None
        for k in ("title", "link", "id", "published", "updated", "summary")
    ]
    data = json.dumps([*parts, contents], ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


def poll_feed(
    url: str,
    settings: FetchSettings,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    known: Mapping[str, str] | None = None,
    progress: MessageProgress | None = None,
) -> FeedPoll:
    """Fetch a feed (conditionally) and the articles of its new and changed entries.

    ``etag`` / ``last_modified`` come from the previous poll: an unchanged feed answers
    HTTP 304 and the poll returns ``not_modified``. ``known`` maps entry links to the
    fingerprints of the previous poll; only entries that are new or whose fingerprint changed
    are fetched. Raises :class:`SourceError` when the feed itself cannot be read (HTTP errors,
    not a feed, malformed XML with no usable entry); entries that fail are warnings.
    """
    source = canonical_url(url)
    page = fetch_url(
        source,
        settings,
        accept=FEED_ACCEPT,
        etag=etag,
        last_modified=last_modified,
        allow_type=fetchable,
    )
    if page.not_modified:
        return FeedPoll(
            source,
            not_modified=True,
            etag=page.etag or etag,
            last_modified=page.last_modified or last_modified,
        )
    kind = page_kind(page)
    if kind != "feed":
        what = _NOT_A_FEED.get(kind or "", f"of type {page.content_type or '(none)'}")
        raise SourceError(source, f"not an RSS or Atom feed (the address serves {what})")
    parsed = parse_feed(page, source)
    raw = list(parsed.get("entries") or [])
    if parsed.get("bozo") and not any(entry_link(e) for e in raw):
        why = parsed.get("bozo_exception")
        detail = f" ({str(why).strip()[:100]})" if why else ""
        raise SourceError(source, f"not a valid RSS or Atom feed{detail}")
    if not parsed.get("version") and not raw:
        raise SourceError(source, "not a valid RSS or Atom feed")
    feed_info = parsed.get("feed") or {}
    poll = FeedPoll(
        source,
        etag=page.etag,
        last_modified=page.last_modified,
        title=" ".join(str(feed_info.get("title") or "").split()),
    )
    known = known or {}
    collector = Collector(settings, progress)
    todo: list[tuple[Any, str]] = []
    links: set[str] = set()
    for i, entry in enumerate(raw, 1):
        link = entry_link(entry)
        label = " ".join(str(entry.get("title") or "").split())
        if link is None:
            poll.warnings.append(SourceError(source, f"{label or f'entry {i}'}: no link"))
            continue
        link = canonical_url(link)
        if link in links:
            continue
        links.add(link)
        fingerprint = entry_fingerprint(entry)
        poll.entries.append(FeedEntry(link, fingerprint, label))
        if known.get(link) != fingerprint:
            todo.append((entry, link))
    todo, poll.deferred = cap_entries(todo, settings)
    if poll.deferred:
        # the entries left out are neither recorded nor fetched: they are new again next round,
        # which must not be answered "304 Not Modified"
        poll.etag = poll.last_modified = None
        n = poll.deferred
        poll.warnings.append(
            SourceError(
                source,
                f"{n} new entr{'y' if n == 1 else 'ies'} left for the next round (at most "
                f"{settings.max_feed_entries} fetched per round: fetch.max_feed_entries)",
            )
        )
    collector.read_entries(todo)
    poll.documents = {d.source: d for d in collector.result.documents}
    poll.warnings.extend(collector.result.warnings)
    poll.notes.extend(collector.result.notes)
    return poll
