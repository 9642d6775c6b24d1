"""`newsdesk` command line: index articles, ask questions, manage the index.

Errors are translated here, once: a NewsdeskError prints one line and exits 1; anything else is
a bug, whose traceback goes to the log file, never to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import sys
import tempfile
import textwrap
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from index import __version__
from index.config import Settings, load_settings
from index.errors import ConfigError, NewsdeskError, SourceError
from index.models import Answer, Hit

if TYPE_CHECKING:
    from index.written.generate import GeneratedAnswer

log = logging.getLogger("newsdesk")

EPILOG = """\
examples:
  newsdesk index ~/articles https://example.com/story.html   index a folder and a web page
  newsdesk index https://example.com/feed.xml                 every entry of an RSS/Atom feed
  newsdesk ask "What did Ma say about Apple Pay?"             the answer, quoted and cited
  newsdesk ask --json "Who founded Alibaba?"                  the same as JSON
  newsdesk ask --generate "Who founded Alibaba?"              a written answer ([llm] in config)
  printf 'q1\\nq2\\n' | newsdesk ask --json                      batch: one JSON object per line
  newsdesk chat                                               ask questions interactively
  newsdesk stats                                              what is indexed
  newsdesk migrate --to milvus --uri http://host:19530        move the index to Milvus
  newsdesk sync                                               poll every subscribed feed/folder

