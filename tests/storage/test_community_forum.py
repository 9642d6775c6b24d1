"""index.community.forum: forum posts are claimed once (also across restarts), thread
questions are remembered in order and bounded."""

from __future__ import annotations

import threading
from pathlib import Path

from index.community.db import DB_NAME
from index.community.forum import KEEP_QUESTIONS, ForumStore


def test_a_post_is_claimed_once_even_after_a_restart(tmp_path: Path) -> None:
    store = ForumStore(tmp_path)
    assert store.post_outcome(1) is None
    assert store.claim_post(1, forum_id=9)
    assert not store.claim_post(1, forum_id=9)
    assert store.post_outcome(1) == "pending"
    store.finish_post(1, "answered", answer_id=77)
    store.close()
    again = ForumStore(tmp_path)  # a new process
    assert (tmp_path / DB_NAME).is_file()
    assert not again.claim_post(1, forum_id=9)
    assert again.post_outcome(1) == "answered"
    assert again.claimed([1, 2, 3]) == {1}
    assert again.claimed([]) == set()
    again.close()


def test_concurrent_claims_have_one_winner(tmp_path: Path) -> None:
    store = ForumStore(tmp_path)
    wins: list[bool] = []
    start = threading.Barrier(4)

    def claim() -> None:
        start.wait()
        wins.append(store.claim_post(5, forum_id=9))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True]
    store.close()


def test_thread_questions_are_kept_in_order_and_bounded(tmp_path: Path) -> None:
    store = ForumStore(tmp_path)
    assert store.questions(3) == [] and store.threads() == set()
    for i in range(KEEP_QUESTIONS + 3):
        store.remember(3, f"question {i}")
    store.remember(4, "other thread")
    assert store.questions(3) == [f"question {i}" for i in range(3, KEEP_QUESTIONS + 3)]
    store.close()
    again = ForumStore(tmp_path)
    assert again.questions(4) == ["other thread"]
    assert again.threads() == {3, 4}
    again.close()
