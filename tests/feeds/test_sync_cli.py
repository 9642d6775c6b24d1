"""`newsdesk sync`, `subscriptions`, `subscribe`, `unsubscribe` in-process (hash embedder)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.cli import main
from tests.conftest import HASH_CONFIG, Nd, Run
from tests.fakes.feeds import FeedSite
from tests.fakes.http import LoopbackServer
from tests.feeds.test_sync import BRIDGE, FERRY, LIBRARY, MARKET


@pytest.fixture
def srv() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def site(srv: LoopbackServer) -> FeedSite:
    site = FeedSite(srv)
    site.publish("/bridge", "Bridge vote passes", BRIDGE)
    site.publish("/library", "Library reopens", LIBRARY)
    return site


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "watched"
    d.mkdir()
    (d / "ferry.txt").write_text("Second ferry\n\n" + FERRY, encoding="utf-8")
    return d


@pytest.fixture
def subs(nd: Nd, tmp_path: Path, site: FeedSite, folder: Path) -> Nd:
    """``nd`` with a config file that subscribes to the site's feed and the folder."""
    config = tmp_path / "subs.toml"
    config.write_text(
        HASH_CONFIG
        + '[fetch]\ntimeout = 2\nallow_hosts = ["127.0.0.1:*"]\n'
        + f'[[feeds]]\nurl = "{site.url}"\ninterval = 15\n'
        + '[[folders]]\npath = "watched"\ninterval = 1\n',
        encoding="utf-8",
    )

    def run(*args: str) -> Run:
        return nd(*args, config=config)

    return run


def test_sync_runs_every_subscription_and_reports_each(
    subs: Nd, site: FeedSite, folder: Path, srv: LoopbackServer
) -> None:
    r = subs("subscriptions")
    assert r.code == 0
    assert f"feed   {site.url}\n       Valmare Gazette" not in r.out  # not synced yet: no title
    assert "every 15 min · config file" in r.out and "last success never" in r.out

    r = subs("sync")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines == [
        f"feed   {site.url}: 2 added, 0 updated, 0 unchanged (2 passages embedded)",
        f"folder {folder.resolve()}: 1 added, 0 updated, 0 unchanged (1 passage embedded)",
    ]
    r = subs("sync")
    assert r.out.splitlines() == [
        f"feed   {site.url}: not modified",
        f"folder {folder.resolve()}: 0 added, 0 updated, 1 unchanged (0 passages embedded)",
    ]
    r = subs("sync", "--due")  # nothing is due yet
    assert r.code == 0 and r.out == ""

    site.publish("/market", "Market opens on Sundays", MARKET)
    (folder / "ferry.txt").unlink()
    site.status = 500
    r = subs("sync")
    assert r.code == 1
    assert r.out.splitlines() == [
        f"feed   {site.url}: error: HTTP 500 Internal Server Error",
        f"folder {folder.resolve()}: 0 added, 0 updated, 0 unchanged, 1 removed "
        "(0 passages embedded)",
    ]
    site.status = 200
    r = subs("sync", "--json")
    assert r.code == 0
    feed, watched = (json.loads(line) for line in r.out.splitlines())
    assert feed["added"] == 1 and feed["target"] == site.url and feed["ok"] is True
    assert watched["kind"] == "folder" and watched["removed"] == 0

    r = subs("subscriptions", "--json")
    listed = json.loads(r.out)
    assert [(s["kind"], s["origin"], s["articles"], s["failures"]) for s in listed] == [
        ("feed", "config", 3, 0),
        ("folder", "config", 0, 0),
    ]
    assert listed[0]["title"] == "Valmare Gazette" and listed[0]["last_error"].startswith(
        "HTTP 500"
    )
    r = subs("subscriptions")
    assert "Valmare Gazette · every 15 min · config file" in r.out
    assert "3 articles · last success" in r.out
    assert "last error" in r.out and "HTTP 500 Internal Server Error" in r.out

    r = subs("ask", "Which days will the covered market open?")
    assert r.code == 0 and "Market opens on Sundays" in r.out
    assert ", published 2024-09-" in r.out


