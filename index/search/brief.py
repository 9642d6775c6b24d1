"""News briefs: the newest articles, each with its most central sentence, and an article's
extractive summary. No model call: both read the sentence vectors stored at indexing time
(:mod:`index.search.summary`, the same summary feed announcements use).

"Newest" is by the article's own date (``published``: front matter, feed entry, page
metadata), else by when it was first indexed (``added_at``). A date without a time (most
front matter) counts as the whole day: with ``since`` 24h an article dated yesterday is in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from index.errors import NewsdeskError
from index.models import Article, http_link
from index.search.summary import SummarySentence, central_sentence, central_sentences
from index.storage.base import StoreReader

if TYPE_CHECKING:
    from index.storage.sqlite import ArticleRow

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
DEFAULT_SUMMARY_SENTENCES = 3
MAX_SUMMARY_SENTENCES = 10
MAX_SINCE_DAYS = 36_500  # a hundred years: any longer window is "everything"
SINCE_FORMS = "a duration like 30m, 24h, 7d or 2w, or a date like 2026-11-01"

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(m|min|mins|h|hr|hrs|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600}
_UNIT_SECONDS |= {"d": 86_400, "w": 604_800}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


Since = dt.timedelta | dt.datetime | None  # a window before now, or a moment
Ids = Collection[str] | None  # only these articles (a channel's scope); None: all


class InvalidSinceError(NewsdeskError):
    """A ``since`` that is neither a duration nor a date."""


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC cut-off ``text`` names: ``now`` minus a duration (``30m``, ``24h``, ``7d``,
    ``2w``), or a date (``2026-11-01``, midnight UTC) or ISO datetime (UTC unless it says).

    Raises :class:`InvalidSinceError` with a one-line message otherwise.
    """
    now = now or dt.datetime.now(dt.UTC)
    s = " ".join(str(text).split())
    m = _DURATION_RE.fullmatch(s)
    if m:
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()]
        if seconds <= 0:
            raise InvalidSinceError(f"{s!r} is no time at all: give {SINCE_FORMS}")
        return now - dt.timedelta(seconds=min(seconds, MAX_SINCE_DAYS * 86_400.0))
    when = _parse_time(s) if _DATE_RE.match(s) else None
    if when is None:
        raise InvalidSinceError(f"cannot read {s[:40]!r} as a time: give {SINCE_FORMS}")
    return when[0]


def _parse_time(value: str | None) -> tuple[dt.datetime, bool] | None:
    """(UTC datetime, is a date without a time) for an ISO 8601 date or datetime; else None."""
    if not value:
        return None
    s = value.strip()
    try:
        if len(s) == 10 and _DATE_RE.fullmatch(s):
            d = dt.date.fromisoformat(s)
            return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC), True
        when = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC), False


@dataclass(frozen=True)
class BriefItem:
    """One article of a brief: where to read it, its date and its most central sentence."""

    id: str
    title: str
    source: str
    url: str | None
    published: str | None  # the article's own date, as stored
    indexed: str  # when it was first indexed (UTC, ISO 8601)
    sentence: str | None  # its most central sentence, verbatim (whitespace collapsed)

    @property
    def link(self) -> str | None:
        """An http(s) link for the article, if it has one."""
        return http_link(self.url, self.source)

    @property
    def date(self) -> str:
        """``YYYY-MM-DD``: the article's date, else the day it was indexed."""
        found = _parse_time(self.published)
        return (found[0] if found else _indexed(self.indexed)).date().isoformat()

    @property
    def dated_by(self) -> str:
        """``"published"`` or ``"indexed"``: where :attr:`date` comes from."""
        return "published" if _parse_time(self.published) else "indexed"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "link": self.link,
            "published": self.published,
            "indexed": self.indexed,
            "date": self.date,
            "dated_by": self.dated_by,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class Brief:
    """The newest articles (at most ``limit``) and how many matched in all."""

    items: list[BriefItem]
    total: int
    since: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "total": self.total,
            "articles": [i.to_json() for i in self.items],
        }


@dataclass(frozen=True)
class ArticleSummary:
    """An article and its extractive summary (verbatim sentences, in article order)."""

    article: Article
    sentences: list[SummarySentence] = field(default_factory=list)


def _indexed(added_at: str) -> dt.datetime:
    found = _parse_time(added_at)
    return found[0] if found else dt.datetime.min.replace(tzinfo=dt.UTC)


def _window(row: ArticleRow) -> tuple[dt.datetime, dt.datetime]:
    """(when the article counts as published, the last moment it counts as new): a date
    without a time lasts the whole day."""
    found = _parse_time(row.published)
    if found is None:
        when = _indexed(row.added_at)
        return when, when
    when, date_only = found
    return when, (when + dt.timedelta(days=1, microseconds=-1) if date_only else when)


def newest(
    rows: Collection[ArticleRow],
    since: dt.datetime | None = None,
    article_ids: Collection[str] | None = None,
) -> list[ArticleRow]:
    """``rows`` newest first (by date, then by when indexed), those older than ``since`` and
    those not in ``article_ids`` (when given) left out."""
    keyed = []
    for r in rows:
        if article_ids is not None and r.id not in article_ids:
            continue
        when, until = _window(r)
        if since is not None and until < since:
            continue
        keyed.append((when, _indexed(r.added_at), r.id, r))
    keyed.sort(key=lambda k: k[:3], reverse=True)
    return [k[3] for k in keyed]


def brief(
    store: StoreReader,
    since: Since = None,
    limit: int = DEFAULT_LIMIT,
    article_ids: Ids = None,
    *,
    now: dt.datetime | None = None,
) -> Brief:
    """The newest ``limit`` articles (since ``since``: a duration before ``now`` or a moment;
    only ``article_ids`` when given, e.g. a channel's scope), each with its central sentence,
    read in one consistent generation. Never loads the embedding model."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - since if isinstance(since, dt.timedelta) else since
    if cutoff is not None and cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=dt.UTC)
    if not store.exists():
        return Brief([], 0, cutoff)
    store.init_schema()
    with store.read():
        rows = newest(store.list_articles(), cutoff, article_ids)
        items = [
            BriefItem(
                id=r.id,
                title=r.title,
                source=r.source,
                url=r.url,
                published=r.published,
                indexed=r.added_at,
                sentence=central_sentence(store, r.id),
            )
            for r in rows[: max(0, min(limit, MAX_LIMIT))]
        ]
    return Brief(items, len(rows), cutoff)


def summarize(store: StoreReader, ref: str, n: int = DEFAULT_SUMMARY_SENTENCES) -> ArticleSummary:
    """The article ``ref`` names (id, id prefix, title, source or URL) and its ``n`` most
    central sentences (:func:`index.search.summary.central_sentences`)."""
    store.init_schema()
    with store.read():
        article = store.find_article(ref)
        n = max(1, min(n, MAX_SUMMARY_SENTENCES))
        return ArticleSummary(article, central_sentences(store, article.id, n))
