"""The commands on the index itself: `index`, `remove`, `reindex`, `stats`, `check`,
`articles`, `article`. Each takes the parsed arguments, the settings and the stream to print to,
and returns the exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from index.cli.render import plural, progress_bars, shown_path, stderr_line, wrap
from index.config import Settings
from index.errors import SourceError
from index.models import Article
from index.text import human_bytes

log = logging.getLogger("newsdesk")


def open_pipeline(settings: Settings) -> Any:
    from index.pipeline import Pipeline

    return Pipeline(settings)


def cmd_index(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.cli.commands_scopes import tags_of
    from index.ingest.sources import collect

    tags = tags_of(args)
    quiet = args.quiet or args.json
    folders = [i for i in args.inputs if "://" not in i and Path(i).expanduser().is_dir()]
    if args.prune and not folders:
        raise SourceError(" ".join(args.inputs), "--prune needs a folder to prune")
    fetch = settings.fetch
    if args.allow_host:
        fetch = dataclasses.replace(fetch, allow_hosts=[*fetch.allow_hosts, *args.allow_host])
    with progress_bars(not quiet) as progress:
        collected = collect(
            args.inputs,
            fetch,
            progress=(lambda msg: log.info("%s", msg)),
        )
        for w in collected.warnings:
            stderr_line(f"newsdesk: skipped {w}")
        for n in collected.notes:
            stderr_line(f"newsdesk: note: {n}")
        if collected.errors:
            for e in collected.errors:
                stderr_line(f"newsdesk: error: {e}")
            print("newsdesk: nothing was indexed", file=sys.stderr)
            return 1
        if not collected.documents:
            print("newsdesk: error: no articles found in the given inputs", file=sys.stderr)
            return 1
        with open_pipeline(settings) as pipe:
            pruned = pipe.prune(folders) if args.prune else []
            docs = collected.documents
            if tags:  # --tag: given to every article, besides its front matter's
                docs = [dataclasses.replace(d, tags=tuple(sorted({*d.tags, *tags}))) for d in docs]
            report = pipe.add_documents(docs, progress=progress)
    report.skipped = [str(w) for w in collected.warnings]
    report.notes = [str(n) for n in collected.notes]
    report.removed = len(pruned)
    report.encodings = {
        d.source: d.encoding
        for d in collected.documents
        if d.encoding and d.encoding not in ("utf-8", "ascii")
    }
    if not quiet:
        for dup in report.duplicates:
            stderr_line(f"newsdesk: duplicate, not indexed again: {dup}")
        for art in pruned:
            stderr_line(f"newsdesk: removed (file gone): {art.title} ({art.source})")
        for source, encoding in report.encodings.items():
            stderr_line(f"newsdesk: read as {encoding} (not UTF-8): {source}")
    if args.json:
        print(json.dumps(report.to_json()), file=out)
    else:
        print(f"Indexed: {report.summary()}", file=out)
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_pipeline(settings) as pipe:
        removed = pipe.remove_many(args.articles)
    if args.json:
        rows = [{"id": a.id, "title": a.title, "source": a.source} for a in removed]
        print(json.dumps({"removed": rows}, ensure_ascii=False), file=out)
        return 0
    for art in removed:
        print(f"Removed: {art.title} ({art.id})", file=out)
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with progress_bars(not (args.quiet or args.json)) as progress, open_pipeline(settings) as pipe:
        report = pipe.reindex(progress=progress)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False), file=out)
        return 0
    print(
        f"Re-indexed {plural(report.updated, 'article')} "
        f"({plural(report.chunks_embedded, 'passage')}, {report.seconds:.1f}s)",
        file=out,
    )
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_pipeline(settings) as pipe:
        s = pipe.stats()
    if args.json:
        print(json.dumps(s.to_json()), file=out)
        return 0
    print(
        f"articles     {s.articles}\npassages     {s.chunks}\nmodel        {s.model} "
        f"(dimension {s.dimension})\nindex type   {s.index_type}\n"
        f"on disk      {human_bytes(s.bytes_on_disk)}\ndata dir     {s.data_dir}\n"
        f"last indexed {s.last_indexed or 'never'}",
        file=out,
    )
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_pipeline(settings) as pipe:
        problems = pipe.check()
        stats = None if problems else pipe.stats()
    if args.json:
        data = {
            "ok": not problems,
            "problems": problems,
            "articles": stats.articles if stats else None,
            "passages": stats.chunks if stats else None,
        }
        print(json.dumps(data, ensure_ascii=False), file=out)
    elif stats is not None:
        print(
            f"index OK: {plural(stats.articles, 'article')}, {plural(stats.chunks, 'passage')}",
            file=out,
        )
    else:
        for problem in problems:
            print(f"problem: {problem}", file=out)
    return 1 if problems else 0


def cmd_articles(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_pipeline(settings) as pipe:
        rows = pipe.list_articles()
    if args.json:
        data = [{**r.__dict__, "passages": r.chunk_count} for r in rows]
        for d in data:
            del d["chunk_count"]  # "passages" in all JSON
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    if not rows:
        print("No articles yet: run `newsdesk index PATH_OR_URL`.", file=out)
    for r in rows:
        date = f" {r.published[:10]}" if r.published else ""
        tags = f"  [{', '.join(r.tags)}]" if r.tags else ""
        print(f"{r.id}  {r.title}{date}  ({plural(r.chunk_count, 'passage')}){tags}", file=out)
    return 0


def cmd_article(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_pipeline(settings) as pipe:
        a = pipe.get_article(args.ref)
    opening = a.text.strip().split("\n\n", 1)[0]
    if args.json:
        data = article_json(a)
        if args.text:
            data["text"] = a.text
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    if args.text:  # exactly the stored text: quotes' offsets point into it
        print(a.text, file=out)
        return 0
    print(article_head(a), file=out)
    print(wrap(opening, "  "), file=out)
    return 0


def article_json(a: Article) -> dict[str, Any]:
    """The article card of `article --json` (and of `article --summary --json`)."""
    return {
        "id": a.id,
        "title": a.title,
        "source": a.source,
        "url": a.url,
        "published": a.published,
        "passages": a.chunk_count,
        "tags": list(a.tags),
        "opening": a.text.strip().split("\n\n", 1)[0],
    }


def article_head(a: Article) -> str:
    """The card's head lines (title, id, source, date, passages, tags), then a blank line."""
    tags = f"\n  tags      {', '.join(a.tags)}" if a.tags else ""
    return (
        f"{a.title}\n  id        {a.id}\n  source    {a.url or shown_path(a.source)}\n"
        f"  date      {a.published or 'unknown'}\n  passages  {a.chunk_count}{tags}\n"
    )
