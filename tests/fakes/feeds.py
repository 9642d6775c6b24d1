"""A loopback news site whose RSS or Atom feed changes between polls (for subscription tests).

    with LoopbackServer() as srv:
        site = FeedSite(srv, kind="rss")              # or "atom"; validators "etag" or "date"
        site.publish("/a1", "Bridge vote passes", "The council voted 7 to 2. ...")
        site.link_only("Gone", "/missing")          # an entry whose link answers 404
        ...poll srv.url("/feed.xml")...
        site.edit("/a1", title=..., text=...)       # the entry and its page change
        site.status = 500                           # the feed fails
        site.malformed = True                       # the feed is broken XML

The feed answers 304 Not Modified to a matching ``If-None-Match`` (``validators="etag"``) or
``If-Modified-Since`` (``validators="date"``). Every request is recorded by the server
(``srv.requests_to(path)``).
"""

from __future__ import annotations

import email.utils
import hashlib
import html
from dataclasses import dataclass
from typing import Literal

from tests.fakes.http import LoopbackServer, RecordedRequest, Response


@dataclass
class Entry:
    title: str
    path: str
    date: str  # RFC 822 for RSS, converted for Atom
    summary: str = ""
    version: int = 1


def page(title: str, text: str) -> str:
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
    return (
        f"<html><head><title>{html.escape(title)}</title></head><body><article>"
        f"<h1>{html.escape(title)}</h1>{paras}</article></body></html>"
    )


class FeedSite:
    def __init__(
        self,
        srv: LoopbackServer,
        *,
        path: str = "/feed.xml",
        kind: Literal["rss", "atom"] = "rss",
        validators: Literal["etag", "date", "none"] = "etag",
        title: str = "Valmare Gazette",
    ) -> None:
        self.srv = srv
        self.path = path
        self.kind = kind
        self.validators = validators
        self.title = title
        self.entries: list[Entry] = []
        self.status = 200
        self.malformed = False
        self.revision = 0  # bumped at every change: the Last-Modified date
        self._day = 1
        srv.add(path, self._answer)

    @property
    def url(self) -> str:
        return self.srv.url(self.path)

    # -- content
    def _next_date(self) -> str:
        self._day += 1
        return f"Mon, {self._day:02d} Sep 2024 08:00:00 GMT"

    def publish(self, path: str, title: str, text: str, *, summary: str = "") -> Entry:
        """A new entry (first in the feed) and its article page."""
        entry = Entry(title, path, self._next_date(), summary)
        self.entries.insert(0, entry)
        self.srv.route(path, page(title, text))
        self.revision += 1
        return entry

    def link_only(self, title: str, path: str, *, summary: str = "") -> Entry:
        """An entry whose page is not served (404) unless the test routes it."""
        entry = Entry(title, path, self._next_date(), summary)
        self.entries.insert(0, entry)
        self.revision += 1
        return entry

    def edit(self, path: str, *, title: str, text: str) -> None:
        """Change an entry (title, version) and its page."""
        for e in self.entries:
            if e.path == path:
                e.title = title
                e.version += 1
        self.srv.route(path, page(title, text))
        self.revision += 1

    def drop(self, path: str) -> None:
        self.entries = [e for e in self.entries if e.path != path]
        self.revision += 1

    # -- the feed
    def body(self) -> str:
        base = self.srv.base_url
        if self.kind == "rss":
            items = "".join(
                f"<item><title>{html.escape(e.title)}</title><link>{base}{e.path}</link>"
                f"<guid>{base}{e.path}</guid><pubDate>{e.date}</pubDate>"
                + (f"<description>{html.escape(e.summary)}</description>" if e.summary else "")
                + "</item>"
                for e in self.entries
            )
            return (
                '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{html.escape(self.title)}</title><link>{base}/</link>"
                f"<description>News</description>{items}</channel></rss>"
            )
        entries = "".join(
            f"<entry><title>{html.escape(e.title)}</title>"
            f'<link rel="alternate" href="{base}{e.path}"/><id>urn:{e.path}</id>'
            f"<updated>{_atom_date(e.date, e.version)}</updated>"
            + (f"<summary>{html.escape(e.summary)}</summary>" if e.summary else "")
            + "</entry>"
            for e in self.entries
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{html.escape(self.title)}</title><id>urn:feed</id>"
            f"<updated>2024-09-01T00:00:00Z</updated>{entries}</feed>"
        )

    def _answer(self, req: RecordedRequest) -> Response:
        if self.status != 200:
            return Response(self.status, "server error", content_type="text/plain")
        media = "application/rss+xml" if self.kind == "rss" else "application/atom+xml"
        if self.malformed:
            broken = '<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</ti'
            return Response(200, broken, content_type=media)
        body = self.body()
        headers: dict[str, str] = {}
        if self.validators == "etag":
            etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
            headers["ETag"] = etag
            if req.headers.get("if-none-match") == etag:
                return Response(304, b"", headers=headers)
        elif self.validators == "date":
            modified = email.utils.formatdate(1_700_000_000 + self.revision * 60, usegmt=True)
            headers["Last-Modified"] = modified
            if req.headers.get("if-modified-since") == modified:
                return Response(304, b"", headers=headers)
        return Response(200, body, headers=headers, content_type=media)


def _atom_date(rfc822: str, version: int) -> str:
    when = email.utils.parsedate_to_datetime(rfc822)
    return when.replace(minute=version).strftime("%Y-%m-%dT%H:%M:%SZ")
