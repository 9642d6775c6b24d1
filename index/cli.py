"""`newsdesk` command line: index articles, ask questions, manage the index.

Errors are translated here, once: a NewsdeskError prints one line and exits 1; anything else is
a bug, whose traceback goes to the log file, never to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .config import Settings, load_settings
from .errors import NewsdeskError, SourceError
from .models import Answer, Hit

log = logging.getLogger("newsdesk")

EPILOG = """\
examples:
  newsdesk index ~/articles https://example.com/story.html   index a folder and a web page
  newsdesk index https://example.com/feed.xml                 every entry of an RSS/Atom feed
  newsdesk ask "What did Ma say about Apple Pay?"             the answer, quoted and cited
  newsdesk ask --json "Who founded Alibaba?"                  the same as JSON
  printf 'q1\\nq2\\n' | newsdesk ask --json                      batch: one JSON object per line
  newsdesk chat                                               ask questions interactively
  newsdesk stats                                              what is indexed
  newsdesk migrate --to milvus --uri http://host:19530        move the index to Milvus

data dir: --data-dir, else $NEWSDESK_DATA_DIR, else data_dir in the config file, else
~/.local/share/newsdesk. config: --config, else $NEWSDESK_CONFIG, else ./config.toml.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _common(sub: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the command; after it they must not reset defaults."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if sub else {}
    g.add_argument(
        "--config", metavar="FILE", help="config file (TOML); see config.example.toml", **d
    )
    g.add_argument("--data-dir", metavar="DIR", help="where the index lives", **d)
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="more log output (-vv: debug)",
        **(d or {"default": 0}),
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes", **d)
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common(sub=True)
    parser = argparse.ArgumentParser(
        prog="newsdesk",
        description="Answer questions about your articles with the exact sentence, quoted.",
        epilog=EPILOG,
        formatter_class=_Formatter,
        parents=[_common(sub=False)],
    )
    parser.add_argument("--version", action="version", version=f"newsdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(
        name: str, help: str, description: str = "", epilog: str = ""
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=description or help,
            epilog=epilog,
            parents=[common],
            formatter_class=_Formatter,
        )

    p = cmd(
        "index",
        "add or update articles from files, folders, web pages and feeds",
        "Add articles to the index. Unchanged articles are skipped (content hash); changed ones\n"
        "are re-embedded. Supported: .txt, .md (front matter title/url/date), .html files,\n"
        "folders (recursively), http(s) pages, and RSS/Atom feeds (each entry is fetched).",
        "examples:\n  newsdesk index samples/\n  newsdesk index notes.md https://example.com/a.html",
    )
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = cmd(
        "ask",
        "answer a question (or one per stdin line) with a quoted sentence",
        "Answer with the sentence that best answers the question, its article, and the top\n"
        "passages. With no QUESTION, reads one question per line from stdin (batch mode).",
        'examples:\n  newsdesk ask "What did Ma say about Apple Pay?"\n'
        "  newsdesk ask --json --k 3 < questions.txt",
    )
    p.add_argument("question", nargs="?", help="the question (omit to read stdin)")
    p.add_argument("--k", type=_positive, default=None, help="passages to return (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], help="retrieval mode")
    p.add_argument("--json", action="store_true", help="JSON output (one object per line in batch)")

    p = cmd("search", "list the passages that best match a query", "List top passages.")
    p.add_argument("query")
    p.add_argument("--k", type=_positive, default=None, help="passages to return (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], help="retrieval mode")
    p.add_argument("--json", action="store_true", help="JSON output")

    cmd(
        "chat",
        "ask questions in a terminal loop (quit with 'quit' or Ctrl-D)",
        "Read questions line by line and answer each; works with a pipe too.",
    )

    p = cmd("remove", "remove articles by id, title, path or URL")
    p.add_argument("articles", nargs="+", metavar="ARTICLE")

    cmd(
        "reindex",
        "rebuild every passage and vector from the stored article text",
        "Re-chunk and re-embed all stored articles with the current settings (model, chunking).\n"
        "Needs no network: article text is kept in the database.",
    )

    p = cmd("stats", "show what is indexed")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "check",
        "verify the index: database, meta, vector and keyword files, passages",
        "Verify the index without changing it: SQLite's integrity check, the meta (same model\n"
        "and chunking as configured), the current generation's files (checksums, FAISS and BM25\n"
        "readable, their ids equal to the passage ids), passage offsets inside their articles,\n"
        "no passage without its article. Exit 0 when all is well, 1 with one line per problem.",
        "examples:\n  newsdesk check\n  newsdesk check --json",
    )
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd("articles", "list indexed articles")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd("article", "show one article: title, source, date, passages, opening")
    p.add_argument("ref", metavar="ARTICLE", help="id, title, path or URL")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "eval",
        "measure retrieval and answer quality on a question set",
        "Index a corpus folder into a temporary data dir (or --data-dir), ask every question of\n"
        "a SQuAD-style JSONL file and report hit@1/3/5/10 (a gold answer in a returned passage),\n"
        "MRR@10, answer accuracy (a gold answer inside the quote), abstention, latency and\n"
        "indexing time. --leave-out also asks each question with its gold article left out\n"
        "(unanswerable) and reports the share abstained.",
        "example:\n  newsdesk eval --corpus ../shared/eval/squad-dev/articles "
        "--qa ../shared/eval/squad-dev/qa.jsonl --mode hybrid --leave-out",
    )
    p.add_argument("--corpus", required=True, type=Path, metavar="DIR", help="article folder")
    p.add_argument("--qa", required=True, type=Path, metavar="FILE", help="questions (JSONL)")
    p.add_argument("--k", type=_positive, default=10, help="passages per question (default 10)")
    p.add_argument(
        "--mode",
        choices=["hybrid", "dense", "bm25", "all"],
        help="retrieval mode; 'all' compares the three on one index (Markdown table)",
    )
    p.add_argument(
        "--leave-out", action="store_true", help="also ask with the gold article removed"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument(
        "--details", type=Path, metavar="FILE", help="write per-question results (JSONL)"
    )

    p = cmd(
        "bench",
        "measure indexing, question, search, re-index and start-up speed",
        "Index a corpus of real articles into a temporary data dir and measure, in one run:\n"
        "indexing throughput against bare SentenceTransformer.encode; question latency\n"
        "(p50/p95/p99) against a bare single-question encode, on the corpus and grown with\n"
        "synthetic passages to each --sizes; vector search alone on synthetic clustered\n"
        "vectors (recall@10, build time, memory, disk); re-indexing unchanged and 1%-changed\n"
        "corpora; start-up of the CLI and of the Discord bot (on the loopback fake Discord).\n"
        "Corpus: --corpus, else ../shared/eval/squad-dev/articles, else samples/.",
        "examples:\n  newsdesk bench\n  newsdesk bench --full --out bench-results.json\n"
        "  newsdesk bench --sizes 2000 --json",
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        default=[10_000, 100_000],
        metavar="N,N",
        help="index sizes in passages (default 10000,100000)",
    )
    p.add_argument("--full", action="store_true", help="also 1,000,000 vectors (about 10 min)")
    p.add_argument("--corpus", type=Path, metavar="DIR", help="folder of real articles")
    p.add_argument(
        "--backend",
        choices=["torch", "onnx", "onnx-int8", "faiss", "milvus"],
        help="embedding backend for the pipeline (default: the config's); or faiss / milvus: "
        "the vector-store benchmark instead, FAISS beside Milvus Lite (--sizes, default 100000)",
    )
    p.add_argument("--questions", type=int, default=300, help="questions timed per size")
    p.add_argument("--no-bot", action="store_true", help="skip the Discord bot start-up")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results.json"),
        metavar="FILE",
        help="save the results as JSON (default bench-results.json)",
    )

    p = cmd(
        "migrate",
        "copy the FAISS index into Milvus, without re-embedding",
        "Copy the index of the data dir (SQLite + FAISS) into Milvus: article text, passages,\n"
        "their vectors (read back from FAISS) and sentence vectors. Nothing is re-embedded and\n"
        "passage ids are kept, so answers stay the same. The Milvus collections must not hold\n"
        'an index yet. Afterwards set [store] backend = "milvus" (and uri) in the config.\n'
        "The Milvus token, if any, comes from $MILVUS_TOKEN (store.token_env).",
        "examples:\n  newsdesk migrate --to milvus --uri http://milvus.internal:19530\n"
        "  newsdesk migrate --to milvus --uri ~/newsdesk-milvus.db     (Milvus Lite)",
    )
    p.add_argument("--to", required=True, choices=["milvus"], help="the backend to copy to")
    p.add_argument(
        "--uri",
        metavar="URI",
        help="Milvus: http://host:19530, or a local path ending in .db for Milvus Lite "
        "(default: store.uri, else <data dir>/milvus.db)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    cmd(
        "run",
        "start the Discord bot (needs DISCORD_TOKEN)",
        "Start the Discord bot. The token is read from $DISCORD_TOKEN only.",
    )
    return parser


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
    if not 1 <= n <= 50:
        raise argparse.ArgumentTypeError("must be between 1 and 50")
    return n


# -- output helpers --------------------------------------------------------------------------


def _wrap(text: str, indent: str = "  ") -> str:
    width = max(40, min(100, _term_width()) - len(indent))
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=indent, subsequent_indent=indent
    )


