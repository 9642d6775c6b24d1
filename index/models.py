"""Plain data classes shared by the engine and its faces (CLI, Discord)."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Progress callbacks: the engine reports, each face shows (CLI bars, Discord edits, logs).
# (stage, done, total), e.g. ("embedding", 120, 480): indexing, migrating, building an index
Progress = Callable[[str, int, int], None]
# one message per step, e.g. "fetching https://example.com/a": reading sources (no totals)
MessageProgress = Callable[[str], None]

# what both faces say when the engine abstains (no passage answers the question well enough)
NOT_FOUND = "I couldn't find that in the indexed articles."


def content_hash(title: str, text: str, tags: tuple[str, ...] = ()) -> str:
    """Hash of what gets embedded (and of the article's tags, when it has any): a change in
    either means writing the article again. Without tags the hash is the one older indexes
    stored, so adding tags to newsdesk changed no article's hash."""
    h = hashlib.sha256()
    h.update(title.encode("utf-8"))
    h.update(b"\x00")
    h.update(text.encode("utf-8"))
    if tags:
        h.update(b"\x00tags\x00")
        h.update(",".join(tags).encode("utf-8"))
    return h.hexdigest()


MAX_TAG_CHARS = 50
MAX_TAGS = 20
_TAG_OK = re.compile(r"^[^\W_][\w.+-]*$")


def normalize_tag(tag: str) -> str:
    """A tag as stored: lower case, inner spaces as ``-``; letters, digits and ``_ . + -``,
    starting with a letter or digit, at most ``MAX_TAG_CHARS`` characters. A ValueError
    naming the tag otherwise."""
    t = "-".join(str(tag).strip().lower().split())
    if not t:
        raise ValueError("a tag is empty")
    if len(t) > MAX_TAG_CHARS or not _TAG_OK.match(t):
        raise ValueError(
            f"bad tag {tag[:60]!r}: use letters, digits and - _ . + (at most "
            f"{MAX_TAG_CHARS} characters, starting with a letter or digit)"
        )
    return t


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags normalised (:func:`normalize_tag`), without repeats, sorted; a ValueError for a
    bad one or more than ``MAX_TAGS``."""
    out = tuple(sorted({normalize_tag(t) for t in tags}))
    if len(out) > MAX_TAGS:
        raise ValueError(f"too many tags ({len(out)}; at most {MAX_TAGS} per article)")
    return out


def pack_tags(tags: Sequence[str]) -> str:
    """Tags as one stored string: ``,a,b,`` (so ``,a,`` finds tag ``a`` by substring)."""
    return "," + ",".join(tags) + "," if tags else ""


def unpack_tags(value: str | None) -> tuple[str, ...]:
    return tuple(t for t in (value or "").split(",") if t)


def text_hash(text: str) -> str:
    """Hash of an article's text alone: the same text under two paths or URLs (another title
    from another file name) is one article (duplicates are not indexed twice)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def article_id_for(source: str) -> str:
    """A stable id derived from the canonical source (absolute path or URL)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def http_link(url: str | None, source: str) -> str | None:
    """The first of ``url`` and ``source`` that is an http(s) link."""
    for cand in (url, source):
        if cand and cand.startswith(("http://", "https://")):
            return cand
    return None


@dataclass(frozen=True)
class Document:
    """An article as extracted from a source, before it is stored.

    ``source`` is canonical: an absolute file path or a URL. ``url`` is a link a person can open
    (for files, the ``url`` from front matter, if any).
    """

    source: str
    title: str
    text: str
    url: str | None = None
    published: str | None = None  # ISO 8601 date or datetime, as given by the source
    # the encoding a text file was read in ("utf-8", or the one detected); None for the others
    encoding: str | None = None
    # labels a scope can select (normalised, sorted: :func:`normalize_tags`)
    tags: tuple[str, ...] = ()

    @property
    def article_id(self) -> str:
        return article_id_for(self.source)

    @property
    def content_hash(self) -> str:
        return content_hash(self.title, self.text, self.tags)


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    source: str
    text: str
    url: str | None
    published: str | None
    content_hash: str
    added_at: str
    chunk_count: int = 0
    tags: tuple[str, ...] = ()

    @property
    def link(self) -> str | None:
        """An http(s) link for the article, if it has one."""
        return http_link(self.url, self.source)


@dataclass(frozen=True)
class Chunk:
    """A passage: ``text == article_text[start:end]``."""

    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    id: int | None = None


@dataclass
class Hit:
    """A retrieved passage with its article's metadata."""

    chunk_id: int
    article_id: str
    title: str
    source: str
    url: str | None
    text: str
    start: int
    end: int
    score: float
    published: str | None = None
    # per-retriever ranks/scores, for explanations and evaluation
    details: dict[str, float] = field(default_factory=dict)
    # the chunks this hit covers (several when overlapping passages were merged):
    # (chunk id, start, end) with offsets into the article text
    parts: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def link(self) -> str | None:
        """An http(s) link for the article, if it has one."""
        return http_link(self.url, self.source)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "article": self.article_id,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "score": round(float(self.score), 6),
            "chunk_id": self.chunk_id,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class Quote:
    """The answer: a verbatim span of one article, with offsets into its text."""

    text: str
    article_id: str
    title: str
    source: str
    url: str | None
    start: int
    end: int
    score: float
    chunk_id: int
    published: str | None = None

    @property
    def link(self) -> str | None:
        """An http(s) link for the article, if it has one."""
        return http_link(self.url, self.source)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "article": self.article_id,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 6),
            "chunk_id": self.chunk_id,
        }


