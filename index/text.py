"""Small text helpers every layer may use (ground floor: imports nothing of newsdesk).

One copy of each: sizes for a person, an error's first line, any text squeezed onto one line.
"""

from __future__ import annotations


def format_size(n: int) -> str:
    """``10000000`` → ``"10 MB"``; decimal units, as people read them."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g} MB"
    if n >= 1_000:
        return f"{n / 1_000:.3g} kB"
    return f"{n} bytes"


def human_bytes(n: float) -> str:
    """``123456`` → ``"120.6 KB"``: sizes on disk in binary units, as ``du -h`` and file
    managers show them (:func:`format_size` is for limits people write in decimal)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its ``message`` attribute when it has one,
    as pymilvus errors do), at most ``limit`` characters; the exception's type name when the
    message is empty. For wrapping a library's error into a one-line message for a person."""
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    lines = str(msg).strip().splitlines()
    return lines[0][:limit] if lines else type(e).__name__


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with every run of whitespace (newlines too) made one space, cut after ``limit``
    characters with "…": a server's error body or a bad event, quoted inside one line."""
    line = " ".join(text.strip().split())
    return line[:limit] + ("…" if len(line) > limit else "")
