"""`newsdesk scopes`, and the `--scope` / `--tag` of `ask` and `search`: channel scopes from
the command line (index/feeds/scopes.py)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, TextIO

from index.config import Settings
from index.errors import NewsdeskError

if TYPE_CHECKING:
    from index.search.scope import Selection


def tags_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``--tag`` values, normalised; a bad one is one line naming it."""
    from index.models import normalize_tags

    try:
        return normalize_tags(getattr(args, "tag", None) or [])
    except ValueError as e:
        raise NewsdeskError(f"--tag: {e}") from None


def cli_selection(pipe: Any, args: argparse.Namespace) -> Selection | None:
    """What ``--scope NAME`` and ``--tag TAG`` select (any of them), or None: every article."""
    name = getattr(args, "scope", None)
    tags = tags_of(args)
    if not name and not tags:
        return None
    import dataclasses

    from index.feeds.scopes import ScopeResolver
    from index.models import Scope

    resolver = ScopeResolver(pipe)
    try:
        scope = resolver.named(name) if name else Scope("--tag")
        if tags:
            scope = dataclasses.replace(scope, tags=tuple(sorted({*scope.tags, *tags})))
        return resolver.selection(scope)
    finally:
        resolver.close()


def cmd_scopes(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.feeds.scopes import ScopeResolver, configured_scopes
    from index.pipeline import Pipeline

    with Pipeline(settings) as pipe:
        resolver = ScopeResolver(pipe)
        try:
            named = configured_scopes(pipe)
            bound = resolver.bindings.all()
            problems = {s.name: resolver.problems(s) for s, _ in named}
            problems.update({f"channel {b.channel}": resolver.problems(b.scope) for b in bound})
        finally:
            resolver.close()
    if args.json:
        data = {
            "scopes": [
                {**s.to_json(), "channels": [str(c) for c in chs], "problems": problems[s.name]}
                for s, chs in named
            ],
            "bindings": [
                {**b.to_json(), "problems": problems[f"channel {b.channel}"]} for b in bound
            ],
        }
        print(json.dumps(data, ensure_ascii=False), file=out)
        return 0
    if not named and not bound:
        print(
            "No scopes: every channel is answered from every article. Declare [[scopes]] in the "
            "config file or bind a channel with /scope set.",
            file=out,
        )
        return 0
    for s, chs in named:
        where = ", ".join(str(c) for c in chs) or "no channel"
        print(f"{s.name}  ({s.describe()})  channels: {where}", file=out)
        for p in problems[s.name]:
            print(f"  problem: {p}", file=out)
    for b in bound:
        what = b.scope.name if b.scope.empty else b.scope.describe()
        print(f"channel {b.channel}: {what}  (set with /scope, {b.set_at})", file=out)
        for p in problems[f"channel {b.channel}"]:
            print(f"  problem: {p}", file=out)
    return 0