data dir: --data-dir, else $NEWSDESK_DATA_DIR, else data_dir in the config file, else
~/.local/share/newsdesk. config: --config, else $NEWSDESK_CONFIG, else ./config.toml.
"""


# the question-file format of `newsdesk eval`, shown in its --help and in README
EVAL_QA_EXAMPLE = (
    '{"question": "When did the 1973 oil crisis begin?", "answers": ["October 1973"], '
    '"article": "1973-oil-crisis"}',
    '{"question": "Who interviewed Ma?", "answers": ["Dennis Berman"], '
    '"article": "alibaba-jack-ma-silicon-valley"}',
    '{"question": "What kind of engines are steam engines?", '
    '"answers": ["external combustion engines"], "article": "steam-engine"}',
)


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
        "are re-embedded. Supported: .txt, .md (front matter title/url/date; indexed as plain\n"
        "text), .html, .pdf and .docx files, folders (recursively), http(s) pages, and RSS/Atom\n"
        "feeds (each entry is fetched). Text files need not be UTF-8: another encoding is\n"
        "detected (named in the report).\n"
        "The same text under another path or URL is one article (reported as a duplicate);\n"
        "URLs are compared without #fragment and utm_* parameters. --prune also removes the\n"
        "articles whose files were deleted from the given folders.\n\n"
        "Private and loopback addresses (a server on this machine or the intranet) are refused\n"
        "unless allowed: --allow-host HOST[:PORT] for this run, $NEWSDESK_ALLOW_HOSTS (comma-\n"
        "separated) or fetch.allow_hosts in the config. Without :PORT only ports 80 and 443 are\n"
        "allowed; HOST:* allows every port.",
        "examples:\n  newsdesk index samples/\n  newsdesk index notes.md https://example.com/a.html\n"
        "  newsdesk index --prune ~/articles          also drop articles whose files are gone\n"
        "  newsdesk index --allow-host 127.0.0.1:8000 http://127.0.0.1:8000/feed.xml\n"
        "  NEWSDESK_ALLOW_HOSTS=intranet.example.org newsdesk index https://intranet.example.org/",
    )
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    p.add_argument(
        "--allow-host",
        action="append",
        type=_allow_host,
        default=[],
        metavar="HOST[:PORT]",
        help="also fetch from this private or loopback host (port 80/443, or :PORT, or :*); "
        "repeatable",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove the articles of files under the given folders that no longer exist",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = cmd(
        "ask",
        "answer a question (or one per stdin line) with a quoted sentence",
        "Answer with the sentence that best answers the question, its article, and the top\n"
        "passages. With no QUESTION, reads one question per line from stdin (batch mode).\n\n"
        "--generate also asks the LLM configured in [llm] (llama.cpp, Ollama, any OpenAI-\n"
        "compatible endpoint) for a written answer that cites the passages as [n]. Every\n"
        "citation must name a passage it was given and every quote must appear verbatim in the\n"
        "passage it cites: what fails is removed, and when too little is left -- or the\n"
        "endpoint is down, slow (llm.timeout) or answers nonsense -- the extracted quote is the\n"
        "answer, with a note in the log. The extracted quote is always shown as evidence.",
        'examples:\n  newsdesk ask "What did Ma say about Apple Pay?"\n'
        "  newsdesk ask --json --k 3 < questions.txt\n"
        '  newsdesk ask --generate "What did Ma say about Apple Pay?"\n'
        '  newsdesk ask --generate --json "Who interviewed Ma?"   (see "generated")',
    )
    p.add_argument("question", nargs="?", help="the question (omit to read stdin)")
    p.add_argument("--k", type=_positive, default=None, help="passages to return (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], help="retrieval mode")
    p.add_argument("--json", action="store_true", help="JSON output (one object per line in batch)")
    p.add_argument(
        "--generate",
        action="store_true",
        help="also a written answer from the [llm] endpoint, its quotes and citations verified",
    )

    p = cmd(
        "search",
        "list the passages that best match a query",
        "List the top passages, each with its article and score (the start of each passage;\n"
        "--full prints them whole).",
        'examples:\n  newsdesk search "Apple Pay"\n  newsdesk search --full --k 2 "Apple Pay"',
    )
    p.add_argument("query")
    p.add_argument("--k", type=_positive, default=None, help="passages to return (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], help="retrieval mode")
    p.add_argument("--full", action="store_true", help="print whole passages, not their start")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "chat",
        "ask questions in a terminal loop (quit with 'quit' or Ctrl-D)",
        "Read questions line by line and answer each; works with a pipe too.",
    )
    p.add_argument(
        "--generate", action="store_true", help="written answers from the [llm] endpoint"
    )

    p = cmd(
        "remove",
        "remove articles by id, title, path or URL",
        "Remove articles from the index. Each ARTICLE is an id (or its first 4+ characters, as\n"
        "`newsdesk articles` shows them), an exact title, a file path or a URL. All or nothing:\n"
        "when one name matches no article, or several, nothing is removed.",
        "examples:\n  newsdesk remove 66c91ff9\n"
        '  newsdesk remove samples/steam-engine.txt "Prime number"',
    )
    p.add_argument("articles", nargs="+", metavar="ARTICLE")
    p.add_argument("--json", action="store_true", help="print the removed articles as JSON")

    p = cmd(
        "reindex",
        "rebuild every passage and vector from the stored article text",
        "Re-chunk and re-embed all stored articles with the current settings (model, chunking).\n"
        "Needs no network: article text is kept in the database.",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")

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

    p = cmd(
        "article",
        "show one article: title, source, date, passages, opening",
        "Show one article: title, id, source, date, number of passages and its opening\n"
        "paragraph. --text prints the whole text as indexed (what quotes are taken from).",
        "examples:\n  newsdesk article 66c91ff9ca06\n  newsdesk article --text 66c91ff9ca06 | less",
    )
    p.add_argument(
        "ref", metavar="ARTICLE", help="id (or its first 4+ characters), title, path or URL"
    )
    p.add_argument("--text", action="store_true", help="print the whole extracted text")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "eval",
        "measure retrieval and answer quality on a question set",
        "Index a corpus folder into a temporary data dir (or --data-dir), ask every question of\n"
        "a SQuAD-style JSONL file and report hit@1/3/5/10 (a gold answer in a returned passage),\n"
        "MRR@10, answer accuracy (a gold answer inside the quote), abstention, latency and\n"
        "indexing time. --leave-out also asks each question with its gold article left out\n"
        "(unanswerable) and reports the share abstained.\n\n"
        'The question file (--qa) has one JSON object per line: "question", "answers" (the\n'
        'accepted answer strings, compared ignoring case) and "article" (the file name, without\n'
        "its extension, of the article in --corpus that answers it). For the bundled samples:\n\n"
        + "".join(f"  {line}\n" for line in EVAL_QA_EXAMPLE),
        "example (the three lines above saved as questions.jsonl):\n"
        "  newsdesk eval --corpus samples --qa questions.jsonl --mode hybrid --leave-out",
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
    p.add_argument(
        "--reranker",
        metavar="NAME",
        help='answer scorer: "bundled", "none" (the older score) or a model folder '
        "(default: answer.reranker); --mode all adds a row without the reranker",
    )
    p.add_argument(
        "--alone",
        action="store_true",
        help="also index each article alone: share of questions with the same verdict",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="with --leave-out: print the highest abstention threshold at which 96%% of the "
        "answerable questions are still answered (and write it to the --reranker folder's "
        "reranker.json)",
    )
    p.add_argument(
        "--typos",
        type=int,
        default=0,
        metavar="N",
        help="also ask N questions with one typo each: accuracy drop on them",
    )
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument(
        "--details", type=Path, metavar="FILE", help="write per-question results (JSONL)"
    )

    p = cmd(
        "train-reranker",
        "train the answer-sentence reranker and write it as int8 ONNX",
        "Train the cross-encoder that picks the quoted sentence (and decides when to abstain)\n"
        "from a SQuAD-format folder (articles/*.txt + qa.jsonl; SQuAD v1.1 train is the data\n"
        "the shipped model was trained on), starting from the bundled all-MiniLM-L6-v2\n"
        "weights cut to --layers layers. Writes model.onnx (int8), tokenizer.json and\n"
        "reranker.json to --out; point answer.reranker at that folder to use it. The shipped\n"
        "model took about 60 minutes on 2 CPU cores (see index/data/reranker/MODEL_CARD.md);\n"
        "then calibrate its threshold with `newsdesk eval --leave-out --calibrate`.",
        "examples:\n  newsdesk train-reranker --data squad-train --out my-reranker\n"
        "  newsdesk train-reranker --data squad-train --out tiny --questions 200 --layers 2",
    )
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="SQuAD-format folder")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="model folder to write")
    p.add_argument(
        "--questions", type=_size, default=16000, help="training questions (default 16000)"
    )
    p.add_argument("--layers", type=_size, default=6, help="transformer layers (default 6)")
    p.add_argument("--max-len", type=_size, default=64, help="tokens per pair (default 64)")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=0.0,
        help="fit the training schedule into this many minutes (default: one epoch)",
    )
    p.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    p.add_argument(
        "--no-combiner",
        action="store_true",
        help="skip fitting the combiner (cross-encoder logit + sentence and passage features) "
        "on the held-out articles",
    )
    p.add_argument(
        "--combiner-only",
        action="store_true",
        help="only (re)fit the combiner of the model already in --out",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")

    p = cmd(
        "bench",
        "measure indexing, question, search, re-index and start-up speed",
        "Index a corpus of real articles into a temporary data dir and measure, in one run:\n"
        "indexing throughput against bare SentenceTransformer.encode; question latency\n"
        "(p50/p95/p99) against a bare single-question encode, on the corpus and grown with\n"
        "synthetic passages to each --sizes; vector search alone on synthetic clustered\n"
        "vectors (recall@10, build time, memory, disk); re-indexing unchanged and 1%-changed\n"
        "corpora; start-up of the CLI and of the Discord bot (on the loopback fake Discord).\n"
        "Corpus: --corpus DIR (questions from a qa.jsonl beside it, as for `newsdesk eval`,\n"
        "else from its sentences), else the bundled samples/ (a development checkout uses the\n"
        "project's evaluation set when it is there).",
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
        help="Milvus: http://host:19530, or a local path ending in .db for Milvus Lite; a "
        "relative path is inside the data dir, as store.uri in the config (default: store.uri, "
        "else <data dir>/milvus.db)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = cmd(
        "sync",
        "poll every subscribed feed and folder once and update the index",
        "Run every subscription once (the [[feeds]] and [[folders]] of the config file and those\n"
        "added with `newsdesk subscribe` or /subscribe): new and edited feed entries and files\n"
        "are indexed, files deleted from a watched folder are removed from the index. Feeds are\n"
        "fetched conditionally (ETag / Last-Modified); unchanged articles are not re-embedded.\n"
        "An error in one subscription is reported and the others go on; exit 1 if any failed.\n"
        "The bot does the same in the background, each subscription at its own interval.",
        "examples:\n  newsdesk sync\n  newsdesk sync --due        only those whose interval "
        "has passed (for cron)\n  newsdesk sync --json",
    )
    p.add_argument(
        "--due", action="store_true", help="only subscriptions whose interval has passed"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per subscription")

    p = cmd(
        "subscriptions",
        "list subscribed feeds and folders with their status",
        "List every subscription: where it was declared, its interval and announcement\n"
        "channel, its articles in the index, the last success, the last error and when it is\n"
        "next due.",
    )
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "subscribe",
        "keep a feed or a folder in sync with the index",
        "Subscribe to an RSS/Atom feed (http(s) address) or watch a folder, and sync it now.\n"
        "The bot and `newsdesk sync` then keep it current. Subscriptions can also be declared\n"
        "in the config file ([[feeds]], [[folders]]; see config.example.toml).",
        "examples:\n  newsdesk subscribe https://example.com/feed.xml --interval 15\n"
        "  newsdesk subscribe ~/articles --interval 5\n"
        "  newsdesk subscribe https://example.com/feed.xml --channel 123456789012345678",
    )
    p.add_argument("target", metavar="URL_OR_FOLDER")
    p.add_argument(
        "--interval",
        type=_minutes,
        default=None,
        metavar="MIN",
        help="minutes between polls (default 30 for feeds, 5 for folders)",
    )
    p.add_argument(
        "--channel",
        type=int,
        default=None,
        metavar="ID",
        help="Discord channel id where the bot announces new articles",
    )
    p.add_argument("--json", action="store_true", help="print the subscription as JSON")

    p = cmd(
        "unsubscribe",
        "stop syncing a feed or folder (its articles stay in the index)",
        "Remove a subscription added with `newsdesk subscribe` or /subscribe. Its articles stay\n"
        "in the index (`newsdesk remove` deletes articles). Subscriptions declared in the\n"
        "config file are removed by deleting them there.",
    )
    p.add_argument("target", metavar="URL_OR_FOLDER", help="address, folder or title")
    p.add_argument("--json", action="store_true", help="print the subscription as JSON")

    p = cmd(
        "run",
        "start the Discord bot (needs DISCORD_TOKEN)",
        "Start the Discord bot. The token is read from $DISCORD_TOKEN only.",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="print what the bot would do and exit, without connecting: token present, "
        "intents (and which are privileged), the invite URL with the permissions it needs, "
        "where commands are synced, where it answers",
    )
    return parser


def _minutes(v: str) -> float:
    from index.config import MAX_INTERVAL

    try:
        n = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {v!r}") from None
    if not 1 <= n <= MAX_INTERVAL:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_INTERVAL} minutes")
    return n


def _whole(v: str, hi: int) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
    if not 1 <= n <= hi:
        raise argparse.ArgumentTypeError(f"must be between 1 and {hi:,}")
    return n


def _allow_host(v: str) -> str:
    """``--allow-host``: one ``fetch.allow_hosts`` entry."""
    from index.config import ALLOW_ENTRY_FORM, allow_entry_ok

    if not allow_entry_ok(v):
        raise argparse.ArgumentTypeError(f"{ALLOW_ENTRY_FORM.replace('each entry', 'it')}")
    return v.strip()


def _positive(v: str) -> int:
    """A passage count (``--k``): 1 to 50."""
    return _whole(v, 50)


def _size(v: str) -> int:
    """A training size (questions, layers, tokens): any positive whole number."""
    return _whole(v, 10_000_000)


# -- output helpers --------------------------------------------------------------------------

# Terminal escape sequences: CSI (ESC [ ... final, or the 8-bit CSI), OSC (ESC ] ... BEL/ST, e.g.
# OSC 52 writes the clipboard), DCS/SOS/PM/APC strings, and two-character ESC sequences.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# what is left: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional
# overrides that make a terminal show text in another order than it is
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline
    kept): article titles, text and URLs come from anyone who publishes a page or a feed."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def _json_escape_controls(text: str) -> str:
    """JSON output: what ``json.dumps(ensure_ascii=False)`` leaves raw (DEL, C1 controls,
    bidirectional overrides; C0 is escaped already) as ``\\uXXXX`` -- the same JSON value,
    nothing a terminal acts on. They only occur inside strings, where the escape is valid."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeOutput(io.TextIOBase):
    """The stream every command prints to: control characters from article data never reach
    the terminal (stripped from text, escaped in JSON)."""

    def __init__(self, out: TextIO, json_output: bool = False) -> None:
        self._out = out
        self._clean = _json_escape_controls if json_output else terminal_safe

    def write(self, s: str) -> int:
        self._out.write(self._clean(s))
        return len(s)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return self._out.isatty()


