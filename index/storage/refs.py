"""How a person names an article, whatever the store: its id, source (path or URL), URL, an
id prefix of a few hex digits (as git takes a commit's) or its exact title. The store answers
lookups (:data:`Lookup`); the order of the attempts and the errors are the same for all.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

from index.errors import ArticleNotFoundError


def article_refs(ref: str) -> tuple[str, list[str]]:
    """``ref`` stripped, and what it may name as an id or source: itself and, read as a path,
    its resolved form. An empty ``ref`` is an error."""
    ref = ref.strip()
    if not ref:
        raise ArticleNotFoundError("give an article id, title, path or URL")
    candidates = [ref]
    with contextlib.suppress(OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop
        candidates.append(str(Path(ref).expanduser().resolve()))
    return ref, candidates


# an article id prefix, as git takes a commit's: at least this many of its hex digits
MIN_ID_PREFIX = 4
_ID_PREFIX = re.compile(rf"[0-9a-f]{{{MIN_ID_PREFIX},}}")

# how a store answers :func:`resolve_article`: ``(kind, value)`` -> matching ``(id, title)``s;
# kind "key": id or source equal to value; "url": url equal to value; "prefix": id starting
# with value; "title": title equal to value, ignoring case
Lookup = Callable[[str, str], "list[tuple[str, str]]"]


def resolve_article(ref: str, lookup: Lookup) -> str:
    """The id of the one article ``ref`` names: its id, source (path or URL), URL (front
    matter, canonical link, feed link), an id prefix of 4+ hex digits, or its exact title
    (ignoring case). Several matches are an error that lists them, as is no match."""
    ref, candidates = article_refs(ref)
    steps = [("key", c) for c in dict.fromkeys(candidates)] + [("url", ref)]
    if _ID_PREFIX.fullmatch(ref.lower()):
        steps.append(("prefix", ref.lower()))
    steps.append(("title", ref))
    for kind, value in steps:
        rows = sorted(dict(lookup(kind, value)).items())
        if len(rows) == 1:
            return rows[0][0]
        if len(rows) > 1:
            shown = "; ".join(f"{i} ({t})" for i, t in rows[:10])
            more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            what = "are titled" if kind == "title" else "match"
            raise ArticleNotFoundError(
                f'several articles {what} "{ref}"; give one of these ids: {shown}{more}'
            )
    raise ArticleNotFoundError(
        f'no article matches "{ref}" (try `newsdesk articles` for ids and titles)'
    )
