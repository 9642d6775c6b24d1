"""Subscriptions: RSS/Atom feeds and folders kept in sync with the index.

Subscriptions come from the config file (``[[feeds]]``, ``[[folders]]``) and from commands
(``/subscribe``, ``newsdesk subscribe``). Their state lives in ``subscriptions.db`` beside the
index (:mod:`index.feeds.store`, which holds every SQL statement); the values are in
:mod:`index.feeds.models`.

One round (:meth:`SyncEngine.run_due`) syncs every subscription that is due, one after the other;
an error in one is recorded in its status and never stops the others. After an error a
subscription waits twice its interval, doubling at each further error up to
``sync.max_backoff`` minutes. The first successful sync of a subscription indexes what is there
without announcing it; announcements start with the articles that appear after it.

Feeds: a conditional GET (``If-None-Match`` / ``If-Modified-Since``); HTTP 304 means nothing
changed. Only new entries and entries whose fingerprint changed are fetched. Articles that drop
off a feed stay in the index (feeds show only their latest entries).

Folders: added and edited files are indexed, files deleted from the folder are removed from the
index. A folder that is missing altogether is an error, and nothing is removed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from index.errors import ArticleNotFoundError, IndexBusyError, NewsdeskError, SourceError
from index.feeds.models import (
    PENDING_DAYS,
    SENT_DAYS,
    Announcement,
    Kind,
    Subscription,
    SubscriptionStatus,
    SyncResult,
    backoff_minutes,
    configured,
    feed_target,
    folder_target,
    iso_utc,
    match_subscription,
    short_note,
    visible_from,
)
from index.feeds.store import SubscriptionStore
from index.models import Document, http_link

if TYPE_CHECKING:
    import sqlite3

    from index.pipeline import Pipeline

log = logging.getLogger(__name__)


Clock = Callable[[], float]


class SyncEngine:
    """Runs subscriptions against a :class:`~index.pipeline.Pipeline` (the one facade)."""

    def __init__(self, pipeline: Pipeline, clock: Clock = time.time) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.store = SubscriptionStore(pipeline.data_dir)
        self.clock = clock
        self._round = threading.Lock()  # one sync at a time per engine
        self._reconciled = False

    def close(self) -> None:
        self.store.close()

    # -- the list ----------------------------------------------------------------------------
    def _reconcile(self) -> None:
        """Bring the stored subscriptions in line with the config file (once per engine)."""
        if self._reconciled:
            return
        wanted = configured(self.settings)
        if wanted or self.store.exists():
            with self.store.errors(), self.store.transaction() as c:
                now = self.clock()
                dropped = self.store.reconcile(c, wanted, now, iso_utc(now))
            for target in dropped:
                log.info("subscription %s is no longer in the config: dropped", target)
        self._reconciled = True

    def statuses(self, guild: int | None = None) -> list[SubscriptionStatus]:
        """Every subscription with its status and the number of its articles in the index.

        With ``guild`` (a Discord server): only what that server may see, its own
        subscriptions and the operator's (config file, ``newsdesk subscribe``), never another
        server's (their feeds, channels and errors are theirs).
        """
        self._reconcile()
        with self.store.errors():
            out = [s for s in self.store.statuses() if visible_from(s, guild)]
            if out:
                indexed = {r.id for r in self.pipeline.list_articles()}
                for s in out:
                    s.articles = len(self.store.article_ids(s.id) & indexed)
        return out

    def find(self, ref: str, guild: int | None = None) -> SubscriptionStatus:
        """A subscription by its URL, folder path, title or short label (among those
        ``guild`` may see, see :meth:`statuses`)."""
        found = match_subscription(self.statuses(guild), ref)
        if found is None:
            raise SourceError(ref, "no such subscription (`newsdesk subscriptions` lists them)")
        return found

    def subscribe(
        self,
        kind: Kind,
        target: str,
        *,
        interval: float | None = None,
        channel: int | None = None,
        guild: int | None = None,
        tags: Sequence[str] = (),
    ) -> tuple[SubscriptionStatus, SyncResult]:
        """Add a subscription and sync it at once (its articles are indexed, not announced).
        ``guild``: the Discord server it belongs to (None: the operator's).

        Raises :class:`SourceError` when the feed or folder cannot be read: nothing is kept then.
        """
        self._reconcile()
        if kind == "feed":
            target = feed_target(target)
            default = 30.0
        else:
            target = folder_target(target)
            default = 5.0
            if Path(target).is_file():
                raise SourceError(
                    target,
                    "is a file: subscribe to a folder or a feed (`newsdesk index FILE` adds "
                    "a single file)",
                )
            if not Path(target).is_dir():
                raise SourceError(target, "no such folder")
        sub = Subscription(
            kind, target, interval or default, channel or None, "command", guild, tuple(tags)
        )
        if not self._round.acquire(timeout=_lock_wait()):
            raise IndexBusyError("subscriptions are being synced; try again when it finishes")
        try:
            with self.store.errors():
                existing = self.store.get(target)
                if existing is not None:
                    if not visible_from(existing, guild):  # never say whose it is
                        raise SourceError(
                            target, "already kept in sync (its articles are in the index)"
                        )
                    raise SourceError(target, "already subscribed")
                with self.store.transaction() as c:
                    self.store.insert(c, sub, iso_utc(self.clock()))
                status = self.store.get(target)
            assert status is not None
            result = self._sync(status)
            if not result.ok or result.busy:
                with self.store.errors(), self.store.transaction() as c:
                    self.store.delete_target(c, target)
                if result.busy:
                    raise IndexBusyError(
                        "the index is being updated; try subscribing again when it finishes"
                    )
                raise SourceError(target, result.error or "cannot be read")
        finally:
            self._round.release()
        return self.find(target, guild), result

    def unsubscribe(self, ref: str, guild: int | None = None) -> SubscriptionStatus:
        """Remove a subscription made by a command (its articles stay in the index).

        With ``guild``, only one that server made: the operator's are removed by the operator.
        """
        status = self.find(ref, guild)
        sub = status.subscription
        if sub.origin == "config":
            where = "the config file" if guild is not None else self.settings.config_path
            raise SourceError(
                sub.target,
                f"declared in {where or 'the config file'}: remove it there and restart the bot",
            )
        if guild is not None and sub.guild != guild:
            raise SourceError(
                sub.target,
                "added by the bot's operator (`newsdesk subscribe`): only they can remove it, "
                "with `newsdesk unsubscribe`",
            )
        with self.store.errors(), self.store.transaction() as c:
            self.store.delete(c, status.id)
        return status

    # -- rounds ------------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """When the next subscription is due (seconds since the epoch), None without any."""
        dues = [s.next_due for s in self.statuses()]
        return min(dues) if dues else None

    def run_due(self) -> list[SyncResult]:
        """Sync every subscription that is due; [] when another round is still running."""
        return self._run(lambda s, now: s.next_due <= now, wait=False)

    def run_all(self) -> list[SyncResult]:
        """Sync every subscription once, due or not (``newsdesk sync``)."""
        return self._run(lambda s, now: True, wait=True)

    def _run(
        self, want: Callable[[SubscriptionStatus, float], bool], *, wait: bool
    ) -> list[SyncResult]:
        if not self._round.acquire(timeout=_lock_wait() if wait else 0):
            if wait:
                raise IndexBusyError("subscriptions are being synced; try again when it finishes")
            return []
        try:
            self._recover_intents()
            now = self.clock()
            results = []
            for status in self.statuses():
                if want(status, now):
                    results.append(self._sync(status))
            return results
        finally:
            self._round.release()

    def _sync(self, status: SubscriptionStatus) -> SyncResult:
        """Sync one subscription and record the outcome; never raises for its own errors."""
        sub = status.subscription
        result = SyncResult(sub.kind, sub.target)
        t0 = time.perf_counter()
        started = iso_utc(self.clock())
        try:
            if sub.kind == "feed":
                self._sync_feed(status, result)
            else:
                self._sync_folder(status, result)
        except IndexBusyError as e:
            log.info("%s: %s; trying again at the next round", sub.target, e)
            result.busy = True
        except SourceError as e:  # the subscription's own address needs no repeating
            result.ok = False
            result.error = short_note(e.reason if e.source == sub.target else str(e))
        except NewsdeskError as e:
            result.ok, result.error = False, short_note(str(e))
        except Exception as e:
            log.exception("unexpected error while syncing %s", sub.target)
            result.ok = False
            result.error = f"unexpected error ({type(e).__name__}); details in the log"
        result.seconds = time.perf_counter() - t0
        if not result.busy:
            self._record(status, result, started)
        log.info("synced %s: %s", sub.target, result.summary())
        return result

    def _record(self, status: SubscriptionStatus, result: SyncResult, when: str) -> None:
        sub = status.subscription
        now = self.clock()
        with self.store.errors(), self.store.transaction() as c:
            if result.ok:
                warning = "; ".join(result.skipped[:3]) or None
                self.store.record_success(
                    c, status.id, when, now + sub.interval * 60, warning and short_note(warning)
                )
            else:
                failures = status.failures + 1
                delay = backoff_minutes(sub.interval, failures, self.settings.sync.max_backoff)
                self.store.record_failure(
                    c, status.id, when, result.error, failures, now + delay * 60
                )

    # -- feeds -------------------------------------------------------------------------------
    def _sync_feed(self, status: SubscriptionStatus, result: SyncResult) -> None:
        from index.ingest.feeds import poll_feed

        sub = status.subscription
        items = self.store.items(status.id)
        poll = poll_feed(
            sub.target,
            self.settings.fetch,
            etag=status.etag if status.rounds else None,
            last_modified=status.last_modified if status.rounds else None,
            known={k: fp for k, (fp, _a) in items.items()},
        )
        if poll.not_modified:
            result.not_modified = True
            return
        result.skipped = [str(w) for w in poll.warnings]
        for note in poll.notes:  # indexed from the feed's text: not skipped
            log.info("%s: %s", sub.target, note)
        origin = poll.title or status.title
        new = self._index(list(poll.documents.values()), result, status, origin)
        keep: dict[str, tuple[str, str]] = {}
        for entry in poll.entries:
            doc = poll.documents.get(entry.link)
            if doc is not None:
                keep[entry.link] = (entry.fingerprint, doc.article_id)
            elif entry.link in items:  # unchanged, or changed but unreadable: try again later
                keep[entry.link] = items[entry.link]
        result.unchanged += sum(
            1
            for e in poll.entries
            if e.link not in poll.documents and items.get(e.link, ("",))[0] == e.fingerprint
        )
        with self.store.errors(), self.store.transaction() as c:
            self.store.replace_items(c, status.id, keep)
            self.store.set_feed_state(
                c, status.id, poll.etag, poll.last_modified, poll.title or status.title
            )
            result.announced = self._announce(c, status, poll.title or status.title, new)

    # -- folders -----------------------------------------------------------------------------
    def _sync_folder(self, status: SubscriptionStatus, result: SyncResult) -> None:
        from index.ingest.files import iter_folder, read_file, resolve_path

        sub = status.subscription
        folder = Path(sub.target)
        if not folder.is_dir():
            raise SourceError(sub.target, "folder not found (nothing was removed from the index)")
        items = self.store.items(status.id)
        indexed = {r.id: r.source for r in self.pipeline.list_articles()}
        listing: dict[str, Path] = {}
        for f in iter_folder(folder):
            try:
                listing[str(resolve_path(f))] = f
            except SourceError as e:  # a symlink loop: skipped with a note, every round
                result.skipped.append(str(e))
        keep: dict[str, tuple[str, str]] = {}
        docs: list[Document] = []
        for source, file in listing.items():
            old = items.get(source)
            try:
                st = file.stat()
            except OSError as e:
                result.skipped.append(f"{source}: cannot read file ({e.strerror})")
                if old:
                    keep[source] = old
                continue
            fingerprint = f"{st.st_mtime_ns}:{st.st_size}"
            if old and old[0] == fingerprint and old[1] in indexed:
                keep[source] = old
                result.unchanged += 1
                continue
            try:
                doc = read_file(file, self.settings.fetch)
            except SourceError as e:
                result.skipped.append(str(e))
                if old:  # keep the indexed version; read again next time
                    keep[source] = ("", old[1])
                continue
            docs.append(doc)
            keep[source] = (fingerprint, doc.article_id)
        # deleted files: tracked ones no longer listed, and articles under the folder whose
        # file is gone (indexed before the subscription)
        prefix = str(resolve_path(folder)).rstrip(os.sep) + os.sep
        gone = {a for src, (_fp, a) in items.items() if src not in listing}
        for article_id, source in indexed.items():
            if source.startswith(prefix) and source not in listing and not Path(source).exists():
                gone.add(article_id)
        gone -= {a for _fp, a in keep.values()}
        new = self._index(docs, result, status, folder.name)
        if gone:
            removed = self.pipeline.remove_articles(sorted(gone))
            result.removed = len(removed)
        with self.store.errors(), self.store.transaction() as c:
            self.store.replace_items(c, status.id, keep)
            self.store.set_title(c, status.id, folder.name)
            result.announced = self._announce(c, status, folder.name, new)

    # -- shared ------------------------------------------------------------------------------
    def _index(
        self, docs: Sequence[Document], result: SyncResult, status: SubscriptionStatus, origin: str
    ) -> list[Document]:
        """Index ``docs`` (unchanged content is skipped by hash); the documents new to the index.

        When they will be announced, the announcements are written down *before* the index
        commits them (the ``intents`` outbox, committed first): a process killed between the
        index's commit and the announcement queue's loses nothing; the next round or the next
        look at the queue finds the intents whose articles made it into the index and queues
        them (:meth:`_recover_intents`).
        """
        if not docs:
            return []
        if status.subscription.tags:  # the subscription's tags join each article's own
            extra = status.subscription.tags
            docs = [dataclasses.replace(d, tags=tuple(sorted({*d.tags, *extra}))) for d in docs]
        before = {r.id for r in self.pipeline.list_articles()}
        seen: set[str] = set()
        new = []
        for d in docs:
            if d.article_id not in before and d.article_id not in seen:
                seen.add(d.article_id)
                new.append(d)
        if new and status.subscription.channel and status.rounds > 0:
            with self.store.errors(), self.store.transaction() as c:
                self.store.add_intents(
                    c,
                    [
                        (
                            status.id,
                            status.subscription.channel,
                            d.article_id,
                            origin or status.subscription.label,
                            " ".join(d.title.split())[:300] or "Untitled",
                            http_link(d.url, d.source),
                            d.published,
                            iso_utc(self.clock()),
                        )
                        for d in new
                    ],
                )
        report = self.pipeline.add_documents(docs)
        result.added += report.added
        result.updated += report.updated
        result.unchanged += report.unchanged
        result.chunks_embedded += report.chunks_embedded
        result.new_articles = [d.article_id for d in new]
        return new

    def _announce(
        self,
        c: sqlite3.Connection,
        status: SubscriptionStatus,
        origin: str,
        new: Sequence[Document],
    ) -> int:
        """Queue announcements of ``new`` articles (not on a subscription's first sync)."""
        channel = status.subscription.channel
        if not channel or not new or status.rounds == 0:
            return 0
        queued = 0
        for d in new:
            queued += self._queue(
                c,
                channel,
                d.article_id,
                origin or status.subscription.label,
                " ".join(d.title.split())[:300] or "Untitled",
                http_link(d.url, d.source),
                d.published,
            )
            self.store.drop_intent(c, channel, d.article_id)
        cutoff = iso_utc(self.clock() - PENDING_DAYS * 86400)
        old = iso_utc(self.clock() - SENT_DAYS * 86400)
        self.store.prune_announcements(c, cutoff, old)
        return queued

    def _queue(
        self,
        c: sqlite3.Connection,
        channel: int,
        article_id: str,
        origin: str,
        title: str,
        link: str | None,
        published: str | None,
    ) -> int:
        """Queue one announcement (at most once per channel); 1 if it was new."""
        from index.search.summary import central_sentence

        summary: str | None = None
        try:
            summary = central_sentence(self.pipeline.store, article_id)
        except Exception:  # a summary is a nicety: announce without one
            log.warning("no summary for %s", article_id, exc_info=True)
        return self.store.queue(
            c, channel, article_id, origin, title, link, summary, published, iso_utc(self.clock())
        )

    def _recover_intents(self) -> int:
        """Queue the announcements a killed round wrote down but never queued: those whose
        article is in the index. An intent whose article is not (yet) there stays until a
        round indexes it, or for ``PENDING_DAYS`` at most."""
        if not self.store.exists():
            return 0
        with self.store.errors():
            rows = self.store.intents()
        if not rows:
            return 0
        stale = iso_utc(self.clock() - PENDING_DAYS * 86400)
        queued = 0
        with self.store.errors(), self.store.transaction() as c:
            for iid, channel, article_id, origin, title, link, published, created in rows:
                try:
                    self.pipeline.store.get_article(article_id)
                except ArticleNotFoundError:
                    if created >= stale:
                        continue  # a round (here or elsewhere) may still be indexing it
                else:
                    queued += self._queue(c, channel, article_id, origin, title, link, published)
                    log.info("queued the announcement of %s left by an interrupted round", title)
                self.store.delete_intent(c, iid)
        return queued

    # -- announcements -----------------------------------------------------------------------
    def pending_announcements(self, limit: int = 200) -> list[Announcement]:
        self._recover_intents()
        with self.store.errors():
            return self.store.pending(limit)

    def mark_announced(self, ids: Sequence[int]) -> None:
        if ids:
            with self.store.errors():
                self.store.mark_sent(ids, iso_utc(self.clock()))


def _lock_wait() -> float:
    return float(os.environ.get("NEWSDESK_LOCK_TIMEOUT", "600"))