def _term_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _where(h: Hit | Any) -> str:
    return str(h.url or h.source)


def format_answer(ans: Answer, show_passages: bool = True) -> str:
    lines = []
    if ans.quote is None:
        lines.append("I couldn't find that in the indexed articles.")
        if ans.suggestions:
            lines.append("Closest articles: " + "; ".join(ans.suggestions))
    else:
        q = ans.quote
        lines.append(_wrap(f"“{q.text}”", "  > ").replace("  > ", "  > ", 1))
        lines.append(f"  — {q.title} ({_where(q)})")
    if show_passages and ans.passages:
        lines.append("")
        lines.append("Top passages:")
        for i, h in enumerate(ans.passages, 1):
            snippet = " ".join(h.text.split())
            if len(snippet) > 160:
                snippet = snippet[:157].rsplit(" ", 1)[0] + "…"
            lines.append(f"{i:>2}. {h.title} [{h.score:.3f}]")
            lines.append(_wrap(snippet, "    "))
    return "\n".join(lines)


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not enabled:
            return
        bar = bars.get(stage)
        if bar is None:
            bar = tqdm(total=total, desc=stage, unit="", leave=False, file=sys.stderr, disable=None)
            bars[stage] = bar
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()


# -- commands --------------------------------------------------------------------------------