def _err(message: str) -> None:
    """One line to stderr, without control characters (it may quote a title or a URL)."""
    print(terminal_safe(message), file=sys.stderr)


class _SafeFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


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
    return str(h.url or _shown_path(h.source))


def _shown_path(source: str) -> str:
    """A file's path as the person would type it: relative to the working directory when the
    file is inside it (``samples/steam-engine.txt``), else as stored (absolute). ``--json``
    keeps the stored source."""
    path = Path(source)
    if not path.is_absolute():
        return source
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):  # outside the working directory, or no working directory
        return source


def _dated(published: str | None) -> str:
    """``", published 2024-03-05"`` (the article's date), or nothing for undated articles."""
    return f", published {published[:10]}" if published else ""


def format_answer(ans: Answer, show_passages: bool = True, full: bool = False) -> str:
    lines = []
    if ans.smalltalk:
        from index.search.smalltalk import REPLIES

        return _wrap(REPLIES.get(ans.smalltalk, REPLIES["noise"]), "")
    if ans.quote is None:
        lines.append("I couldn't find that in the indexed articles.")
        if ans.suggestions:
            lines.append("Closest articles: " + "; ".join(ans.suggestions))
    else:
        q = ans.quote
        lines.append(_wrap(f"“{q.text}”", "  > ").replace("  > ", "  > ", 1))
        lines.append(f"  — {q.title} ({_where(q)}){_dated(q.published)}")
        for more in ans.also:  # the other parts of a multi-part question
            lines.append(_wrap(f"“{more.text}”", "  > "))
            lines.append(f"  — {more.title} ({_where(more)}){_dated(more.published)}")
    if show_passages and ans.passages:
        lines.append("")
        lines.append("Top passages:")
        for i, h in enumerate(ans.passages, 1):
            # no score: the fused rank score means nothing to a reader (the first passage's is
            # always 1.000, even when the answer is declined); --json has it
            lines.append(f"{i:>2}. {h.title}{_dated(h.published)}")
            if full:  # the whole passage, its paragraphs kept
                lines += [_wrap(para, "    ") for para in h.text.split("\n\n") if para.strip()]
                continue
            snippet = " ".join(h.text.split())
            if len(snippet) > 160:
                snippet = snippet[:157].rsplit(" ", 1)[0] + "…"
            lines.append(_wrap(snippet, "    "))
    return "\n".join(lines)


