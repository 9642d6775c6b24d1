"""From documents to what a backend stores: cleaned text, planned chunks, their vectors.

The steps a write takes before it publishes (the facade, :mod:`index.pipeline`, holds the writer
lock around them): clean each document, leave out unchanged ones and duplicates, split the rest
into passages that fit the embedder's token budget, and embed the passages with their
sentences. Nothing here writes: the backend's ``publish`` does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.chunking import all_sentences, chunk_text
from index.config import ChunkingSettings, FetchSettings
from index.embedding.base import Embedder
from index.errors import ArticleNotFoundError, SourceError
from index.models import Article, Chunk, Document, IndexReport, Progress, text_hash
from index.storage.sentences import pack_sentences

if TYPE_CHECKING:
    from index.ingest.sources import Collected
    from index.storage.base import StoreReader
    from index.storage.sqlite import ArticleRow


@dataclass
class Planned:
    """One document and the passages it is split into (before embedding)."""

    doc: Document
    chunks: list[Chunk]


def sanitize(doc: Document) -> Document:
    """Drop what SQLite or a terminal cannot hold: NULs and lone surrogates. The date is
    stored as ISO 8601 (or not at all), whoever built the Document: JSON output has one form."""
    from index.ingest.extract import normalise_date

    def clean(s: str) -> str:
        return s.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")

    title = " ".join(clean(doc.title).split())[:300] or "Untitled"
    published = normalise_date(doc.published)
    return dataclasses.replace(doc, title=title, text=clean(doc.text), published=published)


def embed_text(title: str, passage: str) -> str:
    """What is embedded (and BM25-indexed) for a passage: its article's title, then its text."""
    return f"{title}\n{passage}"


def token_budget(embedder: Embedder, chunking: ChunkingSettings, title: str) -> int:
    """Tokens left for a passage once its title (at most a third) and specials are counted."""
    max_tokens = chunking.max_tokens or embedder.max_seq_length
    title_tokens = embedder.count_tokens([title])[0] if title else 0
    return max(32, max_tokens - 3 - min(title_tokens, max_tokens // 3))


def plan_chunks(embedder: Embedder, chunking: ChunkingSettings, doc: Document) -> list[Chunk]:
    """``doc``'s passages: sentence-aware spans that fit the token budget, with overlap."""
    spans = chunk_text(
        doc.text,
        embedder.count_tokens,
        token_budget(embedder, chunking, doc.title),
        overlap=chunking.overlap_sentences,
    )
    return [Chunk(doc.article_id, i, s, e, doc.text[s:e]) for i, (s, e) in enumerate(spans)]


def plan_all(
    embedder: Embedder,
    chunking: ChunkingSettings,
    docs: Sequence[Document],
    progress: Progress | None,
) -> list[Planned]:
    """Every document's passages, reporting ``chunking`` progress per document."""
    planned = []
    for i, d in enumerate(docs):
        planned.append(Planned(d, plan_chunks(embedder, chunking, d)))
        if progress:
            progress("chunking", i + 1, len(docs))
    return planned


def embed_planned(
    embedder: Embedder, planned: Sequence[Planned], progress: Progress | None
) -> tuple[np.ndarray, list[bytes]]:
    """Passage vectors and, per passage, its packed sentence spans + vectors."""
    texts: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    rel_spans: list[list[tuple[int, int]]] = []
    for p in planned:
        base = len(p.doc.title) + 1
        for c in p.chunks:
            texts.append(embed_text(p.doc.title, c.text))
            rel = all_sentences(c.text)
            rel_spans.append(rel)
            spans.append([(a + base, b + base) for a, b in rel])
    total = len(texts)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress("embedding", done, total)

    if progress:
        progress("embedding", 0, total)
    vecs, sent = embedder.embed_passages(texts, spans, progress=step)
    return vecs, [pack_sentences(r, v) for r, v in zip(rel_spans, sent, strict=True)]


def drop_duplicates(
    store: StoreReader, unique: dict[str, Document], hashes: dict[str, str], report: IndexReport
) -> None:
    """Take new articles whose text is indexed already (another path, another URL) or
    appears earlier in this batch out of ``unique``, noting each in ``report.duplicates``:
    one article, whatever the number of copies."""
    new = [d for d in unique.values() if d.article_id not in hashes]
    if not new:
        return
    by_content = {h: a for a, h in reversed(list(hashes.items()))}
    stored = store.same_text([d.text for d in new])
    earlier: dict[str, Document] = {}
    for d in new:
        th = text_hash(d.text)
        other_id = by_content.get(d.content_hash) or stored.get(th)
        if other_id is not None:
            other = store.get_article(other_id)
            title, ident = other.title, other.id
        elif th in earlier:
            title, ident = earlier[th].title, earlier[th].article_id
        else:
            earlier[th] = d
            continue
        del unique[d.article_id]
        report.duplicates.append(f'{d.source}: same text as "{title}" ({ident})')


def changed(
    unique: dict[str, Document], hashes: dict[str, str], report: IndexReport
) -> list[Document]:
    """The documents to (re-)embed: new or changed by content hash; each counted in ``report``
    as added, updated or unchanged."""
    todo: list[Document] = []
    for d in unique.values():
        old = hashes.get(d.article_id)
        if old == d.content_hash:
            report.unchanged += 1
        else:
            todo.append(d)
            if old is None:
                report.added += 1
            else:
                report.updated += 1
            report.titles.append(d.title)
    return todo


def read_inputs(inputs: Sequence[str], fetch: FetchSettings) -> Collected:
    """The documents of files, folders, URLs or feeds, all or nothing: the first
    :class:`SourceError` of a named input is raised (with how many more failed)."""
    from index.ingest.sources import collect

    collected = collect(list(inputs), fetch)
    if collected.errors:
        first = collected.errors[0]
        if len(collected.errors) > 1:
            raise SourceError(
                first.source, f"{first.reason} (and {len(collected.errors) - 1} more)"
            )
        raise first
    if not collected.documents:
        raise SourceError(", ".join(inputs), "no articles found")
    return collected


def resolve_all(store: StoreReader, refs: Sequence[str]) -> list[Article]:
    """The articles ``refs`` name, all or nothing: when any matches no article (or several) the
    error names each one that failed. An article named twice is listed once."""
    found: dict[str, Article] = {}
    problems = []
    for ref in refs:
        try:
            article = store.find_article(ref)
        except ArticleNotFoundError as e:
            problems.append(str(e))
        else:
            found.setdefault(article.id, article)
    if problems:
        more = "; nothing was removed" if len(refs) > 1 else ""
        raise ArticleNotFoundError("; ".join(problems) + more)
    return list(found.values())


def files_gone(rows: Sequence[ArticleRow], folders: Sequence[str | Path]) -> list[str]:
    """Ids of the articles read from files under ``folders`` whose files no longer exist."""
    roots = [str(Path(f).expanduser().resolve()) for f in folders]
    return [
        row.id
        for row in rows
        if any(row.source.startswith(root.rstrip(os.sep) + os.sep) for root in roots)
        and not os.path.lexists(row.source)
    ]


def as_document(a: Article) -> Document:
    """A stored article as the document it was read from (same id, hash and tags)."""
    return Document(a.source, a.title, a.text, a.url, a.published, tags=a.tags)
