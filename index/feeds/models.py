"""Subscriptions as values: what a subscription is, its status, what a sync did, and an
announcement; plus the pure helpers that name and schedule them. No SQL, no I/O beyond
resolving a folder's path (see ``store`` for ``subscriptions.db`` and ``engine`` for syncing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urldefrag, urlsplit

if TYPE_CHECKING:
    from index.config import Settings

Kind = Literal["feed", "folder"]
Origin = Literal["config", "command"]

MAX_NOTE_CHARS = 300
PENDING_DAYS = 2  # announcements not sent within this many days are dropped (bot not running)
SENT_DAYS = 30  # sent announcements are remembered this long (at most once per channel)


@dataclass(frozen=True)
class Subscription:
    kind: Kind
    target: str  # the feed URL, or the folder's absolute path
    interval: float  # minutes
    channel: int | None = None  # Discord channel for announcements
    origin: Origin = "command"
    # the Discord server that made it (/subscribe): listed and removed only there;
    # None = the operator's (config file or `newsdesk subscribe`)
    guild: int | None = None
    # given to each of its articles (besides those of a file's front matter), for scopes
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A short name: the feed's host and path, or the folder's name."""
        if self.kind == "folder":
            return Path(self.target).name or self.target
        parts = urlsplit(self.target)
        return (parts.netloc + parts.path).rstrip("/") or self.target


@dataclass
class SubscriptionStatus:
    """A subscription with its state, as ``/subscriptions`` and ``newsdesk subscriptions`` show."""

    id: int
    subscription: Subscription
    added_at: str
    title: str = ""
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_warning: str | None = None
    failures: int = 0
    rounds: int = 0
    next_due: float = 0.0  # seconds since the epoch
    articles: int = 0  # of its articles, those in the index

    @property
    def name(self) -> str:
        return self.title or self.subscription.label

    def to_json(self) -> dict[str, Any]:
        sub = self.subscription
        return {
            "kind": sub.kind,
            "target": sub.target,
            "title": self.title,
            "interval_minutes": sub.interval,
            # Discord ids as strings: snowflakes exceed JavaScript's exact integers (2**53)
            "channel": None if sub.channel is None else str(sub.channel),
            "origin": sub.origin,
            "guild": None if sub.guild is None else str(sub.guild),
            "tags": list(sub.tags),
            "added_at": self.added_at,
            "last_attempt": self.last_attempt,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_warning": self.last_warning,
            "failures": self.failures,
            "next_due": iso_utc(self.next_due) if self.next_due else None,
            "articles": self.articles,
        }


@dataclass
class SyncResult:
    """What syncing one subscription did."""

    kind: Kind
    target: str
    ok: bool = True
    not_modified: bool = False
    busy: bool = False  # the index was being updated: tried again at the next round
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    new_articles: list[str] = field(default_factory=list)  # ids of articles new to the index
    announced: int = 0  # new articles queued for announcement
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        if self.busy:
            return "index busy, will try again"
        if not self.ok:
            return f"error: {self.error}"
        if self.not_modified:
            return "not modified"
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        n = self.chunks_embedded
        return ", ".join(parts) + f" ({n} passage{'' if n == 1 else 's'} embedded)"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["passages_embedded"] = data.pop("chunks_embedded")  # "passages" in all JSON
        return data


@dataclass(frozen=True)
class Announcement:
    """A new article to announce in a Discord channel."""

    id: int
    channel: int
    article_id: str
    origin: str  # the feed's title or the folder's name
    title: str
    link: str | None
    summary: str | None
    published: str | None


def iso_utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(microsecond=0).isoformat()


def short_note(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 1] + "…"


def feed_target(url: str) -> str:
    """The canonical form of a feed address (as the index names sources: no fragment)."""
    return urldefrag(url.strip())[0]


def folder_target(path: str | os.PathLike[str]) -> str:
    from index.ingest.files import resolve_path

    return str(resolve_path(Path(path).expanduser(), str(path)))


def visible_from(status: SubscriptionStatus, guild: int | None) -> bool:
    """Whether Discord server ``guild`` may see ``status`` (None: the operator, sees all)."""
    owner = status.subscription.guild
    return guild is None or owner is None or owner == guild


def match_subscription(
    statuses: Sequence[SubscriptionStatus], ref: str
) -> SubscriptionStatus | None:
    """The subscription ``ref`` names: ``#id``, its URL or folder path, or its title or short
    label (when only one has it); None when none does."""
    ref = ref.strip()
    if ref.startswith("#") and ref[1:].isdigit():  # an id, as autocomplete gives it
        for s in statuses:
            if s.id == int(ref[1:]):
                return s
    for cand in (ref, feed_target(ref)):
        for s in statuses:
            if s.subscription.target == cand:
                return s
    with contextlib.suppress(OSError, ValueError):
        path = folder_target(ref)
        for s in statuses:
            if s.subscription.target == path:
                return s
    low = ref.lower()
    matches = [s for s in statuses if low in (s.title.lower(), s.subscription.label.lower())]
    return matches[0] if len(matches) == 1 else None


def configured(settings: Settings) -> list[Subscription]:
    """The subscriptions declared in the config file (``[[feeds]]`` and ``[[folders]]``)."""
    subs = [
        Subscription(
            "feed", feed_target(f.url), f.interval, f.channel or None, "config", None, tuple(f.tags)
        )
        for f in settings.feeds
    ]
    subs += [
        Subscription(
            "folder",
            folder_target(f.path),
            f.interval,
            f.channel or None,
            "config",
            None,
            tuple(f.tags),
        )
        for f in settings.folders
        if f.path is not None
    ]
    return subs


def backoff_minutes(interval: float, failures: int, cap: float) -> float:
    """Minutes until the next try after ``failures`` consecutive errors (0: the interval)."""
    if failures <= 0:
        return interval
    return min(interval * math.pow(2, failures), cap)
