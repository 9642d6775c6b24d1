"""The subscription commands: `sync`, `subscriptions`, `subscribe`, `unsubscribe`."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from index.cli.commands import open_pipeline
from index.cli.render import plural, stderr_line
from index.config import Settings
from index.errors import SourceError


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


def _sync_line(res: Any) -> str:
    return f"{res.kind:<7}{res.target}: {res.summary()}"


def cmd_sync(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_pipeline(settings) as pipe:
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
                    stderr_line(f"newsdesk: skipped {note}")
    return 1 if any(not r.ok for r in results) else 0


def cmd_subscriptions(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import datetime as dt

    with open_pipeline(settings) as pipe:
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
            f"       {plural(s.articles, 'article')} · last success {_ago(s.last_success)} · "
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
    from index.cli.commands_scopes import tags_of

    target = args.target.strip()
    kind = "feed" if "://" in target else "folder"
    if kind == "feed" and not target.lower().startswith(("http://", "https://")):
        raise SourceError(target, "not an http(s) URL (give a feed address or a folder)")
    if args.channel is not None and not 1 <= args.channel < 2**63:
        raise SourceError(str(args.channel), "not a Discord channel id")
    with open_pipeline(settings) as pipe:
        engine = _engine(pipe)
        try:
            status, res = engine.subscribe(
                kind, target, interval=args.interval, channel=args.channel, tags=tags_of(args)
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
    with open_pipeline(settings) as pipe:
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
        f"in the index ({plural(status.articles, 'article')})",
        file=out,
    )
    return 0