def _pipeline(settings: Settings) -> Any:
    from .pipeline import Pipeline

    return Pipeline(settings)


def cmd_index(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from .sources import collect

    quiet = args.quiet or args.json
    with progress_bars(not quiet) as progress:
        collected = collect(
            args.inputs,
            settings.fetch,
            progress=(lambda msg: log.info("%s", msg)),
        )
        for w in collected.warnings:
            print(f"newsdesk: skipped {w}", file=sys.stderr)
        if collected.errors:
            for e in collected.errors:
                print(f"newsdesk: error: {e}", file=sys.stderr)
            print("newsdesk: nothing was indexed", file=sys.stderr)
            return 1
        if not collected.documents:
            print("newsdesk: error: no articles found in the given inputs", file=sys.stderr)
            return 1
        with _pipeline(settings) as pipe:
            report = pipe.add_documents(collected.documents, progress=progress)
    report.skipped = [str(w) for w in collected.warnings]
    if args.json:
        print(json.dumps(report.to_json()), file=out)
    else:
        print(f"Indexed: {report.summary()}", file=out)
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        if args.question is not None:
            ans = pipe.ask(args.question, k=args.k, mode=args.mode)
            if args.json:
                print(json.dumps(ans.to_json(), ensure_ascii=False), file=out)
            else:
                print(format_answer(ans), file=out)
            return 0
        if sys.stdin.isatty():
            print("newsdesk: error: give a QUESTION, or pipe questions on stdin", file=sys.stderr)
            return 2
        lines = [line.rstrip("\r\n") for line in sys.stdin]
        results = pipe.ask_many(lines, k=args.k, mode=args.mode)
        failed = 0
        for q, res in zip(lines, results, strict=True):
            if isinstance(res, NewsdeskError):
                failed += 1
                if args.json:
                    print(
                        json.dumps({"question": q, "error": str(res)}, ensure_ascii=False), file=out
                    )
                else:
                    print(f"Q: {q}\nerror: {res}\n", file=out)
            elif args.json:
                print(json.dumps(res.to_json(), ensure_ascii=False), file=out)
            else:
                print(f"Q: {q}\n{format_answer(res, show_passages=False)}\n", file=out)
            out.flush()
        return 0 if failed < len(lines) or not lines else 1


def cmd_search(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        hits = pipe.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False), file=out)
    else:
        print(format_answer(Answer(args.query, None, hits)).split("\n", 2)[-1], file=out)
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    interactive = sys.stdin.isatty()
    with _pipeline(settings) as pipe:
        stats = pipe.stats()
        if interactive:
            print(
                f"newsdesk chat — {stats.articles} articles indexed. "
                "Ask a question; 'quit' or Ctrl-D to leave.",
                file=out,
            )
        while True:
            if interactive:
                try:
                    line = input("? ")
                except EOFError:
                    print(file=out)
                    break
            else:
                raw = sys.stdin.readline()
                if not raw:
                    break
                line = raw.rstrip("\n")
            if line.strip().lower() in ("quit", "exit", ":q"):
                break
            if not line.strip():
                continue
            try:
                ans = pipe.ask(line)
                print(format_answer(ans, show_passages=False), file=out)
            except NewsdeskError as e:
                print(f"error: {e}", file=out)
            print(file=out)
            out.flush()
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        for ref in args.articles:
            art = pipe.remove(ref)
            print(f"Removed: {art.title} ({art.id})", file=out)
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with progress_bars(not args.quiet) as progress, _pipeline(settings) as pipe:
        report = pipe.reindex(progress=progress)
    print(
        f"Re-indexed {report.updated} articles ({report.chunks_embedded} passages, "
        f"{report.seconds:.1f}s)",
        file=out,
    )
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        s = pipe.stats()
    if args.json:
        print(json.dumps(s.to_json()), file=out)
        return 0
    print(
        f"articles     {s.articles}\npassages     {s.chunks}\nmodel        {s.model} "
        f"(dimension {s.dimension})\nindex type   {s.index_type}\n"
        f"on disk      {_human(s.bytes_on_disk)}\ndata dir     {s.data_dir}\n"
        f"last indexed {s.last_indexed or 'never'}",
        file=out,
    )
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
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
        print(f"index OK: {stats.articles} articles, {stats.chunks} passages", file=out)
    else:
        for problem in problems:
            print(f"problem: {problem}", file=out)
    return 1 if problems else 0


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def cmd_articles(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        rows = pipe.list_articles()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], ensure_ascii=False), file=out)
        return 0
    if not rows:
        print("No articles yet: run `newsdesk index PATH_OR_URL`.", file=out)
    for r in rows:
        date = f" {r.published[:10]}" if r.published else ""
        print(f"{r.id}  {r.title}{date}  ({r.chunk_count} passages)", file=out)
    return 0


