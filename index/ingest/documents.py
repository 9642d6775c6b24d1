"""Office documents to text: PDF (pypdf) and Word .docx (python-docx). No I/O here.

Both return ``(title, text, date)`` and raise :class:`~index.errors.SourceError` (never anything
else) for a file that cannot be read or holds no text. The text is what is stored and quoted:
paragraphs separated by blank lines (a PDF page is at least a paragraph), table rows as their
cells joined with `` · `` like Markdown tables (index/ingest/markdown.py).
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from index.errors import SourceError
from index.ingest.extract import MAX_TITLE_CHARS, from_text, normalise_date, normalise_newlines
from index.ingest.markdown import TABLE_CELL_SEPARATOR

log = logging.getLogger(__name__)

PDF_SUFFIXES = (".pdf",)
DOCX_SUFFIXES = (".docx",)
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def _tidy(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, no blank ends."""
    text = "\n".join(line.rstrip() for line in normalise_newlines(text).split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def _title(value: Any) -> str | None:
    title = " ".join(str(value or "").split())
    return title if title and len(title) <= MAX_TITLE_CHARS else None


def _split_title(text: str, meta_title: str | None, fallback: str, source: str) -> tuple[str, str]:
    """The document's own title (metadata), else the plain-text rule (index/ingest/extract.py)."""
    if meta_title:
        return meta_title, text
    return from_text(text, fallback, source=source)


def from_pdf(data: bytes, fallback_title: str, *, source: str) -> tuple[str, str, str | None]:
    """A PDF's text, page by page: ``(title, text, date)``. Encrypted PDFs that open without a
    password are read; scanned PDFs (images only) have no text and are refused."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:  # pragma: no cover - a dependency
        raise SourceError(source, "PDF support needs pypdf: pip install pypdf") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(source, "the PDF is encrypted (save a copy without a password)")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
    except SourceError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        log.debug("pypdf failed on %s", source, exc_info=True)
        raise SourceError(source, f"not a readable PDF ({type(e).__name__})") from None
    except RecursionError:
        raise SourceError(source, "not a readable PDF (nested too deeply)") from None
    text = _tidy("\n\n".join(_tidy(p) for p in pages if p.strip()))
    if not text:
        raise SourceError(source, "no text in the PDF (a scan? only text PDFs can be indexed)")
    title = _title(getattr(meta, "title", None)) if meta else None
    date = None
    if meta:
        try:
            date = normalise_date(meta.creation_date)
        except (ValueError, TypeError):  # a malformed date in the metadata
            date = None
    title, body = _split_title(text, title, fallback_title, source)
    return title, body, date


def from_docx(data: bytes, fallback_title: str, *, source: str) -> tuple[str, str, str | None]:
    """A Word document's paragraphs and tables, in order: ``(title, text, date)``. A first
    paragraph in the "Title" style (or the core properties' title) is the title."""
    try:
        import docx
    except ImportError:  # pragma: no cover - a dependency
        raise SourceError(
            source, "DOCX support needs python-docx: pip install python-docx"
        ) from None
    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[tuple[str, str]] = []  # (style name, text)
        for item in document.iter_inner_content():
            if hasattr(item, "rows"):
                for row in item.rows:
                    cells: list[str] = []
                    for cell in row.cells:
                        value = " ".join(cell.text.split())
                        if value and (not cells or cells[-1] != value):  # merged cells repeat
                            cells.append(value)
                    if cells:
                        blocks.append(("table", TABLE_CELL_SEPARATOR.join(cells)))
            else:
                style = getattr(getattr(item, "style", None), "name", "") or ""
                blocks.append((style, item.text))
        props = document.core_properties
        meta_title, created = _title(props.title), props.created
    except Exception as e:  # python-docx raises many kinds on a damaged package
        log.debug("python-docx failed on %s", source, exc_info=True)
        raise SourceError(source, f"not a readable DOCX file ({type(e).__name__})") from None
    first = next((i for i, (_s, t) in enumerate(blocks) if t.strip()), None)
    if meta_title is None and first is not None and blocks[first][0] == "Title":
        meta_title = _title(blocks[first][1])
        if meta_title:
            del blocks[first]
    # a table's rows stay together; every other block is its own paragraph
    parts: list[str] = []
    for i, (style, text) in enumerate(blocks):
        joiner = "\n" if style == "table" and i and blocks[i - 1][0] == "table" else "\n\n"
        parts.append((joiner if parts else "") + text)
    text = _tidy("".join(parts))
    if not text:
        raise SourceError(source, "no text in the document")
    title, body = _split_title(text, meta_title, fallback_title, source)
    return title, body, normalise_date(created)