def format_generated(gen: GeneratedAnswer, show_passages: bool = True) -> str:
    """A written answer, its sources and the extracted quote as evidence; a fallback prints
    exactly like ``ask`` without ``--generate``."""
    if gen.fell_back or not gen.text:
        return format_answer(gen.answer, show_passages)
    lines = [_wrap(line) if line.strip() else "" for line in gen.text.split("\n")]
    if gen.citations:
        lines.append("")
        for c in gen.citations:
            lines.append(f"  [{c.n}] {c.hit.title} ({_where(c.hit)})")
    q = gen.answer.quote
    if q is not None:
        lines += ["", "  Evidence:", _wrap(f"“{q.text}”", "  > "), f"  — {q.title} ({_where(q)})"]
    quotes = sum(r.kind == "quote" for r in gen.removed)
    citations = sum(r.kind == "citation" for r in gen.removed)
    removed = []
    if quotes:
        removed.append(f"{quotes} unverifiable quote{'s' if quotes > 1 else ''}")
    if citations:
        removed.append(
            "1 citation of a missing passage"
            if citations == 1
            else f"{citations} citations of missing passages"
        )
    if removed:
        lines += ["", f"  (removed: {' and '.join(removed)}; see --json)"]
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
        shown = any(not bar.disable for bar in bars.values())
        for bar in bars.values():
            bar.close()
        # closing a bar below the first (leave=False) leaves the cursor at the end of a blanked
        # line: what is printed next would start in its last column and wrap ("I" / "ndexed")
        if shown:
            sys.stderr.write("\r")
            sys.stderr.flush()