@dataclass
class Answer:
    """What ``ask`` returns. ``quote`` is None when the engine abstains."""

    question: str
    quote: Quote | None
    passages: list[Hit]
    elapsed_ms: float = 0.0
    # closest article titles, offered when abstaining
    suggestions: list[str] = field(default_factory=list)
    # calibrated confidence that the quote answers the question (0..1)
    confidence: float = 0.0
    # not a question about the articles ("help", "thanks", "greeting", "noise"): no quote
    smalltalk: str | None = None
    # further quotes for the other parts of a multi-part question ("... and when did it end?")
    also: list[Quote] = field(default_factory=list)
    # the question as retrieval embedded it (float32, unit length; not in the JSON): the
    # feedback log keeps it so `gaps` groups questions without embedding them again
    query_vector: Any = field(default=None, repr=False, compare=False)
    # a follow-up in a thread: the earlier question its retrieval built on (index.search.followup)
    follows_up: str | None = None
    # the question with its misspelt words corrected, as it was searched ("When did Apolo 11
    # land on the mooon" -> "When did Apollo 11 land on the moon"); None when no word was
    # corrected
    searched_as: str | None = None

    @property
    def abstained(self) -> bool:
        return self.quote is None

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.quote.to_json() if self.quote else None,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "suggestions": self.suggestions,
            "smalltalk": self.smalltalk,
            "also": [q.to_json() for q in self.also],
            "passages": [p.to_json() for p in self.passages],
            "elapsed_ms": round(self.elapsed_ms, 2),
            **({"follows_up": self.follows_up} if self.follows_up else {}),
            **({"searched_as": self.searched_as} if self.searched_as else {}),
        }


@dataclass
class IndexReport:
    """Counts from an ``index`` / ``reindex`` / ``remove`` run."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    skipped: list[str] = field(default_factory=list)  # "source: reason" for skipped inputs
    # "source: reason" for inputs indexed another way (a feed entry from the feed's own text):
    # counted as added or updated, not skipped
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    titles: list[str] = field(default_factory=list)  # titles of added/updated articles
    # "source: same text as "Title" (id)" for new articles whose text is indexed already
    duplicates: list[str] = field(default_factory=list)
    # source -> encoding, for the text files that were not UTF-8 (see index/ingest/extract.py)
    encodings: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON says "passages" everywhere (``chunks_embedded`` is ``passages_embedded``)."""
        data = asdict(self)
        data["passages_embedded"] = data.pop("chunks_embedded")
        return data

    def summary(self) -> str:
        parts = [
            f"{self.added} added",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
        ]
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.duplicates:
            n = len(self.duplicates)
            parts.append(f"{n} duplicate{'' if n == 1 else 's'}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        n = self.chunks_embedded
        embedded = f"{n} passage{'' if n == 1 else 's'} embedded"
        return ", ".join(parts) + f" ({embedded}, {self.seconds:.1f}s)"


@dataclass
class Stats:
    articles: int
    chunks: int
    model: str
    dimension: int
    index_type: str
    bytes_on_disk: int
    data_dir: str
    schema_version: int
    last_indexed: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON says "passages" everywhere (``chunks`` is ``passages``)."""
        data = asdict(self)
        data["passages"] = data.pop("chunks")
        return data

    @staticmethod
    def meta_int(value: str | None, default: int = 0) -> int:
        """A number from the index meta; a damaged value reads as ``default`` (``check``
        reports it)."""
        try:
            return int(value) if value else default
        except ValueError:
            return default

    @staticmethod
    def disk_size(folder: Path) -> int:
        """Bytes of every file under ``folder`` (0 when it does not exist)."""
        size = 0
        if folder.is_dir():
            for p in folder.rglob("*"):
                with contextlib.suppress(OSError):
                    if p.is_file():
                        size += p.stat().st_size
        return size


@dataclass(frozen=True)
class Scope:
    """A channel's knowledge, as a config ``[[scopes]]`` table or ``/scope set`` declares it:
    the articles of these subscriptions (feed URL or name, folder subscription), under these
    folders, with any of these tags, or named (id, title, URL). Any one of them lets an article
    in; an empty scope lets nothing in. ``name`` is how it is shown."""

    name: str = ""
    feeds: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.feeds or self.folders or self.tags or self.articles)

    def describe(self) -> str:
        """One line: ``feeds: a, b · tags: x`` (what ``/scope show`` lists)."""
        parts = [
            f"{what}: {', '.join(values)}"
            for what, values in (
                ("feeds", self.feeds),
                ("folders", self.folders),
                ("tags", self.tags),
                ("articles", self.articles),
            )
            if values
        ]
        return " · ".join(parts) or "nothing"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