def cmd_article(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        a = pipe.get_article(args.ref)
    opening = a.text.strip().split("\n\n", 1)[0]
    if args.json:
        data = {
            "id": a.id,
            "title": a.title,
            "source": a.source,
            "url": a.url,
            "published": a.published,
            "passages": a.chunk_count,
            "opening": opening,
        }
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    print(f"{a.title}\n  id        {a.id}\n  source    {a.url or a.source}", file=out)
    print(f"  date      {a.published or 'unknown'}\n  passages  {a.chunk_count}\n", file=out)
    print(_wrap(opening, "  "), file=out)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from .evaluate import markdown_table, run_eval

    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else None
    if not args.corpus.is_dir():
        raise SourceError(str(args.corpus), "no such folder")
    modes = ["bm25", "dense", "hybrid"] if args.mode == "all" else [args.mode]
    results = []
    with progress_bars(not args.quiet) as progress, contextlib.ExitStack() as stack:
        if len(modes) > 1 and data_dir is None:  # index once, ask three times
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nd-eval-")))
        for mode in modes:
            results.append(
                run_eval(
                    settings,
                    args.corpus,
                    args.qa,
                    k=args.k,
                    mode=mode,
                    leave_out=args.leave_out,
                    data_dir=data_dir,
                    limit=args.limit,
                    progress=progress,
                    keep_details=bool(args.details),
                )
            )
    if len(results) > 1:
        if args.json:
            print(json.dumps([r.to_json() for r in results]), file=out)
        else:
            print(markdown_table(results), file=out)
        return 0
    res = results[0]
    if args.details:
        with args.details.open("w", encoding="utf-8") as f:
            for d in res.details:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(res.to_json()), file=out)
    else:
        print(res.table(), file=out)
    return 0