@contextlib.contextmanager
def writing_status(enabled: bool) -> Iterator[Callable[[GeneratedAnswer], None] | None]:
    """While a written answer streams in: how much of it is verified so far, and for how long
    (on a terminal's stderr only; None when disabled or not a terminal: no streaming then)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(
        total=None,
        desc="writing an answer",
        bar_format="{desc}… {n} characters verified [{elapsed}]",
        leave=False,
        file=sys.stderr,
    )

    def update(gen: GeneratedAnswer) -> None:
        bar.n = len(gen.text or "")
        bar.refresh()

    stop = threading.Event()

    def tick() -> None:  # the elapsed time keeps moving while the model thinks
        while not stop.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=tick, name="newsdesk-writing", daemon=True)
    ticker.start()
    try:
        yield update
    finally:
        stop.set()
        ticker.join()
        bar.close()


# -- commands --------------------------------------------------------------------------------


def _pipeline(settings: Settings) -> Any:
    from index.pipeline import Pipeline

    return Pipeline(settings)


def cmd_index(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.ingest.sources import collect

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
            _err(f"newsdesk: skipped {w}")
        for n in collected.notes:
            _err(f"newsdesk: note: {n}")
        if collected.errors:
            for e in collected.errors:
                _err(f"newsdesk: error: {e}")
            print("newsdesk: nothing was indexed", file=sys.stderr)
            return 1
        if not collected.documents:
            print("newsdesk: error: no articles found in the given inputs", file=sys.stderr)
            return 1
        with _pipeline(settings) as pipe:
            pruned = pipe.prune(folders) if args.prune else []
            report = pipe.add_documents(collected.documents, progress=progress)
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
            _err(f"newsdesk: duplicate, not indexed again: {dup}")
        for art in pruned:
            _err(f"newsdesk: removed (file gone): {art.title} ({art.source})")
        for source, encoding in report.encodings.items():
            _err(f"newsdesk: read as {encoding} (not UTF-8): {source}")
    if args.json:
        print(json.dumps(report.to_json()), file=out)
    else:
        print(f"Indexed: {report.summary()}", file=out)
    return 0


def _question_error(args: argparse.Namespace, e: NewsdeskError, out: TextIO) -> int:
    """A question that cannot be answered (empty, too long, nothing indexed...): with --json
    the same ``{"question", "error"}`` object as a bad line in batch mode, on stdout (exit 1);
    else one line on stderr."""
    if not args.json:
        raise e
    question = getattr(args, "question", None)
    if question is None:
        question = args.query
    print(json.dumps({"question": question, "error": str(e)}, ensure_ascii=False), file=out)
    return e.exit_code


def cmd_ask(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.generate:
        return _ask_generated(args, settings, out)
    with _pipeline(settings) as pipe:
        if args.question is not None:
            try:
                ans = pipe.ask(args.question, k=args.k, mode=args.mode)
            except NewsdeskError as e:
                return _question_error(args, e, out)
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


def _ask_generated(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """``ask --generate``: the same input and output contract, with written answers."""
    from index.written.generate import LLM_OFF

    if not settings.llm.enabled:
        raise ConfigError(LLM_OFF)

    def show(gen: GeneratedAnswer) -> str:
        if args.json:
            return json.dumps(gen.to_json(), ensure_ascii=False)
        return format_generated(gen)

    with _pipeline(settings) as pipe:
        if args.question is not None:
            with writing_status(not (args.quiet or args.json)) as status:
                try:
                    gen = pipe.generate(args.question, k=args.k, mode=args.mode, on_update=status)
                except NewsdeskError as e:
                    return _question_error(args, e, out)
            print(show(gen), file=out)
            return 0
        if sys.stdin.isatty():
            print("newsdesk: error: give a QUESTION, or pipe questions on stdin", file=sys.stderr)
            return 2
        lines = [line.rstrip("\r\n") for line in sys.stdin]
        failed = 0
        for q in lines:
            try:
                text = show(pipe.generate(q, k=args.k, mode=args.mode))
            except NewsdeskError as e:
                failed += 1
                if args.json:
                    text = json.dumps({"question": q, "error": str(e)}, ensure_ascii=False)
                else:
                    text = f"Q: {q}\nerror: {e}\n"
            else:
                text = text if args.json else f"Q: {q}\n{text}\n"
            print(text, file=out)
            out.flush()
        return 0 if failed < len(lines) or not lines else 1


def cmd_search(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        try:
            hits = pipe.search(args.query, k=args.k, mode=args.mode)
        except NewsdeskError as e:
            return _question_error(args, e, out)
    if args.json:  # the shape of `ask --json`, without an answer
        data = {"question": args.query, "passages": [h.to_json() for h in hits]}
        print(json.dumps(data, ensure_ascii=False), file=out)
    else:
        text = format_answer(Answer(args.query, None, hits), full=args.full)
        print(text.split("\n", 2)[-1], file=out)
    return 0


CHAT_COMMANDS = """\
  :sources N   show passage N of the last answer in full (:sources alone lists them)
  help         this text
  quit         leave (or Ctrl-D); arrow keys edit the line and recall earlier questions"""


def _history_file() -> Path:
    """Where chat keeps its question history: $XDG_STATE_HOME/newsdesk/chat_history."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "newsdesk" / "chat_history"


@contextlib.contextmanager
def _line_editing(enabled: bool) -> Iterator[Any]:
    """On a terminal: line editing and history (readline; Up recalls earlier questions, also
    from earlier sessions): yields the readline module, or None (not a terminal, or a platform
    without readline: plain input)."""
    readline: Any = None
    if enabled:
        try:
            import readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            readline = None
    path = _history_file()
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(path)
        readline.set_history_length(1000)
    try:
        yield readline
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(path)


