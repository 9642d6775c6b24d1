"""The `newsdesk` argument parser: commands, options, help texts and argument types.

Every help text a person reads lives here, beside the option it explains; the commands
themselves are in ``commands*.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from index import __version__
from index.cli.parser_community import add_community_commands
from index.cli.parser_scopes import add_scope_options, add_scopes_command, add_tag_option

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
  newsdesk brief --since 24h                                  the newest articles, summarised
  newsdesk migrate --to milvus --uri http://host:19530        move the index to Milvus
  newsdesk sync                                               poll every subscribed feed/folder
  newsdesk gaps --since 7d                                    questions the articles do not answer

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
    add_tag_option(p, "give each article this tag (and those of its front matter)")
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
        '  newsdesk ask --generate --json "Who interviewed Ma?"   (see "generated")\n'
        '  newsdesk ask --after "What did Ma say about Apple Pay?" "when was that?"',
    )
    p.add_argument("question", nargs="?", help="the question (omit to read stdin)")
    p.add_argument(
        "--after",
        action="append",
        metavar="EARLIER",
        help="an earlier question QUESTION follows up (repeat, oldest first): a follow-up such "
        'as "when was that?" or "what about Tim Cook?" is searched with its key words',
    )
    p.add_argument("--k", type=_positive, default=None, help="passages to return (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], help="retrieval mode")
    p.add_argument("--json", action="store_true", help="JSON output (one object per line in batch)")
    p.add_argument(
        "--generate",
        action="store_true",
        help="also a written answer from the [llm] endpoint, its quotes and citations verified",
    )
    add_scope_options(p)

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
    add_scope_options(p)

    add_scopes_command(cmd)

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
        "paragraph. --text prints the whole text as indexed (what quotes are taken from).\n"
        "--summary shows its N most central sentences instead of the opening (default 3):\n"
        "verbatim, in article order, a sentence that repeats one already shown passed over.",
        "examples:\n  newsdesk article 66c91ff9ca06\n"
        "  newsdesk article --text 66c91ff9ca06 | less\n"
        "  newsdesk article 66c91ff9ca06 --summary       a three-sentence summary\n"
        '  newsdesk article "Steam engine" --summary 5 --json',
    )
    p.add_argument(
        "ref", metavar="ARTICLE", help="id (or its first 4+ characters), title, path or URL"
    )
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--text", action="store_true", help="print the whole extracted text")
    shown.add_argument(
        "--summary",
        nargs="?",
        const=3,
        type=_sentences,
        metavar="N",
        help="an extractive summary: the N most central sentences (default 3, at most 10)",
    )
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "brief",
        "the newest articles, each with its most central sentence",
        "List the newest articles, newest first, each with its date, link (or file) and its\n"
        "most central sentence: the sentence most like the whole article, quoted verbatim (the\n"
        "summary feed announcements use; no model is loaded). An article's date is its own\n"
        "(front matter, feed entry, page metadata), else the day it was first indexed, marked\n"
        "(indexed); a date without a time counts as the whole day.\n\n"
        "--since takes a duration back from now (30m, 24h, 7d, 2w) or a date (2026-11-01,\n"
        "midnight UTC); without it, the newest articles whatever their age.",
        "examples:\n  newsdesk brief                      the 10 newest articles\n"
        "  newsdesk brief --since 24h          what came in during the last day\n"
        "  newsdesk brief --since 2026-11-01 --limit 50\n"
        "  newsdesk brief --since 7d --json    for scripts: since, total, articles[]",
    )
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="only articles from this window: 30m, 24h, 7d, 2w, or a date like 2026-11-01",
    )
    p.add_argument(
        "--limit",
        type=_brief_limit,
        default=10,
        metavar="N",
        help="at most N articles (default 10, at most 100)",
    )
    add_scope_options(p, "list only")
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
        "model took about 51 minutes on 2 CPU cores (see index/data/reranker/MODEL_CARD.md);\n"
        "then calibrate its threshold with `newsdesk eval --leave-out --calibrate`.",
        "examples:\n  newsdesk train-reranker --data squad-train --out my-reranker\n"
        "  newsdesk train-reranker --data squad-train --out tiny --questions 200 --layers 2",
    )
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="SQuAD-format folder")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="model folder to write")
    p.add_argument(
        "--questions", type=_size, default=24000, help="training questions (default 24000)"
    )
    p.add_argument("--layers", type=_size, default=6, help="transformer layers (default 6)")
    p.add_argument("--max-len", type=_size, default=64, help="tokens per pair (default 64)")
    minutes = "fit the training schedule into this many minutes (default: one epoch)"
    p.add_argument("--max-minutes", type=float, default=0.0, help=minutes)
    bf16 = "matrix products in bfloat16 (weights stay float32) or float32; auto: bf16 where the "
    bf16 += "CPU has bf16 instructions (default auto)"
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto", help=bf16)
    frozen = "keep the lowest N layers as shipped (no backward pass through them: faster steps, "
    frozen += "more questions in the same time; default 0)"
    p.add_argument("--freeze-layers", type=int, default=0, metavar="N", help=frozen)
    p.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    p.add_argument(
        "--no-combiner",
        action="store_true",
        help="skip fitting the combiner (cross-encoder logit + sentence and passage features) "
        "on the held-out articles",
    )
    only = "only (re)fit the combiner of the model already in --out"
    p.add_argument("--combiner-only", action="store_true", help=only)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")

    p = cmd(
        "bench",
        "measure indexing, question, search, re-index and start-up speed",
        "Index a corpus of real articles into a temporary data dir and measure, in one run:\n"
        "indexing throughput against bare SentenceTransformer.encode; question latency\n"
        "(p50/p95/p99) against a bare single-question encode, on the corpus and grown with\n"
        "synthetic passages to each --sizes; vector search alone on synthetic clustered\n"
        "vectors (recall@10, build time, memory, disk); re-indexing unchanged and 1%-changed\n"
        "corpora; start-up of the CLI. (The Discord bot's start-up is measured by\n"
        "tests/perf/bot_startup.py in a development checkout; `make bench` runs both.)\n"
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
    p.add_argument(
        "--no-bot",
        action="store_true",
        help="no effect, kept for scripts: the bot's start-up is measured by "
        "tests/perf/bot_startup.py (`make bench`)",
    )
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
    add_tag_option(p, "give each of its articles this tag, for scopes")
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

    add_community_commands(cmd)  # feedback, gaps, forget

    p = cmd(
        "run",
        "start the Discord bot (needs DISCORD_TOKEN)",
        "Start the Discord bot. The token is read from $DISCORD_TOKEN only. This process becomes\n"
        "`python -m bot` with the same --config, --data-dir, -v, -q and --check.",
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


def _sentences(v: str) -> int:
    """``--summary N``: 1 to 10 sentences (an ARTICLE after --summary is a common slip)."""
    if not v.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"expected a number of sentences, got {v!r} (put --summary after the ARTICLE)"
        )
    return _whole(v, 10)


def _brief_limit(v: str) -> int:
    """``brief --limit``: 1 to 100 articles."""
    return _whole(v, 100)


def _size(v: str) -> int:
    """A training size (questions, layers, tokens): any positive whole number."""
    return _whole(v, 10_000_000)


def _sizes(v: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in v.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 10000,100000, got {v!r}") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes
