"""The feedback log's subcommands (`feedback`, `gaps`, `forget`): their options and help."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Cmd = Callable[..., argparse.ArgumentParser]

_SINCE_HELP = "only what was asked in this span before now: 30m, 24h, 7d, 2w (default: all kept)"


def add_community_commands(cmd: Cmd) -> None:
    """Add `feedback`, `gaps` and `forget` with ``cmd(name, help, description, epilog)``."""
    p = cmd(
        "feedback",
        "how members rated the bot's answers (👍 / 👎) and the worst-rated ones",
        "Totals of the answers the bot logged (answers, abstentions, 👍, 👎 and the share of\n"
        "👍) and the answers with the most 👎: question, quote, article and votes. Members\n"
        "vote with the buttons under each answer in Discord, one vote per member per answer.\n"
        'The log keeps privacy.retention_days days (README "Privacy").',
        "examples:\n  newsdesk feedback\n  newsdesk feedback --since 7d --limit 10\n"
        "  newsdesk feedback --json",
    )
    p.add_argument("--since", metavar="SPAN", help=_SINCE_HELP)
    p.add_argument(
        "--limit", type=_count, default=5, metavar="N", help="worst-rated answers shown (5)"
    )
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "gaps",
        "what the articles do not answer: unanswered and 👎-rated questions, grouped",
        "Every question the bot abstained on and every answer rated 👎, grouped by meaning\n"
        "(the questions' embeddings, stored when they were asked; no LLM) and ranked by how\n"
        "often they were asked. Each group shows a representative question, the count, when it\n"
        "was last asked, the channels and other wordings: what to add articles about.",
        "examples:\n  newsdesk gaps\n  newsdesk gaps --since 7d --limit 20\n"
        "  newsdesk gaps --similarity 0.85     stricter groups\n  newsdesk gaps --json",
    )
    p.add_argument("--since", metavar="SPAN", help=_SINCE_HELP)
    p.add_argument("--limit", type=_count, default=10, metavar="N", help="groups shown (10)")
    p.add_argument(
        "--similarity",
        type=_similarity,
        default=0.75,
        metavar="COS",
        help="cosine similarity at which two questions are grouped, 0.5 to 1 (0.75)",
    )
    p.add_argument("--json", action="store_true", help="JSON output")

    p = cmd(
        "forget",
        "delete logged questions and votes (a user's, or everything before a date)",
        "Delete from community.sqlite3: --user ID deletes that Discord user's votes (found\n"
        "also when only a salted hash of user ids is stored) and, with privacy.store_user_ids,\n"
        "the questions they asked; --before DATE deletes every logged answer, vote and thread\n"
        "question from before it (midnight UTC), and the forum post claims older than both the\n"
        "date and 2 days (a newer claim stops a post being answered twice); both together:\n"
        "that user's rows before the date. Thread questions and claims store no user id, so\n"
        "--user cannot find them. Prints what was deleted. The index (articles) is not touched.",
        "examples:\n  newsdesk forget --user 123456789012345678\n"
        "  newsdesk forget --before 2026-01-01\n  newsdesk forget --user 1234 --json",
    )
    p.add_argument("--user", type=_user_id, metavar="ID", help="a Discord user id")
    p.add_argument("--before", metavar="DATE", help="an ISO date or date-time, e.g. 2026-01-31")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")


def _count(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
    if not 1 <= n <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1,000")
    return n


def _similarity(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {v!r}") from None
    if not 0.5 <= x <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0.5 and 1")
    return x


def _user_id(v: str) -> int:
    if not v.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a Discord user id (digits), got {v!r}")
    return int(v)
