"""Turn inputs (files, folders, http(s) URLs, RSS/Atom feeds) into :class:`Document` objects.

:func:`collect` never raises for a bad input: an explicitly named input that fails entirely is
an *error* (the caller exits non-zero and writes nothing), an item inside a folder or a feed that
is skipped is a *warning* (the caller reports it and goes on).

Canonical sources: the absolute resolved path of a file, or the URL as given without its
fragment and tracking parameters (``utm_*``). Inputs resolving to the same source are collected
once.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit, urlunsplit

from index.config import FetchSettings
from index.errors import FetchError, SourceError
from index.ingest.documents import DOCX_SUFFIXES, PDF_SUFFIXES, from_docx, from_pdf
from index.ingest.extract import (
    decode_detected,
    decode_file,
    decode_http,
    from_html,
    from_markdown,
    from_text,
    looks_binary,
    normalise_date,
    sniff_charset,
    unusable_charset,
)
from index.ingest.fetch import FetchedPage, fetch_url, format_size
from index.models import Document

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = (
    TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES + DOCX_SUFFIXES
)
FEED_WORKERS = 4

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:rdf)[\s>]")
_HTML_ROOT = re.compile(rb"<(?:!doctype\s+html|html|head|body)[\s>]")

Progress = Callable[[str], None]


@dataclass
class Collected:
    documents: list[Document] = field(default_factory=list)
    # explicitly named inputs that failed entirely (caller exits non-zero and writes nothing)
    errors: list[SourceError] = field(default_factory=list)
    # items inside a folder or feed that were skipped (caller reports them and goes on)
    warnings: list[SourceError] = field(default_factory=list)
    # items read another way, not skipped: a feed entry whose page failed, from the feed's text
    notes: list[SourceError] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def supported_list() -> str:
    return ", ".join(SUPPORTED_SUFFIXES)


def title_from_name(name: str) -> str:
    """``"my-first_post"`` → ``"My first post"`` (only the first letter is changed)."""
    words = " ".join(re.sub(r"[-_]+", " ", name).split())
    return (words[:1].upper() + words[1:]) if words else "Untitled"


def title_from_url(url: str) -> str:
    parts = urlsplit(url)
    segment = unquote(PurePosixPath(parts.path).name) if parts.path not in ("", "/") else ""
    stem = PurePosixPath(segment).stem if segment else ""
    return title_from_name(stem) if stem.strip("-_ ") else (parts.hostname or url)


# query parameters that only say where a reader came from: the same article with or without them
_TRACKING_PARAM = re.compile(r"^(utm_[a-z0-9_]*|fbclid|gclid|mc_eid)$", re.I)


def _strip_fragment(url: str) -> str:
    """The canonical form of an article URL: without its fragment and without tracking
    parameters (``utm_*``, ``fbclid``, ``gclid``), so ``…/a?utm_source=rss#top`` and ``…/a``
    are one article."""
    url = urldefrag(url.strip())[0]
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if not _TRACKING_PARAM.match(p.split("=", 1)[0])]
    return urlunsplit(parts._replace(query="&".join(kept)))


def resolve_path(path: Path, shown: str | None = None) -> Path:
    """``path`` made absolute with its symlinks resolved, or a :class:`SourceError` for a
    person: a symlink loop (``a.txt -> a.txt``, ``a -> b -> a``) makes ``Path.resolve()`` raise
    RuntimeError on Python 3.11 and OSError (ELOOP) on later ones."""
    try:
        return path.resolve()
    except RuntimeError:
        raise SourceError(shown or str(path.absolute()), "symlink loop") from None
    except OSError as e:
        import errno

        why = "symlink loop" if e.errno == errno.ELOOP else (e.strerror or type(e).__name__)
        raise SourceError(shown or str(path.absolute()), why) from None


def iter_folder(path: Path) -> Iterator[Path]:
    """Supported files under ``path``, recursively, sorted by path; hidden files and folders
    (names starting with ".") are skipped, and so are symlinked folders (no loops)."""

    def on_error(err: OSError) -> None:
        log.warning("cannot list %s: %s", err.filename, err.strerror)

    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(path, onerror=on_error, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath)
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(SUPPORTED_SUFFIXES):
                continue
            file = base / name
            found.append((file.relative_to(path).parts, file))
    found.sort(key=lambda item: item[0])
    for _parts, file in found:
        yield file


# --------------------------------------------------------------------------- files


def _decode_local_html(data: bytes, source: str) -> str:
    """UTF-8, or the charset the page itself declares (saved web pages), else the one
    detected."""
    try:
        return decode_file(data, source)
    except SourceError as e:
        declared = sniff_charset(data)
        if "binary" in e.reason:
            raise
        if not declared or declared in ("utf-8", "utf8") or unusable_charset(declared):
            return decode_detected(data, source)[0]
        try:
            return decode_http(data, declared)
        except LookupError:
            return decode_detected(data, source)[0]


def read_file(path: Path, settings: FetchSettings) -> Document:
    """One file → Document. Raises SourceError with a reason for a person."""
    resolved = resolve_path(path)
    source = str(resolved)
    suffix = resolved.suffix.lower() if resolved.suffix else path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"file type {suffix}" if suffix else "file without an extension"
        raise SourceError(source, f"unsupported {kind} (supported: {supported_list()})")
    try:
        if not resolved.is_file():
            raise SourceError(source, "not a regular file")
        size = resolved.stat().st_size
        if size > settings.max_file_bytes:
            limit = format_size(settings.max_file_bytes)
            raise SourceError(source, f"file is larger than {limit} (fetch.max_file_bytes)")
        if size == 0:
            raise SourceError(source, "file is empty")
        with resolved.open("rb") as fh:
            data = fh.read(settings.max_file_bytes + 1)
    except OSError as e:
        raise SourceError(source, f"cannot read file ({e.strerror or type(e).__name__})") from None
    if len(data) > settings.max_file_bytes:  # grew while we looked
        limit = format_size(settings.max_file_bytes)
        raise SourceError(source, f"file is larger than {limit} (fetch.max_file_bytes)")
    if not data:
        raise SourceError(source, "file is empty")
    fallback = title_from_name(path.stem)
    if suffix in PDF_SUFFIXES + DOCX_SUFFIXES:
        read = from_pdf if suffix in PDF_SUFFIXES else from_docx
        title, text, date = read(data, fallback, source=source)
        return Document(source=source, title=title, text=text, published=date)
    if suffix in HTML_SUFFIXES:
        html = _decode_local_html(data, source)
        title, text, url, date = from_html(html, None, fallback, source=source)
        return Document(source=source, title=title, text=text, url=url, published=date)
    raw, encoding = decode_detected(data, source)  # UTF-8, else the encoding detected
    if suffix in MARKDOWN_SUFFIXES:
        title, text, url, date = from_markdown(raw, fallback, source=source)
        return Document(
            source=source, title=title, text=text, url=url, published=date, encoding=encoding
        )
    title, text = from_text(raw, fallback, source=source)
    return Document(source=source, title=title, text=text, encoding=encoding)


# --------------------------------------------------------------------------- web


def _fetchable(media: str) -> bool:
    """Content types worth downloading (decided before the body is read)."""
    return (
        not media
        or media in _HTML_TYPES
        or media in _MARKDOWN_TYPES
        or media == "text/plain"
        or any(word in media for word in ("xml", "rss", "atom"))
    )


def _kind(page: FetchedPage) -> str | None:
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
    kind = _kind(page)
    link = _strip_fragment(page.final_url)
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


def _parse_feed(page: FetchedPage, source: str) -> Any:
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


def _entry_link(entry: Any) -> str | None:
    for cand in (entry.get("link"), entry.get("id")):
        if isinstance(cand, str) and cand.strip().lower().startswith(("http://", "https://")):
            return cand.strip()
    for link in entry.get("links") or []:
        href = link.get("href")
        if isinstance(href, str) and href.lower().startswith(("http://", "https://")):
            return href
    return None


def _entry_date(entry: Any) -> str | None:
    for key in ("published", "updated", "created"):
        date = normalise_date(entry.get(key))
        if date:
            return date
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        date = normalise_date(entry.get(key))
        if date:
            return date
    return None


def _entry_feed_text(entry: Any, source: str, title: str) -> str | None:
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


def _cap_entries(
    todo: list[tuple[Any, str]], settings: FetchSettings
) -> tuple[list[tuple[Any, str]], int]:
    """The first ``fetch.max_feed_entries`` entries to fetch (feed order), and how many are left:
    a feed of thousands of links must not make thousands of requests in one round."""
    cap = max(1, settings.max_feed_entries)
    return todo[:cap], max(0, len(todo) - cap)


# --------------------------------------------------------------------------- collecting


class _Collector:
    def __init__(self, settings: FetchSettings, progress: Progress | None) -> None:
        self.settings = settings
        self.progress = progress
        self.result = Collected()
        self.seen: set[str] = set()

    def say(self, message: str) -> None:
        log.info("%s", message)
        if self.progress is not None:
            self.progress(message)

    def add(self, raw: str) -> None:
        text = raw.strip()
        if not text:
            self.result.errors.append(SourceError(repr(raw), "empty input"))
            return
        m = _SCHEME.match(text)
        try:
            if m:
                if m.group(1).lower() not in ("http", "https"):
                    raise SourceError(
                        text, "not an http(s) URL (only http and https are supported)"
                    )
                self.add_url(text)
            else:
                self.add_path(text)
        except SourceError as e:
            self.result.errors.append(e)
        except Exception as e:  # a bug: keep going with the other inputs
            log.exception("unexpected error while reading %s", text)
            self.result.errors.append(SourceError(text, f"unexpected error ({type(e).__name__})"))

    # -- files and folders
    def add_path(self, raw: str) -> None:
        path = Path(raw).expanduser()
        if not path.exists():
            if path.is_symlink():
                resolve_path(path, raw)  # a loop says so
                raise SourceError(raw, "broken symlink (its target does not exist)")
            raise SourceError(raw, "no such file or folder")
        if path.is_dir():
            self.add_folder(path)
            return
        source = str(resolve_path(path, raw))
        if source in self.seen:
            return
        self.say(f"reading {path}")
        doc = read_file(path, self.settings)
        self.seen.add(source)
        self.result.documents.append(doc)

    def add_folder(self, folder: Path) -> None:
        folder_source = str(resolve_path(folder))
        files = list(iter_folder(folder))
        if not files:
            raise SourceError(folder_source, f"no supported files in folder ({supported_list()})")
        read = failed = 0
        for file in files:
            try:
                source = str(resolve_path(file))
            except SourceError as e:  # a symlink loop: skipped with a note
                failed += 1
                self.result.warnings.append(e)
                continue
            if source in self.seen:
                continue
            self.say(f"reading {file}")
            try:
                doc = read_file(file, self.settings)
            except SourceError as e:
                failed += 1
                self.result.warnings.append(e)
                continue
            except Exception as e:
                log.exception("unexpected error while reading %s", source)
                failed += 1
                self.result.warnings.append(
                    SourceError(source, f"unexpected error ({type(e).__name__})")
                )
                continue
            read += 1
            self.seen.add(source)
            self.result.documents.append(doc)
        if failed and not read:
            raise SourceError(folder_source, f"none of the {failed} files could be read")

    # -- the web
    def add_url(self, url: str) -> None:
        source = _strip_fragment(url)
        if source in self.seen:
            return
        self.say(f"fetching {source}")
        page = fetch_url(source, self.settings, allow_type=_fetchable)
        if _kind(page) == "feed":
            self.seen.add(source)
            self.add_feed(source, page)
            return
        doc = document_from_page(page, source, title_from_url(page.final_url))
        self.seen.add(source)
        self.result.documents.append(doc)

    def add_feed(self, source: str, page: FetchedPage) -> None:
        parsed = _parse_feed(page, source)
        entries = list(parsed.get("entries") or [])
        if not entries:
            if parsed.get("bozo") and not parsed.get("version"):
                raise SourceError(source, "not a valid RSS or Atom feed")
            raise SourceError(source, "feed has no entries")
        self.say(f"feed {source}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")

        todo: list[tuple[Any, str]] = []
        queued: set[str] = set()
        skipped = 0
        for i, entry in enumerate(entries, 1):
            link = _entry_link(entry)
            if link is None:
                skipped += 1
                label = entry.get("title") or f"entry {i}"
                self.result.warnings.append(SourceError(source, f"{label}: entry has no link"))
                continue
            link = _strip_fragment(link)
            if link in self.seen or link in queued:
                continue
            queued.add(link)
            todo.append((entry, link))
        todo, left = _cap_entries(todo, self.settings)
        if left:
            self.result.warnings.append(
                SourceError(
                    source,
                    f"{left} more entr{'y' if left == 1 else 'ies'} not fetched (at most "
                    f"{self.settings.max_feed_entries} per feed: fetch.max_feed_entries)",
                )
            )

        read, failed = self.read_entries(todo)
        skipped += failed
        if skipped and not read:
            raise SourceError(source, f"none of the {skipped} feed entries could be read")

    def read_entries(self, todo: Sequence[tuple[Any, str]]) -> tuple[int, int]:
        """Fetch each (entry, link) in parallel and add its article: (read, skipped) counts."""

        def fetch(link: str) -> FetchedPage | FetchError:
            try:
                return fetch_url(link, self.settings, allow_type=_fetchable)
            except FetchError as e:
                return e

        read = skipped = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=FEED_WORKERS) as pool:
            results = pool.map(fetch, [link for _entry, link in todo])
            for (entry, link), result in zip(todo, results, strict=True):
                self.say(f"fetching {link}")
                try:
                    doc = self._entry_document(entry, link, result)
                except SourceError as e:
                    skipped += 1
                    self.result.warnings.append(e)
                    continue
                except Exception as e:
                    log.exception("unexpected error while reading feed entry %s", link)
                    skipped += 1
                    self.result.warnings.append(
                        SourceError(link, f"unexpected error ({type(e).__name__})")
                    )
                    continue
                read += 1
                self.seen.add(link)
                self.result.documents.append(doc)
        return read, skipped

    def _entry_document(self, entry: Any, link: str, result: FetchedPage | FetchError) -> Document:
        entry_title = " ".join(str(entry.get("title") or "").split()) or title_from_url(link)
        date = _entry_date(entry)
        try:
            if isinstance(result, FetchError):
                raise result
            doc = document_from_page(result, link, entry_title)
        except SourceError as e:
            text = _entry_feed_text(entry, link, entry_title)
            if text is None:
                raise SourceError(link, e.reason) from None
            self.result.notes.append(
                SourceError(link, f"{e.reason}; used the text from the feed instead")
            )
            return Document(source=link, title=entry_title, text=text, url=link, published=date)
        return Document(
            source=doc.source,
            title=doc.title,
            text=doc.text,
            url=doc.url,
            published=date or doc.published,
        )


def collect(
    inputs: Sequence[str],
    settings: FetchSettings,
    *,
    progress: Progress | None = None,
) -> Collected:
    """Read every input (file path, folder, or http(s) URL of a page or an RSS/Atom feed).

    ``progress`` is called with a short message before each file is read or URL fetched.
    """
    collector = _Collector(settings, progress)
    for raw in inputs:
        collector.add(raw)
    return collector.result


# --------------------------------------------------------------------------- polling feeds

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
    progress: Progress | None = None,
) -> FeedPoll:
    """Fetch a feed (conditionally) and the articles of its new and changed entries.

    ``etag`` / ``last_modified`` come from the previous poll: an unchanged feed answers
    HTTP 304 and the poll returns ``not_modified``. ``known`` maps entry links to the
    fingerprints of the previous poll; only entries that are new or whose fingerprint changed
    are fetched. Raises :class:`SourceError` when the feed itself cannot be read (HTTP errors,
    not a feed, malformed XML with no usable entry); entries that fail are warnings.
    """
    source = _strip_fragment(url)
    page = fetch_url(
        source,
        settings,
        accept=FEED_ACCEPT,
        etag=etag,
        last_modified=last_modified,
        allow_type=_fetchable,
    )
    if page.not_modified:
        return FeedPoll(
            source,
            not_modified=True,
            etag=page.etag or etag,
            last_modified=page.last_modified or last_modified,
        )
    kind = _kind(page)
    if kind != "feed":
        what = _NOT_A_FEED.get(kind or "", f"of type {page.content_type or '(none)'}")
        raise SourceError(source, f"not an RSS or Atom feed (the address serves {what})")
    parsed = _parse_feed(page, source)
    raw = list(parsed.get("entries") or [])
    if parsed.get("bozo") and not any(_entry_link(e) for e in raw):
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
    collector = _Collector(settings, progress)
    todo: list[tuple[Any, str]] = []
    links: set[str] = set()
    for i, entry in enumerate(raw, 1):
        link = _entry_link(entry)
        label = " ".join(str(entry.get("title") or "").split())
        if link is None:
            poll.warnings.append(SourceError(source, f"{label or f'entry {i}'}: no link"))
            continue
        link = _strip_fragment(link)
        if link in links:
            continue
        links.add(link)
        fingerprint = entry_fingerprint(entry)
        poll.entries.append(FeedEntry(link, fingerprint, label))
        if known.get(link) != fingerprint:
            todo.append((entry, link))
    todo, poll.deferred = _cap_entries(todo, settings)
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
