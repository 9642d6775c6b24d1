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
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.config import FetchSettings
from index.errors import FetchError, SourceError
from index.ingest.fetch import FetchedPage, fetch_url
from index.ingest.files import (
    iter_folder,
    read_file,
    resolve_path,
    supported_list,
)
from index.ingest.pages import (
    canonical_url,
    cap_entries,
    document_from_page,
    entry_date,
    entry_feed_text,
    entry_link,
    fetchable,
    page_kind,
    parse_feed,
    title_from_url,
)
from index.models import Document, MessageProgress

log = logging.getLogger(__name__)

FEED_WORKERS = 4

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass
class Collected:
    documents: list[Document] = field(default_factory=list)
    # explicitly named inputs that failed entirely (caller exits non-zero and writes nothing)
    errors: list[SourceError] = field(default_factory=list)
    # items inside a folder or feed that were skipped (caller reports them and goes on)
    warnings: list[SourceError] = field(default_factory=list)
    # items read another way, not skipped: a feed entry whose page failed, from the feed's text
    notes: list[SourceError] = field(default_factory=list)


class Collector:
    """Reads inputs into one :class:`Collected`, each source once (:func:`collect`, and the
    entries of a polled feed in :mod:`index.ingest.feeds`)."""

    def __init__(self, settings: FetchSettings, progress: MessageProgress | None) -> None:
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
        source = canonical_url(url)
        if source in self.seen:
            return
        self.say(f"fetching {source}")
        page = fetch_url(source, self.settings, allow_type=fetchable)
        if page_kind(page) == "feed":
            self.seen.add(source)
            self.add_feed(source, page)
            return
        doc = document_from_page(page, source, title_from_url(page.final_url))
        self.seen.add(source)
        self.result.documents.append(doc)

    def add_feed(self, source: str, page: FetchedPage) -> None:
        parsed = parse_feed(page, source)
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
            link = entry_link(entry)
            if link is None:
                skipped += 1
                label = entry.get("title") or f"entry {i}"
                self.result.warnings.append(SourceError(source, f"{label}: entry has no link"))
                continue
            link = canonical_url(link)
            if link in self.seen or link in queued:
                continue
            queued.add(link)
            todo.append((entry, link))
        todo, left = cap_entries(todo, self.settings)
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
                return fetch_url(link, self.settings, allow_type=fetchable)
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
        date = entry_date(entry)
        try:
            if isinstance(result, FetchError):
                raise result
            doc = document_from_page(result, link, entry_title)
        except SourceError as e:
            text = entry_feed_text(entry, link, entry_title)
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
    progress: MessageProgress | None = None,
) -> Collected:
    """Read every input (file path, folder, or http(s) URL of a page or an RSS/Atom feed).

    ``progress`` is called with a short message before each file is read or URL fetched.
    """
    collector = Collector(settings, progress)
    for raw in inputs:
        collector.add(raw)
    return collector.result
