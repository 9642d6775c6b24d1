"""Channel scopes on the command line: `--tag` (index, subscribe), `--scope` / `--tag` (ask,
search) and the `scopes` command, with their help."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Cmd = Callable[..., argparse.ArgumentParser]


def add_tag_option(p: argparse.ArgumentParser, help: str) -> None:
    """``--tag TAG``, repeatable (``args.tag``: a list)."""
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help=f"{help}; repeatable")


def add_scope_options(p: argparse.ArgumentParser, what: str = "answer only from") -> None:
    """``--scope NAME`` and ``--tag TAG`` of `ask`, `search` and `brief`."""
    p.add_argument(
        "--scope",
        metavar="NAME",
        help=f"{what} this [[scopes]] table of the config (`newsdesk scopes` lists them)",
    )
    add_tag_option(p, f"{what} articles with this tag (with --scope: or in it)")


def add_scopes_command(cmd: Cmd) -> None:
    p = cmd(
        "scopes",
        "list the channel scopes and which channels they bind",
        "List the scopes: the [[scopes]] tables of the config file (a name, the channels it\n"
        "binds, and the subscriptions, folders, tags and articles it selects) and the channels\n"
        "bound at run time with /scope set (kept in community.sqlite3 in the data dir). A\n"
        "question in a bound channel, or a thread of it, is answered only from its scope;\n"
        "`ask`/`search --scope NAME` do the same here. A name that matches nothing is listed\n"
        "as a problem.",
        "examples:\n  newsdesk scopes\n  newsdesk scopes --json\n"
        '  newsdesk ask --scope support "How do I reset my password?"\n'
        '  newsdesk search --tag handbook "holidays"',
    )
    p.add_argument("--json", action="store_true", help="JSON output")
