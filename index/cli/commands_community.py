"""The feedback log's commands: `feedback`, `gaps`, `forget` (README "Feedback and gaps",
"Privacy"), and the hook that logs `ask` / `chat` answers when ``privacy.log_cli`` is on."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from index.cli.render import plural, wrap
from index.config import Settings
from index.models import Answer

if TYPE_CHECKING:
    from index.community.feedback import FeedbackStore, FeedbackSummary
    from index.community.gaps import Gap

log = logging.getLogger("newsdesk")


def _store(settings: Settings) -> FeedbackStore:
    from index.community.feedback import FeedbackStore

    return FeedbackStore(settings.data_dir, settings.privacy)


def log_answers(settings: Settings, answers: Iterable[object]) -> None:
    """``privacy.log_cli``: log the answers of `ask` / `chat` (origin "cli"); otherwise nothing.
    A failure to log is a warning: the answer was printed all the same."""
    if not settings.privacy.log_cli:
        return
    from index.errors import NewsdeskError

    store = _store(settings)
    try:
        for ans in answers:
            if isinstance(ans, Answer):
                store.log_answer(ans, origin="cli")
    except NewsdeskError as e:
        log.warning("could not log the answer: %s", e)
    finally:
        store.close()


def _since(args: argparse.Namespace) -> float | None:
    from index.community.periods import parse_span

    return time.time() - parse_span(args.since) if args.since else None


def _period(since: float | None) -> str:
    from index.community.periods import iso

    return f"since {iso(since)[:16].replace('T', ' ')} UTC" if since is not None else "all kept"


def format_feedback(s: FeedbackSummary) -> str:
    share = s.share_up
    votes = f"👍 {s.up:,}  👎 {s.down:,}" + (f"  ({share:.0%} 👍)" if share is not None else "")
    lines = [
        f"Feedback ({_period(s.since)}): {plural(s.answers, 'answer')}, "
        f"{plural(s.abstentions, 'abstention')}; {votes}"
    ]
    if not s.worst:
        lines.append("No answer has a 👎." if s.up + s.down else "No votes yet.")
        return "\n".join(lines)
    lines.append("Worst-rated answers:")
    for a in s.worst:
        from index.community.periods import iso

        when = iso(a.asked_at)[:16].replace("T", " ")
        lines.append(f"  👎 {a.down} 👍 {a.up}  #{a.id}  {when}  “{a.question}”")
        if a.quote:
            lines.append(wrap(f"> {a.quote}", "      "))
            lines.append(f"      — {a.title} ({a.article_id}, characters {a.start}–{a.end})")
    return "\n".join(lines)


def format_gaps(gaps: list[Gap], since: float | None, total: int) -> str:
    from index.community.periods import iso

    if not gaps:
        return f"No unanswered or 👎-rated questions ({_period(since)})."
    lines = [
        f"Unanswered or 👎-rated questions ({_period(since)}): {plural(total, 'question')}, "
        "grouped, most asked first"
    ]
    width = len(str(len(gaps)))
    for i, g in enumerate(gaps, 1):
        when = iso(g.last_asked)[:16].replace("T", " ")
        where = ", ".join(str(c) for c in g.channels) or "no channel (CLI)"
        why = []
        if g.abstained:
            why.append(f"{g.abstained} abstained")
        if g.downvoted:
            why.append(f"{g.downvoted} 👎")
        lines.append(f"{i:>{width}}. ×{g.count}  “{g.question}”")
        lines.append(f"{' ' * width}    last asked {when} · channels {where} · {', '.join(why)}")
        if g.examples:
            also = "; ".join(f"“{e}”" for e in g.examples)
            lines.append(wrap(f"also: {also}", " " * (width + 4)))
    return "\n".join(lines)


def cmd_feedback(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    since = _since(args)
    store = _store(settings)
    try:
        summary = store.summary(since, worst=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False), file=out)
    else:
        print(format_feedback(summary), file=out)
    return 0


def cmd_gaps(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.community.gaps import group_questions
    from index.community.periods import iso

    since = _since(args)
    store = _store(settings)
    try:
        rows = store.gap_rows(since)
    finally:
        store.close()
    gaps = group_questions(rows, args.similarity, args.limit)
    if args.json:
        data = {
            "since": None if since is None else iso(since),
            "questions": len(rows),
            "groups": [g.to_json() for g in gaps],
        }
        print(json.dumps(data, ensure_ascii=False), file=out)
    else:
        print(format_gaps(gaps, since, len(rows)), file=out)
    return 0


def cmd_forget(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.community import privacy
    from index.community.periods import parse_date

    before = parse_date(args.before) if args.before is not None else None
    report = privacy.forget(settings.data_dir, settings.privacy, user_id=args.user, before=before)
    if args.json:
        print(json.dumps(report.to_json()), file=out)
    else:
        print(f"forget: {report.summary()}", file=out)
    return 0