def _show_source(passages: Sequence[Hit], arg: str) -> str:
    """``:sources N``: passage N of the last answer in full; ``:sources``: the list."""
    if not passages:
        return "No passages yet: ask a question first."
    if not arg:
        return "\n".join(
            f"{i:>2}. {h.title}{_dated(h.published)} ({_where(h)})"
            for i, h in enumerate(passages, 1)
        )
    if not arg.isdigit() or not 1 <= int(arg) <= len(passages):
        return f"Give a passage number from 1 to {len(passages)}, e.g. :sources 1"
    h = passages[int(arg) - 1]
    lines = [
        f"[{arg}] {h.title}{_dated(h.published)}",
        f"    {_where(h)}, characters {h.start}-{h.end}",
        "",
    ]
    lines += [_wrap(para, "    ") for para in h.text.split("\n\n") if para.strip()]
    return "\n".join(lines)


def cmd_chat(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    interactive = sys.stdin.isatty()
    if args.generate and not settings.llm.enabled:
        from index.written.generate import LLM_OFF

        raise ConfigError(LLM_OFF)
    last: list[Hit] = []  # the passages of the last answer, for :sources
    with _pipeline(settings) as pipe, _line_editing(interactive) as readline:
        stats = pipe.stats()
        if interactive:
            print(
                f"newsdesk chat — {_count(stats.articles, 'article')} indexed. "
                "Ask a question; 'help' for commands, 'quit' or Ctrl-D to leave.",
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
            command = line.strip().lower()
            if command in ("quit", "exit", ":q"):
                if readline is not None and readline.get_current_history_length():
                    # Up in the next session recalls the last question, not "quit"
                    readline.remove_history_item(readline.get_current_history_length() - 1)
                break
            if not command:
                continue
            if command in ("help", ":help", "?", ":h"):
                from index.search.smalltalk import HELP_TEXT

                print(_wrap(HELP_TEXT, "") + "\n" + CHAT_COMMANDS, file=out)
            elif command.split()[0] in (":sources", ":source", ":s"):
                print(_show_source(last, command.partition(" ")[2].strip()), file=out)
            else:
                try:  # the same card as `ask` (and `ask --generate`)
                    if args.generate:
                        with writing_status(interactive) as status:
                            gen = pipe.generate(line, on_update=status)
                        last = list(gen.answer.passages)
                        print(format_generated(gen), file=out)
                    else:
                        ans = pipe.ask(line)
                        last = list(ans.passages)
                        print(format_answer(ans), file=out)
                except NewsdeskError as e:
                    print(f"error: {e}", file=out)
            print(file=out)
            out.flush()
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        removed = pipe.remove_many(args.articles)
    if args.json:
        rows = [{"id": a.id, "title": a.title, "source": a.source} for a in removed]
        print(json.dumps({"removed": rows}, ensure_ascii=False), file=out)
        return 0
    for art in removed:
        print(f"Removed: {art.title} ({art.id})", file=out)
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with progress_bars(not (args.quiet or args.json)) as progress, _pipeline(settings) as pipe:
        report = pipe.reindex(progress=progress)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False), file=out)
        return 0
    print(
        f"Re-indexed {_count(report.updated, 'article')} "
        f"({_count(report.chunks_embedded, 'passage')}, {report.seconds:.1f}s)",
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
        print(
            f"index OK: {_count(stats.articles, 'article')}, {_count(stats.chunks, 'passage')}",
            file=out,
        )
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
        data = [{**r.__dict__, "passages": r.chunk_count} for r in rows]
        for d in data:
            del d["chunk_count"]  # "passages" in all JSON
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    if not rows:
        print("No articles yet: run `newsdesk index PATH_OR_URL`.", file=out)
    for r in rows:
        date = f" {r.published[:10]}" if r.published else ""
        print(f"{r.id}  {r.title}{date}  ({_count(r.chunk_count, 'passage')})", file=out)
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
        if args.text:
            data["text"] = a.text
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    if args.text:  # exactly the stored text: quotes' offsets point into it
        print(a.text, file=out)
        return 0
    print(f"{a.title}\n  id        {a.id}\n  source    {a.url or _shown_path(a.source)}", file=out)
    print(f"  date      {a.published or 'unknown'}\n  passages  {a.chunk_count}\n", file=out)
    print(_wrap(opening, "  "), file=out)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.tools.evaluate import markdown_table, run_eval

    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else None
    if not args.corpus.is_dir():
        raise SourceError(str(args.corpus), "no such folder")
    if args.reranker:
        answer = dataclasses.replace(settings.answer, reranker=args.reranker)
        settings = dataclasses.replace(settings, answer=answer)
    runs = [(args.mode, settings)]
    if args.mode == "all":
        runs = [(m, settings) for m in ("bm25", "dense", "hybrid")]
        if settings.answer.reranker.lower() != "none":
            old = dataclasses.replace(settings.answer, reranker="none")
            runs.append(("hybrid", dataclasses.replace(settings, answer=old)))
    results = []
    with progress_bars(not args.quiet) as progress, contextlib.ExitStack() as stack:
        if len(runs) > 1 and data_dir is None:  # index once, ask several times
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nd-eval-")))
        for mode, run_settings in runs:
            results.append(
                run_eval(
                    run_settings,
                    args.corpus,
                    args.qa,
                    k=args.k,
                    mode=mode,
                    leave_out=args.leave_out,
                    data_dir=data_dir,
                    limit=args.limit,
                    progress=progress,
                    keep_details=bool(args.details),
                    alone=args.alone,
                    typos=max(0, args.typos),
                )
            )
    if len(results) > 1:
        if args.json:
            print(json.dumps([r.to_json() for r in results]), file=out)
        else:
            print(markdown_table(results), file=out)
        return 0
    res = results[0]
    if args.calibrate:
        _calibrate(args, res, out)
    if args.details:
        with args.details.open("w", encoding="utf-8") as f:
            for d in res.details:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(res.to_json()), file=out)
    else:
        print(res.table(), file=out)
    return 0


