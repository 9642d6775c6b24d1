"""Tags and scopes from the command line: `index --tag`, front matter `tags:`, `subscribe
--tag` and [[folders]] tags, `ask`/`search --scope` / `--tag`, `newsdesk scopes`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import HASH_CONFIG, Nd

BREAD = "Bakery wins bread prize\n\nA bakery in Lyon won the national bread prize on Sunday."
COMET = "Comet seen over Tern\n\nAstronomers saw a bright comet over Tern on Friday."
FERRY = "Ferry line opens\n\nA new ferry line to the island of Tern opened on Monday."


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    d = tmp_path / "desk"
    (d / "food").mkdir(parents=True)
    (d / "science").mkdir()
    (d / "food" / "bread.txt").write_text(BREAD, encoding="utf-8")
    (d / "science" / "comet.md").write_text(
        "---\ntitle: Comet seen over Tern\ntags: [Science, space]\n---\n"
        "Astronomers saw a bright comet over Tern on Friday.",
        encoding="utf-8",
    )
    (d / "ferry.txt").write_text("---\ntags: transport, local\n---\n" + FERRY, encoding="utf-8")
    return d


def config_with(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "scoped.toml"
    p.write_text(HASH_CONFIG + extra, encoding="utf-8")
    return p


def articles(nd: Nd, **kw: object) -> dict[str, list[str]]:
    r = nd("articles", "--json", **kw)
    assert r.code == 0, r.err
    return {a["title"]: a["tags"] for a in json.loads(r.out)}


def test_tags_from_the_flag_and_front_matter(nd: Nd, desk: Path) -> None:
    r = nd("index", "--tag", "Desk", str(desk))
    assert r.code == 0, r.err
    assert articles(nd) == {
        "Bakery wins bread prize": ["desk"],
        "Comet seen over Tern": ["desk", "science", "space"],
        "Ferry line opens": ["desk", "local", "transport"],
    }
    # the front matter of a text file is not part of its text
    r = nd("article", "Ferry line opens", "--text")
    assert r.out.strip() == FERRY.split("\n\n", 1)[1]
    r = nd("articles")
    assert "(1 passage)  [desk, science, space]" in r.out
    r = nd("article", "Comet seen over Tern")
    assert "  tags      desk, science, space" in r.out
    assert json.loads(nd("article", "--json", "Comet seen over Tern").out)["tags"] == [
        "desk",
        "science",
        "space",
    ]
    # indexing again without the flag takes it off (the tags are part of the article)
    nd("index", str(desk / "food"))
    assert articles(nd)["Bakery wins bread prize"] == []


def test_bad_tags_are_one_line_errors(nd: Nd, desk: Path) -> None:
    line = nd("index", "--tag", "#x", str(desk)).one_error_line()
    assert "--tag: bad tag '#x'" in line
    (desk / "bad.md").write_text('---\ntags: ["a,b"]\n---\nSome text here.', encoding="utf-8")
    r = nd("index", str(desk / "bad.md"))
    assert r.code == 1 and "front matter: bad tag" in r.err and "Traceback" not in r.err


def test_ask_and_search_in_a_scope(nd: Nd, desk: Path, tmp_path: Path) -> None:
    nd("index", str(desk))
    cfg = config_with(
        tmp_path,
        f'\n[[scopes]]\nname = "science"\nchannels = [42]\ntags = ["science"]\n'
        f'\n[[scopes]]\nname = "food"\nfolders = ["{desk / "food"}"]\n',
    )
    q = "Who won the national bread prize?"
    plain = json.loads(nd("ask", "--json", q, config=cfg).out)
    assert plain["passages"][0]["title"] == "Bakery wins bread prize"
    scoped = json.loads(nd("ask", "--json", "--scope", "science", q, config=cfg).out)
    assert {p["title"] for p in scoped["passages"]} == {"Comet seen over Tern"}
    food = json.loads(nd("search", "--json", "--scope", "Food", "Tern", config=cfg).out)
    assert {p["title"] for p in food["passages"]} <= {"Bakery wins bread prize"}
    tagged = json.loads(nd("search", "--json", "--tag", "transport", "Tern", config=cfg).out)
    assert {p["title"] for p in tagged["passages"]} == {"Ferry line opens"}
    both = json.loads(
        nd("search", "--json", "--scope", "science", "--tag", "local", "Tern", config=cfg).out
    )
    assert {p["title"] for p in both["passages"]} == {"Comet seen over Tern", "Ferry line opens"}
    # batch mode in a scope
    r = nd("ask", "--json", "--scope", "science", stdin=f"{q}\n\n", config=cfg)
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert {p["title"] for p in rows[0]["passages"]} == {"Comet seen over Tern"}
    assert "error" in rows[1]
    line = nd("ask", "--scope", "nope", q, config=cfg).one_error_line()
    assert "no scope named 'nope'" in line and "science, food" in line
    # without the new flags, the output is what it was
    assert nd("ask", q, config=cfg).out == nd("ask", q).out


def test_scopes_command(nd: Nd, desk: Path, tmp_path: Path) -> None:
    assert "No scopes" in nd("scopes").out
    nd("index", str(desk))
    cfg = config_with(
        tmp_path,
        '\n[[scopes]]\nname = "science"\nchannels = [42, 43]\ntags = ["science"]\n'
        'articles = ["No such article"]\n',
    )
    r = nd("scopes", config=cfg)
    assert r.code == 0
    assert "science  (tags: science · articles: No such article)  channels: 42, 43" in r.out
    assert "  problem: no article" in r.out
    data = json.loads(nd("scopes", "--json", config=cfg).out)
    assert data["scopes"][0]["channels"] == ["42", "43"] and data["bindings"] == []
    assert data["scopes"][0]["problems"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[scopes]]\ntags = ["x"]\n', "scopes[0].name is missing"),
        ('[[scopes]]\nname = "a"\n', "scopes[0] (a) selects nothing"),
        ('[[scopes]]\nname = "a"\ntags = ["#x"]\n', "scopes[0].tags: bad tag"),
        (
            '[[scopes]]\nname = "a"\ntags = ["x"]\n[[scopes]]\nname = "A"\ntags = ["y"]\n',
            "scopes[1].name must be a name used once",
        ),
        (
            '[[scopes]]\nname = "a"\nchannels = [1]\ntags = ["x"]\n'
            '[[scopes]]\nname = "b"\nchannels = [1]\ntags = ["y"]\n',
            "scopes[1].channels must be channels bound to one scope each",
        ),
        ('[[folders]]\npath = "."\ntags = ["a b c", "#"]\n', "folders[0].tags: bad tag"),
    ],
)
def test_scope_config_errors(nd: Nd, tmp_path: Path, extra: str, message: str) -> None:
    line = nd("scopes", config=config_with(tmp_path, "\n" + extra)).one_error_line()
    assert message in line, line


def test_subscription_tags(nd: Nd, desk: Path, tmp_path: Path) -> None:
    r = nd("subscribe", str(desk / "food"), "--tag", "Kitchen", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["subscribed"]["tags"] == ["kitchen"]
    assert articles(nd)["Bakery wins bread prize"] == ["kitchen"]
    cfg = config_with(tmp_path, f'\n[[folders]]\npath = "{desk / "science"}"\ntags = ["Lab"]\n')
    assert nd("sync", config=cfg).code == 0
    assert articles(nd, config=cfg)["Comet seen over Tern"] == ["lab", "science", "space"]
    # a scope by subscription: the folder's articles
    cfg2 = config_with(
        tmp_path,
        f'\n[[folders]]\npath = "{desk / "science"}"\ntags = ["Lab"]\n'
        f'\n[[scopes]]\nname = "sub"\nfeeds = ["{desk / "food"}"]\n',
    )
    hits = json.loads(nd("search", "--json", "--scope", "sub", "Tern comet bread", config=cfg2).out)
    assert {p["title"] for p in hits["passages"]} == {"Bakery wins bread prize"}


def test_brief_in_a_scope(nd: Nd, desk: Path, tmp_path: Path) -> None:
    nd("index", str(desk))
    cfg = config_with(tmp_path, '\n[[scopes]]\nname = "science"\ntags = ["science"]\n')
    every = json.loads(nd("brief", "--json", config=cfg).out)
    assert every["total"] == 3
    scoped = json.loads(nd("brief", "--json", "--scope", "science", config=cfg).out)
    assert [a["title"] for a in scoped["articles"]] == ["Comet seen over Tern"]
    tagged = json.loads(nd("brief", "--json", "--tag", "transport", config=cfg).out)
    assert [a["title"] for a in tagged["articles"]] == ["Ferry line opens"]
    line = nd("brief", "--scope", "nope", config=cfg).one_error_line()
    assert "nope" in line
