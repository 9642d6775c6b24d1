"""Local files and folders into :class:`Document` objects: which files, how each is read.

A file's source is its absolute resolved path. Hidden files and folders are skipped, and so are
symlinked folders (no loops).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from index.config import FetchSettings
from index.errors import SourceError
from index.ingest.documents import DOCX_SUFFIXES, PDF_SUFFIXES, from_docx, from_pdf
from index.ingest.extract import (
    decode_detected,
    decode_file,
    decode_http,
    from_html,
    from_markdown,
    from_text,
    normalise_newlines,
    sniff_charset,
    split_front_matter,
    unusable_charset,
)
from index.models import Document, normalize_tags
from index.text import format_size

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = (
    TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES + DOCX_SUFFIXES
)


def supported_list() -> str:
    return ", ".join(SUPPORTED_SUFFIXES)


def title_from_name(name: str) -> str:
    """``"my-first_post"`` → ``"My first post"`` (only the first letter is changed)."""
    words = " ".join(re.sub(r"[-_]+", " ", name).split())
    return (words[:1].upper() + words[1:]) if words else "Untitled"


def resolve_path(path: Path, shown: str | None = None) -> Path:
    """``path`` made absolute with its symlinks resolved, or a :class:`SourceError` for a
    person: a symlink loop (``a.txt -> a.txt``, ``a -> b -> a``) makes ``Path.resolve()`` raise
    RuntimeError on Python 3.11 and OSError (ELOOP) on later ones."""
    try:
        return path.resolve()
    except RuntimeError:
        raise SourceError(shown or str(path.absolute()), "symlink loop") from None
    except OSError as e:
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
    meta, body = split_front_matter(normalise_newlines(raw))
    tags = front_matter_tags(meta, source)
    if suffix in MARKDOWN_SUFFIXES:
        title, text, url, date = from_markdown(raw, fallback, source=source)
        return Document(source, title, text, url, date, encoding, tags)
    if "tags" in meta:  # a text file may start with front matter giving its tags
        raw = body
    title, text = from_text(raw, fallback, source=source)
    return Document(source=source, title=title, text=text, encoding=encoding, tags=tags)


def front_matter_tags(meta: dict[str, Any], source: str) -> tuple[str, ...]:
    """The ``tags:`` of a file's front matter (a list, or words separated by commas)."""
    value = meta.get("tags")
    if value in (None, ""):
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    try:
        return normalize_tags(str(t) for t in items if str(t).strip())
    except ValueError as e:
        raise SourceError(source, f"front matter: {e}") from None