def test_subscribe_and_unsubscribe_from_the_command_line(
    subs: Nd, srv: LoopbackServer, tmp_path: Path
) -> None:
    other = FeedSite(srv, path="/other.xml", title="Other news")
    other.publish("/ferry", "Second ferry for the summer", FERRY)
    r = subs("subscribe", other.url, "--interval", "20", "--channel", "1234")
    assert r.code == 0, r.err
    assert r.out == (
        f"Subscribed to Other news ({other.url}), every 20 min: 1 added, 0 updated, "
        "0 unchanged (1 passage embedded)\n"
    )
    r = subs("subscriptions", "--json")
    mine = [s for s in json.loads(r.out) if s["origin"] == "command"]
    assert [(s["target"], s["interval_minutes"], s["channel"]) for s in mine] == [
        (other.url, 20.0, "1234")
    ]
    r = subs("subscribe", other.url)
    assert r.code == 1 and r.err == f"newsdesk: error: {other.url}: already subscribed\n"
    r = subs("unsubscribe", "Other news")
    assert r.code == 0
    assert r.out == (
        f"Unsubscribed from Other news ({other.url}); its articles stay in the index (1 article)\n"
    )
    r = subs("unsubscribe", other.url)
    assert r.code == 1 and "no such subscription" in r.err
    r = subs("unsubscribe", str(tmp_path / "watched"))
    assert r.code == 1 and "declared in" in r.err and "remove it there" in r.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["subscribe", "ftp://example.org/feed"], "not an http(s) URL"),
        (["subscribe", "/no/such/folder"], "/no/such/folder: no such folder"),
        (["subscribe", "https://example.org/f", "--channel", "-5"], "not a Discord channel id"),
    ],
)
def test_subscribe_errors_are_one_line(subs: Nd, args: list[str], message: str) -> None:
    assert message in subs(*args).one_error_line()


def test_bad_interval_is_refused_by_the_parser(
    subs: Nd, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        subs("subscribe", "https://example.org/f", "--interval", "0")
    assert exit_info.value.code == 2
    assert "must be between 1 and 10080 minutes" in capsys.readouterr().err


def test_sync_without_subscriptions_says_how_to_add_one(nd: Nd, tmp_path: Path) -> None:
    r = nd("sync")
    assert r.code == 0 and "No subscriptions: declare [[feeds]] or [[folders]]" in r.out
    assert not (tmp_path / "data" / "subscriptions.db").exists()


def test_help_teaches_the_sync_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("sync", "subscriptions", "subscribe", "unsubscribe"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert f"usage: newsdesk {command}" in text
    with pytest.raises(SystemExit):
        main(["subscribe", "--help"])
    text = capsys.readouterr().out
    assert "newsdesk subscribe https://example.com/feed.xml --interval 15" in text
    assert "[[feeds]]" in text


_KILL_BEFORE_ANNOUNCING = """
import os, signal, sys
from index.feeds import engine as sync
from index.cli import main

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # the index has committed; the queue has not

sync.SyncEngine.{point} = killed
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("point", ["_announce", "_queue"])
def test_sigkill_between_indexing_and_announcing_loses_no_announcement(
    tmp_path: Path, nd: Nd, point: str
) -> None:
    """`newsdesk sync` killed (SIGKILL) after the index committed a new article and before
    its announcement was queued: the next round, or the bot's next look at the queue, still
    announces it, once."""
    import os
    import subprocess
    import sys

    from index.embedding.hashing import HashEmbedder
    from index.feeds.engine import SyncEngine
    from index.pipeline import Pipeline
    from tests.fakes.corpus import hash_settings

    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "ferry.txt").write_text("Second ferry\n\n" + FERRY, encoding="utf-8")
    config = tmp_path / "announce.toml"
    config.write_text(
        HASH_CONFIG + '[[folders]]\npath = "watched"\ninterval = 1\nchannel = 4242\n',
        encoding="utf-8",
    )
    data = tmp_path / "data"
    assert nd("sync", config=config).code == 0  # the first sync announces nothing
    (folder / "market.txt").write_text("Market opens on Sundays\n\n" + MARKET, encoding="utf-8")

    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    argv = ["--config", str(config), "--data-dir", str(data), "sync"]
    code = _KILL_BEFORE_ANNOUNCING.replace("{point}", point)
    r = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == -9, r.stderr[-2000:]
    titles = [a["title"] for a in json.loads(nd("articles", "--json", config=config).out)]
    assert "Market opens on Sundays" in titles  # killed after the index's commit

    settings = hash_settings(data, config)
    with Pipeline(settings, HashEmbedder()) as p:
        engine = SyncEngine(p)
        try:
            pending = engine.pending_announcements()
            assert [(a.channel, a.title) for a in pending] == [(4242, "Market opens on Sundays")]
            assert pending[0].summary  # with its one-sentence summary
            engine.mark_announced([a.id for a in pending])
            (res,) = engine.run_all()
            assert res.ok and engine.pending_announcements() == []  # once
        finally:
            engine.close()
