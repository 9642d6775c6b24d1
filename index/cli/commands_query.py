"""The commands that answer: `ask` (also batch and --generate), `search`, `chat`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from index.cli.commands import open_pipeline
from index.cli.commands_community import log_answers
from index.cli.commands_scopes import cli_selection
from index.cli.render import (
    dated,
    format_answer,
    format_generated,
    plural,
    shown_source,
    wrap,
    writing_status,
)
from index.config import Settings
from index.errors import ConfigError, NewsdeskError
from index.models import Answer, Hit

if TYPE_CHECKING:
    from index.written.generate import GeneratedAnswer


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
    if args.after and (args.generate or args.question is None):
        print("newsdesk: error: --after needs a QUESTION and no --generate", file=sys.stderr)
        return 2
    if args.generate:
        return _ask_generated(args, settings, out)
    with open_pipeline(settings) as pipe:
        if args.question is not None:
            try:
                scope = cli_selection(pipe, args)
                ans = pipe.ask(
                    args.question,
                    k=args.k,
                    mode=args.mode,
                    context=args.after or (),
                    scope=scope,
                )
            except NewsdeskError as e:
                return _question_error(args, e, out)
            log_answers(settings, [ans])  # only with privacy.log_cli
            if args.json:
                print(json.dumps(ans.to_json(), ensure_ascii=False), file=out)
            else:
                print(format_answer(ans), file=out)
            return 0
        if sys.stdin.isatty():
            print("newsdesk: error: give a QUESTION, or pipe questions on stdin", file=sys.stderr)
            return 2
        lines = [line.rstrip("\r\n") for line in sys.stdin]
        scope = cli_selection(pipe, args)
        results = (
            pipe.ask_many(lines, k=args.k, mode=args.mode)
            if scope is None
            else [_ask_one(pipe, q, args, scope) for q in lines]
        )
        log_answers(settings, results)  # only with privacy.log_cli
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


def _ask_one(pipe: Any, q: str, args: argparse.Namespace, scope: Any) -> Answer | NewsdeskError:
    """One question of a scoped batch (``ask_many`` answers every article)."""
    try:
        return pipe.ask(q, k=args.k, mode=args.mode, scope=scope)
    except NewsdeskError as e:
        return e


def _generate(
    pipe: Any,
    q: str,
    args: argparse.Namespace,
    scope: Any,
    on_update: Callable[[GeneratedAnswer], None] | None = None,
) -> GeneratedAnswer:
    """``pipe.generate``, in ``scope`` when there is one (--scope / --tag)."""
    if scope is None:
        return pipe.generate(q, k=args.k, mode=args.mode, on_update=on_update)
    coro = pipe.agenerate(
        q, args.k, args.mode, stream=on_update is not None, on_update=on_update, scope=scope
    )
    return asyncio.run(coro)


def _ask_generated(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """``ask --generate``: the same input and output contract, with written answers."""
    from index.written.generate import LLM_OFF

    if not settings.llm.enabled:
        raise ConfigError(LLM_OFF)

    def show(gen: GeneratedAnswer) -> str:
        if args.json:
            return json.dumps(gen.to_json(), ensure_ascii=False)
        return format_generated(gen)

    with open_pipeline(settings) as pipe:
        if args.question is not None:
            with writing_status(not (args.quiet or args.json)) as status:
                try:
                    gen = _generate(pipe, args.question, args, cli_selection(pipe, args), status)
                except NewsdeskError as e:
                    return _question_error(args, e, out)
            print(show(gen), file=out)
            return 0
        if sys.stdin.isatty():
            print("newsdesk: error: give a QUESTION, or pipe questions on stdin", file=sys.stderr)
            return 2
        lines = [line.rstrip("\r\n") for line in sys.stdin]
        failed = 0
        scope = cli_selection(pipe, args)
        for q in lines:
            try:
                text = show(_generate(pipe, q, args, scope))
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
    with open_pipeline(settings) as pipe:
        try:
            hits = pipe.search(
                args.query, k=args.k, mode=args.mode, scope=cli_selection(pipe, args)
            )
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
            f"{i:>2}. {h.title}{dated(h.published)} ({shown_source(h)})"
            for i, h in enumerate(passages, 1)
        )
    if not arg.isdigit() or not 1 <= int(arg) <= len(passages):
        return f"Give a passage number from 1 to {len(passages)}, e.g. :sources 1"
    h = passages[int(arg) - 1]
    lines = [
        f"[{arg}] {h.title}{dated(h.published)}",
        f"    {shown_source(h)}, characters {h.start}-{h.end}",
        "",
    ]
    lines += [wrap(para, "    ") for para in h.text.split("\n\n") if para.strip()]
    return "\n".join(lines)


def cmd_chat(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    interactive = sys.stdin.isatty()
    if args.generate and not settings.llm.enabled:
        from index.written.generate import LLM_OFF

        raise ConfigError(LLM_OFF)
    last: list[Hit] = []  # the passages of the last answer, for :sources
    asked: list[str] = []  # earlier questions: "when was that?" follows them up
    with open_pipeline(settings) as pipe, _line_editing(interactive) as readline:
        stats = pipe.stats()
        if interactive:
            print(
                f"newsdesk chat — {plural(stats.articles, 'article')} indexed. "
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

                print(wrap(HELP_TEXT, "") + "\n" + CHAT_COMMANDS, file=out)
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
                        ans = pipe.ask(line, context=asked)
                        asked.append(line)
                        log_answers(settings, [ans])  # only with privacy.log_cli
                        last = list(ans.passages)
                        print(format_answer(ans), file=out)
                except NewsdeskError as e:
                    print(f"error: {e}", file=out)
            print(file=out)
            out.flush()
    return 0
