"""Pure text extraction: bytes/markup in, ``(title, text, ...)`` out. No I/O here.

The text produced is what gets stored and quoted with character offsets, so it is kept verbatim:
the only changes are line endings (``\\r\\n`` and lone ``\\r`` become ``\\n``), a leading byte-order
mark, and blank lines around the text. HTML is the exception: its text is whatever the extractor
(trafilatura) renders, with blocks separated by blank lines; and so is Markdown, stored as the
plain text a reader sees (index/ingest/markdown.py).

Every function raises :class:`~index.errors.SourceError` (never anything else) when there is no
usable text. ``source`` names the input in that error; callers pass the path or URL.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import email.utils
import logging
import re
import time
from collections.abc import Mapping
from copy import deepcopy
from typing import Any

from index.errors import SourceError
from index.ingest.markdown import inline_text, markdown_to_text

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 200
# a plain text file's first line is its title only when it looks like one: this short, and no
# sentence ends in it (a word of two or more lower-case letters then . ! or ?, and more text,
# or a final full stop after such a word); "U.S." or "Dr. Ruiz" do not end a sentence
TEXT_TITLE_CHARS = 150
_SENTENCE_END = re.compile(r"[a-z]{2,}(?:[.!?][\"'”’)\]]*\s+\S|\.[\"'”’)\]]*$)")

_UTF8_BOM = codecs.BOM_UTF8
# bytes that never occur in text files (tab, newlines, form feed and escape are allowed)
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B}
_BINARY_SAMPLE = 64 * 1024
_BINARY_CONTROL_SHARE = 0.10

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.I)
_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_H1 = re.compile(r"^ {0,3}=+[ \t]*$")
_FRONT_MATTER_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$")
_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")

_TITLE_KEYS = ("title",)
_URL_KEYS = ("url", "link", "canonical_url", "canonical")
_DATE_KEYS = ("published", "date", "pubdate", "published_at", "created")

# block elements of trafilatura's output tree that may wrap other blocks
_CONTAINER_TAGS = frozenset({"div", "section", "article", "main", "body", "doc"})
_SKIP_HTML_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_HTML_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "aside", "nav",
        "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd",
        "blockquote", "pre", "table", "tr", "figure", "figcaption", "br", "hr", "form",
        "address", "details", "summary",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- decoding


def normalise_newlines(text: str) -> str:
    """``\\r\\n`` and lone ``\\r`` become ``\\n``; a leading BOM is dropped; nothing else."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def looks_binary(data: bytes) -> bool:
    """True when ``data`` holds NUL bytes or a high share of control characters."""
    sample = data[:_BINARY_SAMPLE]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b in _CONTROL_BYTES)
    return controls / len(sample) > _BINARY_CONTROL_SHARE


def decode_file(data: bytes, source: str) -> str:
    """Decode a local text file: UTF-8 only (a UTF-8 BOM is fine), binary files refused.

    Raises SourceError "looks like a binary file" or "not UTF-8 text".
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SourceError(source, "not UTF-8 text (it looks like UTF-16; save it as UTF-8)")
    if looks_binary(data):
        raise SourceError(source, "looks like a binary file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(source, f"not UTF-8 text (invalid byte at offset {e.start})") from None
    return normalise_newlines(text)


# among encodings that read a file about equally well, the one Western text most likely is
# (charset-normalizer tells cp1252 from cp1257 or cp1250 badly on French or German text)
_PREFERRED_ENCODINGS = ("cp1252", "iso8859_15", "latin_1")
_DETECTION_MARGIN = 0.05


def decode_detected(data: bytes, source: str) -> tuple[str, str]:
    """Decode a local text file: ``(text, encoding)``. UTF-8 (a BOM is fine) and UTF-16 with
    a BOM are read as such; anything else in the encoding charset-normalizer detects (legacy
    Windows and ISO code pages, KOI8-R, Shift-JIS, ...). Binary files are refused, and so is a
    file no encoding reads ("not text in any known encoding")."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return normalise_newlines(data.decode("utf-16")), "utf-16"
        except UnicodeDecodeError:
            raise SourceError(source, "not UTF-16 text, though it starts like it") from None
    if looks_binary(data):
        raise SourceError(source, "looks like a binary file")
    try:
        return normalise_newlines(data.decode("utf-8-sig")), "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise SourceError(
            source, f"not text in any known encoding (not UTF-8: invalid byte at offset {bad})"
        )
    near = {m.encoding: m for m in matches if m.chaos <= best.chaos + _DETECTION_MARGIN}
    chosen = next((near[e] for e in _PREFERRED_ENCODINGS if e in near), best)
    text, encoding = str(chosen), codecs.lookup(chosen.encoding).name
    with contextlib.suppress(UnicodeDecodeError):  # the same text: name the common encoding
        if encoding != "cp1252" and data.decode("cp1252") == text:
            encoding = "cp1252"
    return normalise_newlines(text), encoding


