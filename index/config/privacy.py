"""``[privacy]``: what the community log (answers, votes, thread questions) keeps and for how
long; declared here, gathered into ``Settings`` by ``index.config.models``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from index.config.fields import doc


@dataclass
class PrivacySettings:
    """
    The community log (README "Privacy"): the bot keeps each answer it sends (the question, the
    quote, its article, the channel and server), the 👍 / 👎 votes on it, the questions asked in
    its threads (for follow-ups) and which help-forum posts it answered, in community.sqlite3 in
    the data dir; `newsdesk feedback` and `newsdesk gaps` read it, `newsdesk forget` deletes
    from it.
    """

    retention_days: Annotated[
        int,
        doc(
            """
            days a logged answer, its votes and a thread's questions are kept; older ones are
            deleted (checked at every write). A forum post's claim is kept at least 2 days, so
            the post is never answered twice. 0 = keep them until `newsdesk forget` deletes them
            """,
            ge=0,
            le=36500,
            must="a number of days between 0 (keep forever) and 36500",
        ),
    ] = 90
    store_user_ids: Annotated[
        bool,
        doc(
            """
            keep the Discord user id of whoever asked and voted. Off: no user id is stored; a vote
            keeps only a salted hash of the voter's id (so one vote per user per answer still
            holds), and `newsdesk forget --user` can still find that user's votes
            """
        ),
    ] = False
    log_cli: Annotated[
        bool,
        doc(
            """
            also log the answers of `newsdesk ask` and `newsdesk chat` (off: only the bot's answers
            are logged)
            """
        ),
    ] = False
