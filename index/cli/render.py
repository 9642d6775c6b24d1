"""What the CLI prints: answers and passages as text, terminal-safe output, progress bars.

Article titles, text and URLs come from anyone who publishes a page or a feed, so everything
printed goes through :class:`SafeOutput` (or :func:`stderr_line` for stderr).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from index.models import NOT_FOUND, Answer, Hit

if TYPE_CHECKING:
    from index.written.generate import GeneratedAnswer

# Terminal escape sequences: CSI (ESC [ ... final, or the 8-bit CSI), OSC (ESC ] ... BEL/ST, e.g.
# OSC 52 writes the clipboard), DCS/SOS/PM/APC strings, and two-character ESC sequences.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# what is left: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional
# overrides that make a terminal show text in another order than it is
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline
    kept): article titles, text and URLs come from anyone who publishes a page or a feed."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def _json_escape_controls(text: str) -> str:
    """JSON output: what ``json.dumps(ensure_ascii=False)`` leaves raw (DEL, C1 controls,
    bidirectional overrides; C0 is escaped already) as ``\\uXXXX`` -- the same JSON value,
    nothing a terminal acts on. They only occur inside strings, where the escape is valid."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeOutput(io.TextIOBase):
    """The stream every command prints to: control characters from article data never reach
    the terminal (stripped from text, escaped in JSON)."""

    def __init__(self, out: TextIO, json_output: bool = False) -> None:
        self._out = out
        self._clean = _json_escape_controls if json_output else terminal_safe

    def write(self, s: str) -> int:
        self._out.write(self._clean(s))
        return len(s)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return self._out.isatty()


def stderr_line(message: str) -> None:
    """One line to stderr, without control characters (it may quote a title or a URL)."""
    print(terminal_safe(message), file=sys.stderr)


class SafeFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


def wrap(text: str, indent: str = "  ") -> str:
    width = max(40, min(100, _term_width()) - len(indent))
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=indent, subsequent_indent=indent
    )


def _term_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def shown_source(h: Hit | Any) -> str:
    return str(h.url or shown_path(h.source))


def shown_path(source: str) -> str:
    """A file's path as the person would type it: relative to the working directory when the
    file is inside it (``samples/steam-engine.txt``), else as stored (absolute). ``--json``
    keeps the stored source."""
    path = Path(source)
    if not path.is_absolute():
        return source
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):  # outside the working directory, or no working directory
        return source


def dated(published: str | None) -> str:
    """``", published 2024-03-05"`` (the article's date), or nothing for undated articles."""
    return f", published {published[:10]}" if published else ""


def format_answer(ans: Answer, show_passages: bool = True, full: bool = False) -> str:
    lines = []
    if ans.smalltalk:
        from index.search.smalltalk import REPLIES

        return wrap(REPLIES.get(ans.smalltalk, REPLIES["noise"]), "")
    if ans.searched_as:  # misspelt words were corrected: say what was searched
        lines.append(wrap(f"Searched for: “{ans.searched_as}”", ""))
    if ans.follows_up:  # a follow-up: which earlier question its search built on
        lines.append(wrap(f"Following up on: “{ans.follows_up}”", ""))
    if ans.quote is None:
        lines.append(NOT_FOUND)
        if ans.suggestions:
            lines.append("Closest articles: " + "; ".join(ans.suggestions))
    else:
        q = ans.quote
        lines.append(wrap(f"“{q.text}”", "  > ").replace("  > ", "  > ", 1))
        lines.append(f"  — {q.title} ({shown_source(q)}){dated(q.published)}")
        for more in ans.also:  # the other parts of a multi-part question
            lines.append(wrap(f"“{more.text}”", "  > "))
            lines.append(f"  — {more.title} ({shown_source(more)}){dated(more.published)}")
    if show_passages and ans.passages:
        lines.append("")
        lines.append("Top passages:")
        for i, h in enumerate(ans.passages, 1):
            # no score: the fused rank score means nothing to a reader (the first passage's is
            # always 1.000, even when the answer is declined); --json has it
            lines.append(f"{i:>2}. {h.title}{dated(h.published)}")
            if full:  # the whole passage, its paragraphs kept
                lines += [wrap(para, "    ") for para in h.text.split("\n\n") if para.strip()]
                continue
            snippet = " ".join(h.text.split())
            if len(snippet) > 160:
                snippet = snippet[:157].rsplit(" ", 1)[0] + "…"
            lines.append(wrap(snippet, "    "))
    return "\n".join(lines)


def format_generated(gen: GeneratedAnswer, show_passages: bool = True) -> str:
    """A written answer, its sources and the extracted quote as evidence; a fallback prints
    exactly like ``ask`` without ``--generate``."""
    if gen.fell_back or not gen.text:
        return format_answer(gen.answer, show_passages)
    lines = [wrap(line) if line.strip() else "" for line in gen.text.split("\n")]
    if gen.citations:
        lines.append("")
        for c in gen.citations:
            lines.append(f"  [{c.n}] {c.hit.title} ({shown_source(c.hit)})")
    q = gen.answer.quote
    if q is not None:
        lines += [
            "",
            "  Evidence:",
            wrap(f"“{q.text}”", "  > "),
            f"  — {q.title} ({shown_source(q)})",
        ]
    quotes = sum(r.kind == "quote" for r in gen.removed)
    citations = sum(r.kind == "citation" for r in gen.removed)
    removed = []
    if quotes:
        removed.append(f"{quotes} unverifiable quote{'s' if quotes > 1 else ''}")
    if citations:
        removed.append(
            "1 citation of a missing passage"
            if citations == 1
            else f"{citations} citations of missing passages"
        )
    if removed:
        lines += ["", f"  (removed: {' and '.join(removed)}; see --json)"]
    return "\n".join(lines)


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not enabled:
            return
        bar = bars.get(stage)
        if bar is None:
            bar = tqdm(total=total, desc=stage, unit="", leave=False, file=sys.stderr, disable=None)
            bars[stage] = bar
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        shown = any(not bar.disable for bar in bars.values())
        for bar in bars.values():
            bar.close()
        # closing a bar below the first (leave=False) leaves the cursor at the end of a blanked
        # line: what is printed next would start in its last column and wrap ("I" / "ndexed")
        if shown:
            sys.stderr.write("\r")
            sys.stderr.flush()


@contextlib.contextmanager
def writing_status(enabled: bool) -> Iterator[Callable[[GeneratedAnswer], None] | None]:
    """While a written answer streams in: how much of it is verified so far, and for how long
    (on a terminal's stderr only; None when disabled or not a terminal: no streaming then)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(
        total=None,
        desc="writing an answer",
        bar_format="{desc}… {n} characters verified [{elapsed}]",
        leave=False,
        file=sys.stderr,
    )

    def update(gen: GeneratedAnswer) -> None:
        bar.n = len(gen.text or "")
        bar.refresh()

    stop = threading.Event()

    def tick() -> None:  # the elapsed time keeps moving while the model thinks
        while not stop.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=tick, name="newsdesk-writing", daemon=True)
    ticker.start()
    try:
        yield update
    finally:
        stop.set()
        ticker.join()
        bar.close()


def plural(n: int, noun: str) -> str:
    """``"1 article"``, ``"1,204 articles"``: a count with its noun."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
