"""`newsdesk brief` (the newest articles, each with its most central sentence) and
`newsdesk article REF --summary [N]` (an extractive summary); see index/search/brief.py."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import textwrap
from typing import Any, TextIO

from index.cli.commands import article_head, article_json, open_pipeline
from index.cli.commands import cmd_article as cmd_article_card
from index.cli.commands_scopes import cli_selection
from index.cli.render import plural, shown_path
from index.config import Settings
from index.errors import NewsdeskError


def _since_label(since: dt.datetime) -> str:
    if (since.hour, since.minute, since.second) == (0, 0, 0):
        return since.strftime("%Y-%m-%d")
    return since.strftime("%Y-%m-%d %H:%M UTC")


def _item(text: str, first: str, rest: str = "    ") -> str:
    """``text`` wrapped to the terminal, the first line after ``first``, the others indented."""
    try:
        columns = os.get_terminal_size().columns
    except OSError:
        columns = 100
    width = max(40, min(100, columns))
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=first, subsequent_indent=rest
    )


def _scope_ids(pipe: Any, args: argparse.Namespace) -> frozenset[str] | None:
    """The articles ``--scope`` / ``--tag`` let in (None: every article)."""
    selection = cli_selection(pipe, args)
    if selection is None:
        return None
    from index.feeds.scopes import ScopeResolver

    resolver = ScopeResolver(pipe)
    try:
        return resolver.article_ids(selection)
    finally:
        resolver.close()


def cmd_brief(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.search.brief import InvalidSinceError, parse_since

    since = None
    if args.since is not None:
        try:
            since = parse_since(args.since)
        except InvalidSinceError as e:
            raise NewsdeskError(f"--since: {e}") from None
    with open_pipeline(settings) as pipe:
        brief = pipe.brief(since=since, limit=args.limit, article_ids=_scope_ids(pipe, args))
    if args.json:
        print(json.dumps(brief.to_json(), ensure_ascii=False), file=out)
        return 0
    window = f" since {_since_label(brief.since)}" if brief.since else ""
    if not brief.items:
        if brief.since is None:
            print("No articles yet: run `newsdesk index PATH_OR_URL`.", file=out)
        else:
            print(f"No articles{window}: try a longer --since, e.g. --since 7d.", file=out)
        return 0
    shown = len(brief.items)
    of = f" (of {brief.total})" if brief.total > shown else ""
    newest = "newest article" if shown == 1 else plural(shown, "newest article")
    print(f"The {newest}{window}{of}:", file=out)
    for item in brief.items:
        note = "" if item.dated_by == "published" else " (indexed)"
        print(f"\n{item.date}{note}  {item.title}", file=out)
        print(f"  {item.link or shown_path(item.source)}", file=out)
        if item.sentence:
            print(_item(f"“{item.sentence}”", "  ", "   "), file=out)
    return 0


def cmd_article(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`newsdesk article`: the card as before; with --summary, the summary in place of the
    opening paragraph (in --json, a ``summary`` list beside it)."""
    if args.summary is None:
        return cmd_article_card(args, settings, out)
    with open_pipeline(settings) as pipe:
        s = pipe.summarize(args.ref, args.summary)
    a = s.article
    if args.json:
        data = {
            **article_json(a),
            "summary": [x.to_json() for x in s.sentences],
        }
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    print(article_head(a), file=out)
    n = len(s.sentences)
    print(f"  Summary ({plural(n, 'sentence')}, verbatim, in article order):", file=out)
    for x in s.sentences:
        print(_item(x.text, "  • "), file=out)
    return 0
