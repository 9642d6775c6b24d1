"""Issue 19, part B: the everyday features a new user expects (each section names its item)."""

from __future__ import annotations

import pytest

from index.cli import build_parser
from tests.conftest import ARTICLES, Nd
from tests.httpserver import LoopbackServer

# --------------------------------------------------------------------------- 9: --allow-host


def test_refusal_names_allow_host_option_and_env(nd: Nd) -> None:
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        r = nd("index", srv.url("/story"))
        assert srv.requests == []
    assert r.code == 1
    line = r.err.splitlines()[0]
    assert f"--allow-host 127.0.0.1:{srv.port}" in line
    assert "NEWSDESK_ALLOW_HOSTS" in line and "fetch.allow_hosts" in line


def test_allow_host_option_indexes_a_local_server(nd: Nd) -> None:
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        r = nd("index", "--allow-host", f"127.0.0.1:{srv.port}", srv.url("/story"))
        assert r.code == 0, r.err
        assert "1 added" in r.out
        # only the port named: another port of the same host is still refused
        r = nd("index", "--allow-host", "127.0.0.1", srv.url("/story"))
        assert r.code == 1 and "not on port" in r.err


def test_allow_hosts_environment_variable(nd: Nd, monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        monkeypatch.setenv("NEWSDESK_ALLOW_HOSTS", "intranet.example.org, 127.0.0.1:*")
        r = nd("index", srv.url("/story"))
    assert r.code == 0, r.err
    monkeypatch.setenv("NEWSDESK_ALLOW_HOSTS", "http://bad/")
    line = nd("stats").one_error_line()
    assert "NEWSDESK_ALLOW_HOSTS" in line and "'http://bad/'" in line


def test_allow_host_option_is_checked_and_in_help(
    nd: Nd, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["index", "--allow-host", "a b", "x"])
    assert e.value.code == 2
    assert "--allow-host" in capsys.readouterr().err
    index_help = build_parser()._subparsers._group_actions[0].choices["index"].format_help()  # type: ignore[union-attr]
    assert "--allow-host" in index_help and "NEWSDESK_ALLOW_HOSTS" in index_help