def sniff_charset(data: bytes) -> str | None:
    """The charset a document declares about itself (BOM, XML declaration or HTML meta tag)."""
    if data.startswith(_UTF8_BOM):
        return "utf-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = data[:4096]
    m = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    if m:
        return m.group(1).decode("ascii", "replace").lower()
    return None


# text codecs that still cannot decode a document: strict-only (idna, punycode), always failing
# (undefined) or turning backslash sequences in the text into other characters (the escapes)
_UNUSABLE_CODECS = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}
)


def _lookup(name: str | None) -> codecs.CodecInfo | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'"))
    except (LookupError, ValueError, TypeError):
        return None


def text_codec(name: str | None) -> str | None:
    """The codec for charset ``name`` when it is a text encoding documents can be decoded with;
    None for unknown names and for codecs that are not text encodings (``zlib``, ``base64``,
    ``rot13``, ``idna``, ...)."""
    info = _lookup(name)
    if info is None or not getattr(info, "_is_text_encoding", True):
        return None
    return None if info.name in _UNUSABLE_CODECS else info.name


def unusable_charset(name: str | None) -> bool:
    """True when ``name`` is a known codec that is no text encoding (a hostile declaration;
    unknown names are not: they fall back to UTF-8, as browsers do)."""
    return _lookup(name) is not None and text_codec(name) is None


def decode_http(body: bytes, charset: str | None, *, sniff: bool = False) -> str:
    """Decode an HTTP body with its declared charset, else utf-8 with replacement characters.

    A byte-order mark wins over the declared charset (as browsers do). With ``sniff`` (HTML, XML)
    a charset declared inside the document is used when the headers declare none. Only text
    encodings are used (:func:`text_codec`): ``charset=zlib`` or ``base64`` is ignored here (and
    refused by :mod:`index.ingest.fetch`); never raises.
    """
    if body.startswith(_UTF8_BOM):
        codec: str | None = "utf-8"
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    else:
        codec = text_codec(charset)
        if codec is None and sniff:
            codec = text_codec(sniff_charset(body))
    try:
        text = body.decode(codec or "utf-8", errors="replace")
    except (UnicodeError, LookupError, ValueError, TypeError):  # a codec that fails anyway
        text = body.decode("utf-8", errors="replace")
    return normalise_newlines(text)


# --------------------------------------------------------------------------- helpers


def _strip_blank_lines(text: str) -> str:
    """Drop whitespace-only lines at both ends (and trailing whitespace); keep the rest as is."""
    text = text.rstrip()
    start = 0
    while True:
        nl = text.find("\n", start)
        if nl == -1 or text[start:nl].strip():
            break
        start = nl + 1
    return text[start:] if text[start:].strip() else ""


def _clean_title(value: Any) -> str | None:
    if value is None:
        return None
    title = " ".join(str(value).split())
    return title or None


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value.lower().startswith(("http://", "https://")) else None


def _no_text(source: str) -> SourceError:
    return SourceError(source, "no text")


# --------------------------------------------------------------------------- dates


