"""`newsdesk` command line: index articles, ask questions, manage the index.

Errors are translated here, once: a NewsdeskError prints one line and exits 1; anything else is
a bug, whose traceback goes to the log file, never to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO, cast

from index import logs
from index.cli.parser import build_parser
from index.cli.render import SafeFormatter, SafeOutput, stderr_line
from index.config import Settings, load_settings
from index.errors import NewsdeskError

log = logging.getLogger("newsdesk")


Command = Callable[[argparse.Namespace, Settings, TextIO], int]


class LazyCommand:
    """Command ``name`` of ``index.cli.<module>``, imported when it runs: `newsdesk stats`
    does not load the code of `eval`, `sync` or `chat` (start-up is a target)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def load(self) -> Command:
        # what `from index.cli.MODULE import NAME` does (and -X importtime reports)
        module = __import__(f"index.cli.{self.module}", fromlist=[self.name])
        command: Command = getattr(module, self.name)
        return command

    def __call__(self, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
        return self.load()(args, settings, out)


COMMANDS: dict[str, Command] = {
    "index": LazyCommand("commands", "cmd_index"),
    "ask": LazyCommand("commands_query", "cmd_ask"),
    "search": LazyCommand("commands_query", "cmd_search"),
    "chat": LazyCommand("commands_query", "cmd_chat"),
    "remove": LazyCommand("commands", "cmd_remove"),
    "reindex": LazyCommand("commands", "cmd_reindex"),
    "stats": LazyCommand("commands", "cmd_stats"),
    "check": LazyCommand("commands", "cmd_check"),
    "articles": LazyCommand("commands", "cmd_articles"),
    "article": LazyCommand("commands_brief", "cmd_article"),
    "brief": LazyCommand("commands_brief", "cmd_brief"),
    "eval": LazyCommand("commands_tools", "cmd_eval"),
    "train-reranker": LazyCommand("commands_tools", "cmd_train_reranker"),
    "bench": LazyCommand("commands_tools", "cmd_bench"),
    "migrate": LazyCommand("commands_tools", "cmd_migrate"),
    "sync": LazyCommand("commands_feeds", "cmd_sync"),
    "subscriptions": LazyCommand("commands_feeds", "cmd_subscriptions"),
    "subscribe": LazyCommand("commands_feeds", "cmd_subscribe"),
    "unsubscribe": LazyCommand("commands_feeds", "cmd_unsubscribe"),
    "run": LazyCommand("commands_tools", "cmd_run"),
    "scopes": LazyCommand("commands_scopes", "cmd_scopes"),
    "feedback": LazyCommand("commands_community", "cmd_feedback"),
    "gaps": LazyCommand("commands_community", "cmd_gaps"),
    "forget": LazyCommand("commands_community", "cmd_forget"),
}


EXTRACTOR_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "readability", "pypdf")


def setup_logging(verbose: int, quiet: bool, settings_level: str = "WARNING") -> None:
    level = logs.setup_logging(
        verbose,
        settings_level,
        quiet=quiet,
        formatter=SafeFormatter("%(levelname)s %(name)s: %(message)s"),
    )
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
        stderr_line(f"newsdesk: error: {e}")
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
        stderr_line(
            f"newsdesk: unexpected error: {type(e).__name__}: {str(e)[:200]} "
            f"(details in {where}; please report it)"
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