def cmd_train_reranker(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.tools.train_reranker import TrainOptions, fit_combiner, train

    if not args.data.is_dir():
        raise SourceError(str(args.data), "no such folder")
    opts = TrainOptions(
        data=args.data,
        out=args.out,
        questions=args.questions,
        layers=args.layers,
        max_len=args.max_len,
        max_minutes=max(0.0, args.max_minutes),
        seed=args.seed,
    )
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if args.combiner_only:
        comb = fit_combiner(args.out, args.data, settings, args.seed, progress=say)
        print(json.dumps(comb) if args.json else f"combiner: {comb}", file=out)
        return 0
    figures = train(opts, progress=say)
    if not args.no_combiner:
        figures["combiner"] = fit_combiner(args.out, args.data, settings, args.seed, progress=say)
    if args.json:
        print(json.dumps(figures), file=out)
    else:
        print(
            f"Trained on {figures['questions']:,} questions ({figures['pairs']:,} pairs) in "
            f"{figures['train_minutes']} min; held-out top-1 {figures['heldout_top1']:.3f}; "
            f"wrote {args.out}",
            file=out,
        )
    return 0


def _calibrate(args: argparse.Namespace, res: Any, out: TextIO) -> None:
    from index.search.rerank import META_FILE
    from index.tools.evaluate import calibrate

    t, rows = calibrate(res)
    for thr, answered, abstained in rows:
        mark = "  <- chosen" if abs(thr - t) < 1e-9 else ""
        print(
            f"threshold {thr:.2f}: answered {answered:.3f}, abstained {abstained:.3f}{mark}",
            file=out,
        )
    folder = Path(args.reranker) if args.reranker else None
    if folder is not None and (folder / META_FILE).is_file():
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        meta["threshold"] = t
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        print(f"wrote threshold {t:.2f} to {folder / META_FILE}", file=out)


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
    from index.tools.bench import BenchOptions, markdown_report, run_bench

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
    return _bench_output(args, results, markdown_report, out)


def _bench_output(
    args: argparse.Namespace,
    results: dict[str, Any],
    report: Callable[[dict[str, Any]], str],
    out: TextIO,
) -> int:
    """Save the results as JSON (``--out``) and print them as JSON or as a report."""
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results), file=out)
    else:
        print(report(results), file=out)
        print(f"\nResults saved to {args.out}", file=out)
    return 0


