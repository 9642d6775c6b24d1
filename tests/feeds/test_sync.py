"""Subscriptions (index/feeds/engine.py): feeds that change between polls, folders whose files
change between syncs, backoff, the announcement queue, the config file, the one-sentence summary."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.chunking import all_sentences
from index.config import FeedSubscription, FolderSubscription, Settings
from index.embedding.hashing import HashEmbedder
from index.errors import NewsdeskError, SourceError
from index.feeds.engine import SyncEngine
from index.pipeline import Pipeline
from index.search.summary import central_index, central_sentence
from tests.fakes.feeds import FeedSite
from tests.fakes.http import LoopbackServer

pytestmark = pytest.mark.backends  # every test here runs on FAISS and on Milvus Lite

BRIDGE = (
    "The council of Valmare voted seven to two for a new bridge over the Tern river. "
    "Construction starts in May and should take two years.\n\n"
    "The mayor said the bridge would cut the drive to the harbour by twenty minutes."
)
LIBRARY = (
    "The public library of Valmare reopened on Monday after an eighteen month renovation. "
    "Readers can borrow books again from nine in the morning.\n\n"
    "A new reading room for children opened on the ground floor."
)
MARKET = (
    "The covered market will open on Sundays from next month, the traders association said. "
    "Farmers from the valley will sell cheese, honey and apples."
)
FERRY = (
    "A second ferry will sail between Valmare and the island of Tern during the summer. "
    "Tickets go on sale in April at the harbour office."
)


@pytest.fixture
def net(settings: Settings) -> Settings:
    settings.fetch.allow_hosts = ["127.0.0.1:*"]
    settings.fetch.timeout = 3.0
    return settings


@pytest.fixture
def srv() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(net: Settings, pipeline: Pipeline, clock: Clock) -> Iterator[SyncEngine]:
    e = SyncEngine(pipeline, clock=clock)
    yield e
    e.close()


def texts(pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    """source -> (title, text) of every indexed article."""
    return {r.source: (r.title, pipeline.get_article(r.id).text) for r in pipeline.list_articles()}


def chunks_of(pipeline: Pipeline, source: str) -> int:
    return next(r.chunk_count for r in pipeline.list_articles() if r.source == source)


@pytest.mark.parametrize(
    ("kind", "validators"), [("rss", "etag"), ("atom", "date"), ("rss", "none")]
)
def test_feed_rounds_index_new_and_edited_entries_and_survive_errors(
    srv: LoopbackServer,
    engine: SyncEngine,
    pipeline: Pipeline,
    fake_embedder: HashEmbedder,
    kind: str,
    validators: str,
) -> None:
    site = FeedSite(srv, kind=kind, validators=validators)  # type: ignore[arg-type]
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    site.publish("/library", "Library reopens", LIBRARY)
    site.link_only("Gone for good", "/missing")  # answers 404, no text in the feed
    a1, a2, a3 = srv.url("/bridge"), srv.url("/library"), srv.url("/market")

    # round 1 (subscribe): every readable entry is indexed, the 404 is skipped and noted
    status, res = engine.subscribe("feed", site.url)
    assert res.ok and (res.added, res.updated) == (2, 0)
    assert res.skipped == [f"{srv.url('/missing')}: HTTP 404 Not Found"]
    assert texts(pipeline) == {a1: ("Bridge vote passes", BRIDGE), a2: ("Library reopens", LIBRARY)}
    assert status.title == "Valmare Gazette" and status.articles == 2 and status.failures == 0
    assert status.last_warning == f"{srv.url('/missing')}: HTTP 404 Not Found"
    embedded = fake_embedder.texts_embedded

    # round 2: nothing changed -- a conditional request (304) or, without validators, an
    # unchanged feed whose known entries are not fetched again
    pages = len(srv.requests_to("/bridge")) + len(srv.requests_to("/library"))
    (res,) = engine.run_all()
    feed_req = srv.requests_to("/feed.xml")[-1]
    if validators == "etag":
        assert feed_req.headers["if-none-match"].startswith('"') and res.not_modified
    elif validators == "date":
        assert feed_req.headers["if-modified-since"].endswith("GMT") and res.not_modified
    else:
        assert "if-none-match" not in feed_req.headers and not res.not_modified
        assert (res.added, res.updated, res.unchanged) == (0, 0, 2)
    assert res.ok and fake_embedder.texts_embedded == embedded
    assert len(srv.requests_to("/bridge")) + len(srv.requests_to("/library")) == pages

    # round 3: a new entry: only its page is fetched and only its passages embedded
    site.publish("/market", "Market opens on Sundays", MARKET)
    (res,) = engine.run_all()
    assert res.ok and (res.added, res.updated, res.unchanged) == (1, 0, 2)
    assert len(srv.requests_to("/market")) == 1
    assert len(srv.requests_to("/bridge")) + len(srv.requests_to("/library")) == pages
    assert fake_embedder.texts_embedded - embedded == res.chunks_embedded
    assert res.chunks_embedded == chunks_of(pipeline, a3)
    assert set(texts(pipeline)) == {a1, a2, a3}
    embedded = fake_embedder.texts_embedded

    # round 4: an edited entry: fetched again and re-embedded alone
    edited = BRIDGE.replace("seven to two", "eight to one")
    site.edit("/bridge", title="Bridge vote passes by a wide margin", text=edited)
    (res,) = engine.run_all()
    assert res.ok and (res.added, res.updated, res.unchanged) == (0, 1, 2)
    assert texts(pipeline)[a1] == ("Bridge vote passes by a wide margin", edited)
    assert fake_embedder.texts_embedded - embedded == chunks_of(pipeline, a1)
    assert len(srv.requests_to("/library")) == 1 and len(srv.requests_to("/market")) == 1
    before = texts(pipeline)
    generation = pipeline.store.generation()

    # round 5: the server fails; round 6: malformed XML -- recorded, the index untouched
    site.status = 500
    (res,) = engine.run_all()
    assert not res.ok and res.error == "HTTP 500 Internal Server Error"
    site.status, site.malformed = 200, True
    (res,) = engine.run_all()
    assert not res.ok and res.error is not None
    assert res.error.startswith("not a valid RSS or Atom feed")
    (status,) = engine.statuses()
    assert status.failures == 2 and status.last_error == res.error
    assert status.last_error_at is not None and status.articles == 3
    assert texts(pipeline) == before and pipeline.store.generation() == generation

    # round 7: the feed is back: success resets the failures, nothing is re-embedded
    site.malformed = False
    embedded = fake_embedder.texts_embedded
    (res,) = engine.run_all()
    assert res.ok and res.added == 0 and fake_embedder.texts_embedded == embedded
    (status,) = engine.statuses()
    assert status.failures == 0 and status.rounds == 5


def test_one_failing_feed_never_stops_the_others(
    srv: LoopbackServer, engine: SyncEngine, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = FeedSite(srv, path="/bad.xml", title="Bad news")
    bad.publish("/bridge", "Bridge vote passes", BRIDGE)
    odd = FeedSite(srv, path="/odd.xml", title="Odd news")
    odd.publish("/ferry", "Second ferry for the summer", FERRY)
    good = FeedSite(srv, path="/good.xml", title="Good news")
    good.publish("/library", "Library reopens", LIBRARY)
    for site in (bad, odd, good):
        engine.subscribe("feed", site.url)
    bad.status = 500
    good.publish("/market", "Market opens on Sundays", MARKET)

    import index.ingest.feeds

    real = index.ingest.feeds.poll_feed

    def poll(url: str, *args: object, **kwargs: object) -> object:
        if url.endswith("/odd.xml"):
            raise RuntimeError("a bug")
        return real(url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(index.ingest.feeds, "poll_feed", poll)
    results = {r.target.rsplit("/", 1)[-1]: r for r in engine.run_all()}
    assert not results["bad.xml"].ok and "HTTP 500" in (results["bad.xml"].error or "")
    assert results["odd.xml"].error == "unexpected error (RuntimeError); details in the log"
    assert results["good.xml"].ok and results["good.xml"].added == 1
    assert srv.url("/market") in texts(pipeline)
    failing = {s.subscription.target.rsplit("/", 1)[-1] for s in engine.statuses() if s.failures}
    assert failing == {"bad.xml", "odd.xml"}


def test_due_times_and_backoff(
    srv: LoopbackServer, engine: SyncEngine, net: Settings, clock: Clock
) -> None:
    net.sync.max_backoff = 30
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    status, _ = engine.subscribe("feed", site.url, interval=10)
    assert status.next_due == clock.now + 600
    assert engine.run_due() == [] and engine.next_due() == clock.now + 600
    clock.now += 601
    assert [r.ok for r in engine.run_due()] == [True]
    site.status = 503
    waits = []
    for _ in range(4):
        clock.now = engine.next_due() or 0
        (res,) = engine.run_due()
        assert not res.ok and res.error == "HTTP 503 Service Unavailable"
        waits.append(((engine.next_due() or 0) - clock.now) / 60)
        assert engine.run_due() == []  # not due again before its backoff
    assert waits == [20, 30, 30, 30]  # twice the interval, doubling, capped at max_backoff
    site.status = 200
    clock.now = engine.next_due() or 0
    (res,) = engine.run_due()
    assert res.ok and (engine.next_due() or 0) - clock.now == 600


def test_a_busy_index_is_retried_not_counted_as_a_failure(
    srv: LoopbackServer, engine: SyncEngine, pipeline: Pipeline, clock: Clock
) -> None:
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    engine.subscribe("feed", site.url)
    site.publish("/library", "Library reopens", LIBRARY)
    clock.now += 3600
    with pipeline.writer():  # e.g. /add or /reindex running
        (res,) = engine.run_due()
    assert res.busy and res.ok
    (status,) = engine.statuses()
    assert status.failures == 0 and status.next_due <= clock.now  # still due
    (res,) = engine.run_due()
    assert res.ok and res.added == 1


def test_announcements_are_queued_once_per_new_article(
    srv: LoopbackServer, engine: SyncEngine, pipeline: Pipeline
) -> None:
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    engine.subscribe("feed", site.url, channel=42)
    assert engine.pending_announcements() == []  # the first sync indexes without announcing

    site.publish("/library", "Library reopens", LIBRARY)
    site.publish("/market", "Market opens on Sundays", MARKET)
    (res,) = engine.run_all()
    assert res.added == 2 and res.announced == 2
    pending = engine.pending_announcements()
    assert [(a.channel, a.title, a.link, a.origin) for a in pending] == [
        (42, "Market opens on Sundays", srv.url("/market"), "Valmare Gazette"),
        (42, "Library reopens", srv.url("/library"), "Valmare Gazette"),
    ]
    by_id = {r.source: r.id for r in pipeline.list_articles()}
    for a in pending:
        assert a.article_id == by_id[a.link or ""]
        assert a.summary == central_sentence(pipeline.store, a.article_id)
        assert a.summary and a.summary in (MARKET + LIBRARY).replace("\n\n", " ")
        assert a.published and a.published.startswith("2024-09-")

    engine.run_all()  # nothing new: nothing queued twice
    assert len(engine.pending_announcements()) == 2
    engine.mark_announced([a.id for a in pending])
    assert engine.pending_announcements() == []

    site.edit("/market", title="Market opens on Sundays and holidays", text=MARKET + " Also.")
    pipeline.add_documents([])  # no-op
    (res,) = engine.run_all()
    assert res.updated == 1 and engine.pending_announcements() == []  # edits are not news

    # an entry whose article is already indexed (e.g. by /add) is not news either
    srv.route("/ferry", "<html><head><title>Ferry</title></head><body><p>" + FERRY + "</p>")
    pipeline.add([srv.url("/ferry")])
    site.link_only("Second ferry for the summer", "/ferry")
    (res,) = engine.run_all()
    assert res.unchanged >= 1 and res.new_articles == []
    assert engine.pending_announcements() == []


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_folder_files_added_edited_and_deleted(
    tmp_path: Path, engine: SyncEngine, pipeline: Pipeline, fake_embedder: HashEmbedder
) -> None:
    folder = tmp_path / "watched"
    a = write(folder, "bridge.txt", "Bridge vote passes\n\n" + BRIDGE)
    b = write(folder, "sub/library.md", "---\ntitle: Library reopens\n---\n" + LIBRARY)
    outside = write(tmp_path / "elsewhere", "ferry.txt", "Ferry\n\n" + FERRY)
    pipeline.add([str(outside)])
    status, res = engine.subscribe("folder", str(folder))
    assert res.ok and res.added == 2 and status.title == "watched"
    assert status.subscription.target == str(folder.resolve())
    embedded = fake_embedder.texts_embedded

    (res,) = engine.run_all()  # unchanged files are not even read
    assert (res.added, res.updated, res.unchanged, res.removed) == (0, 0, 2, 0)
    os.utime(a, None)  # touched, same content: read again, not re-embedded
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    (res,) = engine.run_all()
    assert (res.added, res.updated, res.unchanged) == (0, 0, 2)
    assert fake_embedder.texts_embedded == embedded

    c = write(folder, "market.txt", "Market opens on Sundays\n\n" + MARKET)
    a.write_text("Bridge vote passes\n\n" + BRIDGE + " Tolls will be free.", encoding="utf-8")
    b.unlink()
    write(folder, "empty.txt", "")  # unreadable: skipped, nothing else affected
    (res,) = engine.run_all()
    assert res.ok and (res.added, res.updated, res.removed) == (1, 1, 1)
    assert res.skipped and "file is empty" in res.skipped[0]
    src = {str(p.resolve()) for p in (a, c, outside)}
    assert set(texts(pipeline)) == src
    assert texts(pipeline)[str(a.resolve())][1].endswith("Tolls will be free.")
    assert fake_embedder.texts_embedded - embedded == chunks_of(
        pipeline, str(a.resolve())
    ) + chunks_of(pipeline, str(c.resolve()))

    # the folder disappears (unmounted?): an error, and nothing is removed
    folder.rename(tmp_path / "moved")
    (res,) = engine.run_all()
    assert not res.ok and res.error == "folder not found (nothing was removed from the index)"
    assert set(texts(pipeline)) == src


def test_folder_sync_removes_deleted_files_indexed_before_the_subscription(
    tmp_path: Path, engine: SyncEngine, pipeline: Pipeline
) -> None:
    folder = tmp_path / "notes"
    a = write(folder, "bridge.txt", "Bridge\n\n" + BRIDGE)
    b = write(folder, "ferry.txt", "Ferry\n\n" + FERRY)
    pipeline.add([str(folder)])
    b.unlink()
    _status, res = engine.subscribe("folder", str(folder))
    assert res.removed == 1 and res.unchanged == 1
    assert set(texts(pipeline)) == {str(a.resolve())}


def test_subscribe_refuses_what_it_cannot_read_and_keeps_nothing(
    srv: LoopbackServer, engine: SyncEngine, net: Settings, tmp_path: Path
) -> None:
    srv.route("/page.html", "<html><head><title>A page</title></head><body><p>Hi.</p></body>")
    with pytest.raises(SourceError, match=r"not an RSS or Atom feed \(the address serves a web"):
        engine.subscribe("feed", srv.url("/page.html"))
    with pytest.raises(SourceError, match="HTTP 404 Not Found"):
        engine.subscribe("feed", srv.url("/nothing.xml"))
    with pytest.raises(SourceError, match="no such folder"):
        engine.subscribe("folder", str(tmp_path / "nope"))
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    net.fetch.allow_hosts = []
    with pytest.raises(SourceError, match="loopback address"):
        engine.subscribe("feed", site.url)
    assert engine.statuses() == []
    net.fetch.allow_hosts = ["127.0.0.1:*"]
    engine.subscribe("feed", site.url + "#top")
    with pytest.raises(SourceError, match="already subscribed"):
        engine.subscribe("feed", site.url)
    (status,) = engine.statuses()
    assert status.subscription.target == site.url and status.subscription.interval == 30


def test_config_subscriptions_are_reconciled_and_cannot_be_unsubscribed(
    srv: LoopbackServer, net: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    other = FeedSite(srv, path="/other.xml", title="Other")
    other.publish("/ferry", "Second ferry", FERRY)
    folder = tmp_path / "watched"
    write(folder, "market.txt", "Market\n\n" + MARKET)
    net.feeds = [FeedSubscription(url=site.url, interval=15, channel=7)]
    net.folders = [FolderSubscription(path=folder)]
    engine = SyncEngine(pipeline)
    engine.subscribe("feed", other.url)
    statuses = engine.statuses()
    assert [(s.subscription.kind, s.subscription.origin) for s in statuses] == [
        ("feed", "config"),
        ("folder", "config"),
        ("feed", "command"),
    ]
    assert statuses[0].subscription.channel == 7 and statuses[0].subscription.interval == 15
    assert all(r.ok for r in engine.run_all())
    with pytest.raises(SourceError, match="declared in the config file"):
        engine.unsubscribe(site.url)
    assert engine.find("Valmare Gazette").subscription.target == site.url
    assert engine.find(f"#{statuses[2].id}").subscription.target == other.url
    engine.close()

    net.feeds = []  # removed from the config file: dropped at the next start
    engine = SyncEngine(pipeline)
    assert [s.subscription.target for s in engine.statuses()] == [str(folder), other.url]
    gone = engine.unsubscribe(other.url)
    assert gone.articles == 1
    assert [s.subscription.target for s in engine.statuses()] == [str(folder)]
    assert srv.url("/ferry") in texts(pipeline)  # its articles stay
    with pytest.raises(SourceError, match="no such subscription"):
        engine.unsubscribe(other.url)
    engine.close()


def test_no_subscriptions_creates_no_database(pipeline: Pipeline) -> None:
    engine = SyncEngine(pipeline)
    assert engine.statuses() == [] and engine.run_all() == [] and engine.next_due() is None
    assert engine.pending_announcements() == []
    assert not (pipeline.data_dir / "subscriptions.db").exists()
    engine.close()


def test_a_damaged_subscription_database_is_one_clear_error(pipeline: Pipeline) -> None:
    pipeline.data_dir.mkdir(parents=True, exist_ok=True)
    (pipeline.data_dir / "subscriptions.db").write_bytes(b"not a database at all" * 100)
    engine = SyncEngine(pipeline)
    with pytest.raises(NewsdeskError, match=r"subscription database .* is damaged"):
        engine.statuses()
    engine.close()


def test_rounds_do_not_overlap(srv: LoopbackServer, engine: SyncEngine, clock: Clock) -> None:
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    engine.subscribe("feed", site.url)
    clock.now += 3600
    entered, release = threading.Event(), threading.Event()
    import index.ingest.feeds

    real = index.ingest.feeds.poll_feed

    def slow(*args: object, **kwargs: object) -> object:
        entered.set()
        release.wait(10)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    index.ingest.feeds.poll_feed = slow  # type: ignore[assignment]
    try:
        results: list[object] = []
        t = threading.Thread(target=lambda: results.extend(engine.run_due()))
        t.start()
        assert entered.wait(10)
        assert engine.run_due() == []  # a second round while one runs does nothing
        release.set()
        t.join(10)
    finally:
        index.ingest.feeds.poll_feed = real
    assert len(results) == 1


# -- the one-sentence summary ---------------------------------------------------------------------


def test_central_index_is_the_row_closest_to_the_mean() -> None:
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    mid = (a + b) / np.linalg.norm(a + b)
    assert central_index(np.vstack([a, b, mid])) == 2
    assert central_index(np.vstack([a, b, mid]), [True, True, False]) in (0, 1)
    assert central_index(np.vstack([a, b, mid]), [False, False, False]) == 2  # none eligible
    assert central_index(np.zeros((0, 3))) == -1
    assert central_index(np.vstack([a, a * 2, b])) in (0, 1)


def test_central_sentence_is_the_sentence_most_like_the_article(pipeline: Pipeline) -> None:
    from index.models import Document

    s1 = "The harbour cranes were sold to a Dutch shipping firm on Monday."
    s2 = "Dock workers in Valmare protested against the new owners at the gate."
    s3 = "Valmare dock workers protested when the harbour cranes were sold to the firm."
    short = "Fine."
    text = f"{s1} {short} {s2}\n\n{s3}"
    doc = Document("/tmp/cranes.txt", "Cranes", text)
    pipeline.add_documents([doc])
    assert central_sentence(pipeline.store, doc.article_id) == s3
    assert central_sentence(pipeline.store, "no-such-id") is None
    spans = all_sentences(text)
    assert s3 in [text[a:b] for a, b in spans]


def test_a_shorter_interval_in_the_config_takes_effect_at_once(
    srv: LoopbackServer, net: Settings, pipeline: Pipeline, clock: Clock
) -> None:
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    net.feeds = [FeedSubscription(url=site.url, interval=60)]
    engine = SyncEngine(pipeline, clock=clock)
    assert [r.ok for r in engine.run_all()] == [True]
    assert engine.next_due() == clock.now + 3600
    engine.close()
    net.feeds = [FeedSubscription(url=site.url, interval=5, channel=9)]
    engine = SyncEngine(pipeline, clock=clock)
    (status,) = engine.statuses()
    assert status.next_due == clock.now + 300 and status.subscription.channel == 9
    assert status.rounds == 1 and status.articles == 1  # the same subscription, state kept
    engine.close()


def test_symlink_loops_in_a_watched_folder_are_skipped_every_round(
    engine: SyncEngine, pipeline: Pipeline, tmp_path: Path
) -> None:
    """A watched folder with symlink loops keeps syncing its other files, round after round,
    with a note for each loop."""
    from tests.cli.test_cli import _symlink_loops

    folder = tmp_path / "watched"
    write(folder, "bridge.txt", "Bridge vote passes\n\n" + BRIDGE)
    _symlink_loops(folder)
    _status, res = engine.subscribe("folder", str(folder))
    assert res.ok, res.error
    assert res.added == 1
    assert sum("symlink loop" in note for note in res.skipped) == 4
    write(folder, "market.txt", "Market opens on Sundays\n\n" + MARKET)
    (res,) = engine.run_all()
    assert res.ok and res.added == 1, res.error
    assert sum("symlink loop" in note for note in res.skipped) == 4
    assert len(pipeline.list_articles()) == 2