def normalise_date(value: Any) -> str | None:
    """An ISO 8601 date (``YYYY-MM-DD``) or datetime for ``value``, or None when unparseable.

    Accepts ``date``/``datetime`` objects, ``time.struct_time`` (feedparser's ``*_parsed``, UTC)
    and strings in ISO 8601, RFC 822 (feeds, e-mail) or any format python-dateutil reads, as long
    as the string holds a four-digit year.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, time.struct_time):
        try:
            return dt.datetime(*value[:6], tzinfo=dt.UTC).isoformat()
        except (ValueError, OverflowError):
            return None
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s or len(s) > 100 or not _YEAR.search(s):
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        try:
            return dt.date.fromisoformat(s).isoformat()
        except ValueError:
            return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(s).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    try:
        from dateutil import parser as date_parser
    except ImportError:  # pragma: no cover - dateutil comes with trafilatura (htmldate)
        return None
    try:
        # parsed twice with different defaults: a difference means the day or month is missing
        parsed = date_parser.parse(s, default=dt.datetime(1, 1, 1))
        check = date_parser.parse(s, default=dt.datetime(2, 2, 2))
    except (ValueError, OverflowError, TypeError, LookupError):
        return None
    if (parsed.month, parsed.day) != (check.month, check.day):
        return None
    if not 1000 <= parsed.year <= 9999:
        return None
    if parsed.time() == dt.time(0) and parsed.tzinfo is None and not re.search(r"\d:\d", s):
        return parsed.date().isoformat()
    return parsed.isoformat()


# --------------------------------------------------------------------------- plain text


def from_text(raw: str, fallback_title: str, *, source: str = "<text>") -> tuple[str, str]:
    """Plain text: ``(title, text)``.

    When the first non-empty line looks like a title -- short (<= 150 chars), no sentence ends in
    it -- and is followed by a blank line, it is the title and the text is what follows;
    otherwise the title is ``fallback_title`` (made from the file name) and the text is
    everything: a first paragraph written on one line is never lost. Raises SourceError
    "no text" when nothing is left.
    """
    text = _strip_blank_lines(normalise_newlines(raw))
    if not text:
        raise _no_text(source)
    first, sep, rest = text.partition("\n")
    if sep and looks_like_title(first):
        blank, _, _ = rest.partition("\n")
        body = _strip_blank_lines(rest)
        if not blank.strip() and body:
            return _clean_title(first) or fallback_title, body
    return fallback_title, text


def looks_like_title(line: str) -> bool:
    """A plain-text line that can be a title: short, and no sentence ends in it."""
    line = " ".join(line.split())
    return 0 < len(line) <= TEXT_TITLE_CHARS and not _SENTENCE_END.search(line)


# --------------------------------------------------------------------------- markdown


def _parse_front_matter(block: str) -> dict[str, Any] | None:
    """The keys of a front matter block, or None when it is not ``key: value`` data."""
    try:
        import yaml

        data = yaml.safe_load(block)
        if isinstance(data, dict):
            return {str(k).lower(): v for k, v in data.items()}
    except ImportError:  # pragma: no cover - pyyaml is optional
        pass
    except Exception as e:  # any YAML problem: fall back to simple "key: value" lines
        log.debug("front matter is not valid YAML (%s); reading key: value lines", e)
    result: dict[str, Any] = {}
    for line in block.splitlines():
        m = _FRONT_MATTER_KEY.match(line.strip())
        if m:
            val = m.group(2).strip()
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
                val = val[1:-1]
            result[m.group(1).lower()] = val
    return result or None


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``(metadata, body)``; metadata is empty when the text does not start with ``---``."""
    first, sep, rest = text.partition("\n")
    if first.rstrip() != "---" or not sep:
        return {}, text
    lines = rest.split("\n")
    for i, line in enumerate(lines):
        if line.rstrip() in ("---", "..."):
            block = "\n".join(lines[:i])
            meta = _parse_front_matter(block) if block.strip() else {}
            if meta is None:  # a thematic break, not front matter
                return {}, text
            return meta, "\n".join(lines[i + 1 :])
    return {}, text


def _first(meta: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if meta.get(key) not in (None, ""):
            return meta[key]
    return None


def _leading_heading(body: str) -> tuple[str, str] | None:
    """``(heading, body without it)`` when the first non-blank line is a level-1 heading."""
    stripped = _strip_blank_lines(body)
    first, _, rest = stripped.partition("\n")
    m = _ATX_H1.match(first)
    if m:
        return m.group(1).strip(), rest
    second, _, after = rest.partition("\n")
    if first.strip() and _SETEXT_H1.match(second):
        return first.strip(), after
    return None


def from_markdown(
    raw: str, fallback_title: str, *, source: str = "<markdown>"
) -> tuple[str, str, str | None, str | None]:
    """Markdown: ``(title, text, url, date)``; the body as plain text (index/ingest/markdown.py:
    no ``**``, link targets or table pipes in quotes).

    Front matter between ``---`` lines may give ``title``, ``url``/``link`` and
    ``date``/``published``. Without a title there, a leading ``# Heading`` is the title and is
    removed from the text (it is also removed when it repeats the front matter title).
    """
    text = normalise_newlines(raw)
    meta, body = split_front_matter(text)
    title = _clean_title(_first(meta, _TITLE_KEYS))
    url = _http_url(_first(meta, _URL_KEYS))
    date = normalise_date(_first(meta, _DATE_KEYS))
    heading = _leading_heading(body)
    if heading is not None:
        head_title, rest = heading
        rest = _strip_blank_lines(rest)
        if rest and (title is None or _clean_title(head_title) == title):
            title = title or _clean_title(inline_text(head_title))
            body = rest
    body = _strip_blank_lines(markdown_to_text(body))
    if not body:
        raise _no_text(source)
    return title or fallback_title, body, url, date


# --------------------------------------------------------------------------- HTML


def _to_str(html: str | bytes) -> str:
    if isinstance(html, bytes):
        html = decode_http(html, None, sniff=True)
    # lxml refuses strings holding NUL; they carry no text anyway
    return html.replace("\x00", "")


def _block_texts(element: Any, xmltotxt: Any) -> list[str]:
    """Text of each block of trafilatura's output tree, containers flattened."""
    blocks: list[str] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag in _CONTAINER_TAGS and len(child):
            if (child.text or "").strip():
                blocks.append(" ".join(child.text.split()))
            blocks.extend(_block_texts(child, xmltotxt))
        else:
            copy = deepcopy(child)
            copy.tail = None
            text = xmltotxt(copy, False).strip("\n")
            if text.strip():
                blocks.append(text.rstrip())
        if (child.tail or "").strip():
            blocks.append(" ".join(child.tail.split()))
    return blocks


def _trafilatura(html: str, url: str | None) -> tuple[str | None, str, str | None, str | None]:
    """``(title, text, url, date)`` by trafilatura; text is "" when it finds nothing."""
    import trafilatura
    from trafilatura.xml import xmltotxt

    doc: Any = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        favor_precision=False,
        favor_recall=False,
        deduplicate=False,
    )
    if doc is None:
        return None, "", None, None
    text = ""
    body = getattr(doc, "body", None)
    if body is not None:
        try:
            text = "\n\n".join(_block_texts(body, xmltotxt))
        except Exception as e:  # internal API changed: use trafilatura's own plain text
            log.debug("cannot split trafilatura output into blocks: %r", e)
    if not text.strip():
        text = getattr(doc, "text", None) or ""
    return (
        _clean_title(getattr(doc, "title", None)),
        text,
        _http_url(getattr(doc, "url", None)),
        normalise_date(getattr(doc, "date", None)),
    )