def cmd_bench_store(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """``bench --backend faiss|milvus``: the vector-store benchmark (index/tools/bench_store.py)."""
    from index.tools.bench_store import markdown_store_report, run_store_bench

    sizes = args.sizes if args.sizes != [10_000, 100_000] else [100_000]
    with progress_bars(not args.quiet) as progress:
        results = run_store_bench(
            settings, sizes, questions=max(1, args.questions), progress=progress
        )
    return _bench_output(args, results, markdown_store_report, out)


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.tools.migrate import migrate

    with progress_bars(not (args.quiet or args.json)) as progress:
        report = migrate(settings, args.to, args.uri, progress=progress)
    if args.json:
        print(json.dumps(report.to_json()), file=out)
        return 0
    from index.tools.migrate import target_settings

    uri = target_settings(settings, args.to, args.uri).store.uri
    print(
        f"Copied {_count(report.articles, 'article')} and {_count(report.passages, 'passage')} "
        f"to {report.target} "
        f"in {report.seconds:.1f}s (vectors copied, nothing re-embedded).\n"
        f'To use it, set in the config:\n  [store]\n  backend = "milvus"\n'
        + (f"  uri = {json.dumps(uri)}\n" if uri else ""),
        file=out,
        end="",
    )
    return 0


def _engine(pipe: Any) -> Any:
    from index.feeds.engine import SyncEngine

    return SyncEngine(pipe)


def _ago(iso: str | None) -> str:
    """``"5 min ago"`` for an ISO timestamp; ``"never"`` for None."""
    import datetime as dt

    if not iso:
        return "never"
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    seconds = (dt.datetime.now(dt.UTC) - when).total_seconds()
    return _span(seconds) + " ago" if seconds >= 0 else "in " + _span(-seconds)


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _sync_line(res: Any) -> str:
    return f"{res.kind:<7}{res.target}: {res.summary()}"


def cmd_sync(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        engine = _engine(pipe)
        try:
            if not engine.statuses():
                print(
                    "No subscriptions: declare [[feeds]] or [[folders]] in the config file, "
                    "or run `newsdesk subscribe URL_OR_FOLDER`.",
                    file=out,
                )
                return 0
            results = engine.run_due() if args.due else engine.run_all()
        finally:
            engine.close()
    for res in results:
        if args.json:
            print(json.dumps(res.to_json(), ensure_ascii=False), file=out)
        else:
            print(_sync_line(res), file=out)
            if not args.quiet:
                for note in res.skipped[:5]:
                    _err(f"newsdesk: skipped {note}")
    return 1 if any(not r.ok for r in results) else 0


def cmd_subscriptions(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import datetime as dt

    with _pipeline(settings) as pipe:
        engine = _engine(pipe)
        try:
            statuses = engine.statuses()
        finally:
            engine.close()
    if args.json:
        print(json.dumps([s.to_json() for s in statuses], ensure_ascii=False), file=out)
        return 0
    if not statuses:
        print(
            "No subscriptions: declare [[feeds]] or [[folders]] in the config file, "
            "or run `newsdesk subscribe URL_OR_FOLDER`.",
            file=out,
        )
        return 0
    for s in statuses:
        sub = s.subscription
        extra = f" · announced in channel {sub.channel}" if sub.channel else ""
        where = "config file" if sub.origin == "config" else "subscribed"
        print(f"{sub.kind:<7}{sub.target}", file=out)
        print(f"       {s.name} · every {sub.interval:g} min{extra} · {where}", file=out)
        due = dt.datetime.fromtimestamp(s.next_due, dt.UTC).isoformat() if s.next_due else None
        print(
            f"       {_count(s.articles, 'article')} · last success {_ago(s.last_success)} · "
            f"next {'now' if not due else _ago(due)}",
            file=out,
        )
        if s.failures:
            print(
                f"       failing ({s.failures} in a row) since {_ago(s.last_error_at)}: "
                f"{s.last_error}",
                file=out,
            )
        elif s.last_error:
            print(f"       last error {_ago(s.last_error_at)}: {s.last_error}", file=out)
        if s.last_warning:
            print(f"       skipped: {s.last_warning}", file=out)
    return 0


def cmd_subscribe(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    target = args.target.strip()
    kind = "feed" if "://" in target else "folder"
    if kind == "feed" and not target.lower().startswith(("http://", "https://")):
        raise SourceError(target, "not an http(s) URL (give a feed address or a folder)")
    if args.channel is not None and not 1 <= args.channel < 2**63:
        raise SourceError(str(args.channel), "not a Discord channel id")
    with _pipeline(settings) as pipe:
        engine = _engine(pipe)
        try:
            status, res = engine.subscribe(
                kind, target, interval=args.interval, channel=args.channel
            )
        finally:
            engine.close()
    sub = status.subscription
    if args.json:
        data = {"subscribed": status.to_json(), "sync": res.to_json()}
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    print(
        f"Subscribed to {status.name} ({sub.target}), every {sub.interval:g} min: {res.summary()}",
        file=out,
    )
    return 0


def cmd_unsubscribe(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _pipeline(settings) as pipe:
        engine = _engine(pipe)
        try:
            status = engine.unsubscribe(args.target)
        finally:
            engine.close()
    if args.json:
        print(json.dumps({"unsubscribed": status.to_json()}, ensure_ascii=False), file=out)
        return 0
    print(
        f"Unsubscribed from {status.name} ({status.subscription.target}); its articles stay "
        f"in the index ({_count(status.articles, 'article')})",
        file=out,
    )
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.check:
        from bot.check import run_check

        return run_check(settings, out)
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
    "train-reranker": cmd_train_reranker,
    "bench": cmd_bench,
    "migrate": cmd_migrate,
    "sync": cmd_sync,
    "subscriptions": cmd_subscriptions,
    "subscribe": cmd_subscribe,
    "unsubscribe": cmd_unsubscribe,
    "run": cmd_run,
}


EXTRACTOR_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "readability", "pypdf")


def setup_logging(verbose: int, quiet: bool, settings_level: str = "WARNING") -> None:
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else settings_level
    if quiet and not verbose:
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("httpx", "httpcore", "sentence_transformers", "transformers", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # the HTML extractors log their own ERRORs and WARNINGs about pages newsdesk then handles
    # itself (skipped with a one-line note, or read another way): shown only with -v
    for extractor in EXTRACTOR_LOGGERS:
        logging.getLogger(extractor).setLevel(level if verbose else logging.CRITICAL + 1)


def _crash_log(exc: BaseException) -> str:
    """Write the traceback to a new file only this user can read, and return its path.

    ``mkstemp``: an unpredictable name, created with O_CREAT | O_EXCL (an existing file or a
    symlink planted at that name by another local user is never followed or overwritten) and
    mode 0600 (a traceback can hold paths, URLs and article text).
    """
    text = "".join(traceback.format_exception(exc))
    try:
        fd, name = tempfile.mkstemp(prefix="newsdesk-crash-", suffix=".log")
    except OSError:
        return "(could not write a crash log)"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        return "(could not write a crash log)"
    return name


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
        safe = SafeOutput(out, json_output=bool(getattr(args, "json", False)))
        return COMMANDS[args.command](args, settings, cast(TextIO, safe))
    except NewsdeskError as e:
        _err(f"newsdesk: error: {e}")
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
        _err(
            f"newsdesk: unexpected error: {type(e).__name__}: {str(e)[:200]} "
            f"(details in {where}; please report it)"
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
