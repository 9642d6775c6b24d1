"""Everything ``<data_dir>/community.sqlite3`` keeps, how long, and deleting it on request
(README "Privacy"): ``newsdesk forget`` goes through :func:`forget`, so a new table with
people's data is added here once.

The tables and who owns them:

- ``feedback_answers`` (:mod:`index.community.feedback`): each answer and abstention the bot
  sent -- when, the question, channel and server ids, the quote with its article and offsets,
  the confidence, the question's embedding; the asker's user id only with
  ``privacy.store_user_ids``;
- ``feedback_votes``: one 👍 / 👎 per answer and member, keyed by a salted hash of the member's
  id (the id itself with ``privacy.store_user_ids``);
- ``thread_questions`` (:mod:`index.community.forum`): the questions the bot answered in each
  thread, for follow-ups -- thread id, question text, when; never a user id;
- ``forum_posts``: the help-forum posts the bot took on -- thread and forum ids, when, the
  outcome and the logged answer's id; never a user id.

``privacy.retention_days`` is applied by each store when the file is opened and at every write;
claims of forum posts are kept at least :data:`index.community.forum.CLAIM_KEEP_DAYS` days (by
:func:`forget` too) so that no post is answered twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.community.feedback import FeedbackStore
from index.community.forum import CLAIM_KEEP_DAYS, ForumStore
from index.config import PrivacySettings


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


@dataclass
class Forgotten:
    """What :func:`forget` deleted, for its one-line summary and ``--json``."""

    answers: int = 0
    votes: int = 0
    thread_questions: int = 0
    forum_posts: int = 0
    forum_posts_kept: int = 0
    by_user: bool = False
    user_ids_stored: bool = False

    def summary(self) -> str:
        """``deleted 3 logged answers, 1 vote, 4 thread questions and 2 forum post claims``,
        with a note on what a ``--user`` cannot find and on claims kept."""
        parts = [
            _count(self.answers, "logged answer", "logged answers"),
            _count(self.votes, "vote", "votes"),
        ]
        notes: list[str] = []
        if self.by_user:
            forum = "thread questions and forum post claims"
            if self.user_ids_stored:
                notes.append(f"{forum} are not linked to users: --before DATE deletes them")
            else:
                notes.append("questions are not linked to users: privacy.store_user_ids is off")
                notes.append(f"{forum} never are: --before DATE deletes them")
        else:
            parts.append(_count(self.thread_questions, "thread question", "thread questions"))
            parts.append(_count(self.forum_posts, "forum post claim", "forum post claims"))
        if self.forum_posts_kept:
            notes.append(
                f"kept {_count(self.forum_posts_kept, 'claim', 'claims')} of the last "
                f"{CLAIM_KEEP_DAYS} days, so those posts are not answered again"
            )
        text = "deleted " + (", ".join(parts[:-1]) + " and " + parts[-1])
        return text + (f" ({'; '.join(notes)})" if notes else "")

    def to_json(self) -> dict[str, int]:
        return {
            "answers": self.answers,
            "votes": self.votes,
            "thread_questions": self.thread_questions,
            "forum_posts": self.forum_posts,
            "forum_posts_kept": self.forum_posts_kept,
        }


def forget(
    data_dir: str | Path,
    privacy: PrivacySettings,
    *,
    user_id: int | None = None,
    before: float | None = None,
    clock: Callable[[], float] = time.time,
) -> Forgotten:
    """Delete a user's rows and/or everything before ``before`` (UNIX time) from every table;
    both: that user's rows before it. Thread questions and forum post claims belong to no
    user, so they go only with ``before`` alone. A missing file stays missing."""
    feedback = FeedbackStore(data_dir, privacy, clock=clock)
    forum = ForumStore(data_dir, privacy, clock=clock)
    try:
        fb = feedback.forget(user_id=user_id, before=before)  # refuses neither user nor date
        out = Forgotten(
            fb.answers,
            fb.votes,
            by_user=user_id is not None,
            user_ids_stored=privacy.store_user_ids,
        )
        if user_id is None and before is not None:
            fr = forum.forget(before)
            out.thread_questions = fr.thread_questions
            out.forum_posts = fr.forum_posts
            out.forum_posts_kept = fr.forum_posts_kept
    finally:
        feedback.close()
        forum.close()
    return out