def _sizes(v: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in v.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 10000,100000, got {v!r}") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def cmd_bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.backend in ("faiss", "milvus"):
        return cmd_bench_store(args, settings, out)
    from .bench import BenchOptions, markdown_report, run_bench

    opts = BenchOptions(
        sizes=args.sizes,
        full=args.full,
        corpus=args.corpus,
        backend=args.backend,
        questions=max(1, args.questions),
        bot=not args.no_bot,
    )
    with progress_bars(not args.quiet) as progress:
        results = run_bench(settings, opts, progress)
    text = json.dumps(results, indent=2)
    args.out.write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results), file=out)
    else:
        print(markdown_report(results), file=out)
        print(f"\nResults saved to {args.out}", file=out)
    return 0


def cmd_bench_store(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """``bench --backend faiss|milvus``: the vector-store benchmark (index/bench_store.py)."""
    from .bench_store import markdown_store_report, run_store_bench

    sizes = args.sizes if args.sizes != [10_000, 100_000] else [100_000]
    with progress_bars(not args.quiet) as progress:
        results = run_store_bench(
            settings, sizes, questions=max(1, args.questions), progress=progress
        )
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results), file=out)
    else:
        print(markdown_store_report(results), file=out)
        print(f"\nResults saved to {args.out}", file=out)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from .migrate import migrate

    with progress_bars(not (args.quiet or args.json)) as progress:
        report = migrate(settings, args.to, args.uri, progress=progress)
    if args.json:
        print(json.dumps(report.to_json()), file=out)
        return 0
    from .migrate import target_settings

    uri = target_settings(settings, args.to, args.uri).store.uri
    print(
        f"Copied {report.articles} articles and {report.passages} passages to {report.target} "
        f"in {report.seconds:.1f}s (vectors copied, nothing re-embedded).\n"
        f'To use it, set in the config:\n  [store]\n  backend = "milvus"\n'
        + (f"  uri = {json.dumps(uri)}\n" if uri else ""),
        file=out,
        end="",
    )
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.__main__ import run_bot

    return run_bot(settings)


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, TextIO], int]] = {
    "index": cmd_index,
    "ask": cmd_ask,
    "search": cmd_search,
    "chat": cmd_chat,
    "remove": cmd_remove,
    "reindex": cmd_reindex,
    "stats": cmd_stats,
    "check": cmd_check,
    "articles": cmd_articles,
    "article": cmd_article,
    "eval": cmd_eval,
    "bench": cmd_bench,
    "migrate": cmd_migrate,
    "run": cmd_run,
}


def setup_logging(verbose: int, quiet: bool, settings_level: str = "WARNING") -> None:
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else settings_level
    if quiet and not verbose:
        level = logging.ERROR
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    for noisy in ("httpx", "httpcore", "sentence_transformers", "transformers", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _crash_log(exc: BaseException) -> str:
    path = Path(tempfile.gettempdir()) / f"newsdesk-crash-{os.getpid()}.log"
    try:
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return "(could not write a crash log)"
    return str(path)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(out)
        return 2
    setup_logging(args.verbose, args.quiet)
    try:
        settings = load_settings(args.config, args.data_dir)
        setup_logging(args.verbose, args.quiet, settings.log_level.upper())
        return COMMANDS[args.command](args, settings, out)
    except NewsdeskError as e:
        print(f"newsdesk: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("newsdesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except Exception as e:
        where = _crash_log(e)
        log.debug("unexpected error", exc_info=True)
        print(
            f"newsdesk: unexpected error: {type(e).__name__}: {str(e)[:200]} "
            f"(details in {where}; please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