def _lxml_fallback(html: str) -> tuple[str | None, str]:
    """Simple extraction for tiny pages trafilatura ignores: ``(title, text)``."""
    import lxml.etree
    import lxml.html

    # huge_tree lifts libxml2's nesting limit (256), past which the rest of a page is dropped
    parser = lxml.html.HTMLParser(huge_tree=True, remove_comments=True)
    root = lxml.html.document_fromstring(html, parser=parser)
    title = None
    title_el = root.find(".//title")
    if title_el is not None:
        title = _clean_title(title_el.text_content())
    h1 = root.find(".//h1")
    if title is None and h1 is not None:
        title = _clean_title(h1.text_content())
    for bad in list(root.iter(*_SKIP_HTML_TAGS)):
        if bad.getparent() is not None:
            bad.drop_tree()
    pieces: list[str] = []
    for event, el in lxml.etree.iterwalk(root, events=("start", "end")):
        if not isinstance(el.tag, str):  # comments, processing instructions
            if event == "end" and el.tail:
                pieces.append(el.tail)
            continue
        if el.tag in _HTML_BLOCK_TAGS:
            pieces.append("\n")
        if event == "start":
            pieces.append(el.text or "")
        elif el is not root:
            pieces.append(el.tail or "")
    lines = (" ".join(line.split()) for line in "".join(pieces).split("\n"))
    text = "\n\n".join(line for line in lines if line)
    return title, text


def _drop_title_block(title: str | None, text: str) -> str:
    if not title:
        return text
    first, sep, rest = text.partition("\n\n")
    if sep and rest.strip() and " ".join(first.split()).casefold() == title.casefold():
        return _strip_blank_lines(rest)
    return text


def from_html(
    html: str | bytes,
    url: str | None,
    fallback_title: str,
    *,
    source: str | None = None,
) -> tuple[str, str, str | None, str | None]:
    """HTML page → ``(title, text, url, date)`` via trafilatura (main text, no comments).

    Blocks (paragraphs, headings, lists, tables) are separated by blank lines; a leading heading
    that repeats the title is dropped. Tiny pages trafilatura ignores go through a simple lxml
    extraction. ``url`` is returned unless the page metadata gives none and ``url`` is None.
    Never raises anything but SourceError ("no readable text", "no text").
    """
    where = source or url or fallback_title
    try:
        doc = _to_str(html)
        if not doc.strip():
            raise _no_text(where)
        title, text, meta_url, date = _trafilatura(doc, url)
        if not text.strip():
            fb_title, text = _lxml_fallback(doc)
            title = title or fb_title
    except SourceError:
        raise
    except RecursionError:
        raise SourceError(where, "no readable text (the HTML is nested too deeply)") from None
    except Exception as e:
        log.debug("HTML extraction failed for %s", where, exc_info=True)
        raise SourceError(where, f"no readable text ({type(e).__name__})") from None
    text = _strip_blank_lines(normalise_newlines(text))
    if not text:
        raise _no_text(where)
    text = _drop_title_block(title, text)
    return title or fallback_title, text, url or meta_url, date
