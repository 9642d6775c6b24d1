"""Markdown to plain text, for indexing: what a reader sees, not the markup.

A quote is a verbatim span of the stored text, so the stored text of a Markdown article must be
the text a person reads: ``**bold**`` is ``bold``, ``[a link](https://…)`` is ``a link``, a
table row ``| Name | Licence |`` is ``Name · Licence`` and its ``|---|`` line is gone. Offsets of
passages and quotes point into this plain text (the only text stored), so they stay exact.

Line-based and dependency-free on purpose: it handles what articles contain (headings,
emphasis, links, images, code, lists, block quotes, tables, HTML tags, escapes) and leaves
anything it does not recognise as it is, never dropping words.
"""

from __future__ import annotations

import html
import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}((\*[ \t]*){3,}|(-[ \t]*){3,}|(_[ \t]*){3,})$")
_QUOTE = re.compile(r"^ {0,3}>[ \t]?")
_BULLET = re.compile(r"^(\s*)[*+-][ \t]+(?:\[[ xX]\][ \t]+)?")
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*\S+.*$")
_TABLE_DELIM = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<\"'])")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_REF_LINK = re.compile(r"!?\[([^\]]+)\]\[[^\]]*\]")
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--.*?-->")
_STRONG = (
    re.compile(r"(?<!\*)\*\*(?=\S)(.+?)(?<=\S)\*\*(?!\*)"),
    re.compile(r"(?<![\w_])__(?=\S)(.+?)(?<=\S)__(?![\w_])"),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"),
)
_EMPHASIS = (
    re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])"),
    re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])"),
)
# placeholders for code spans and escaped characters while the rest is rewritten
_HOLD = re.compile("\ue000(\\d+)\ue001")
TABLE_CELL_SEPARATOR = " · "


def inline_text(line: str) -> str:
    """One line of Markdown inline syntax as the words a reader sees."""
    held: list[str] = []

    def hold(text: str) -> str:
        held.append(text)
        return f"\ue000{len(held) - 1}\ue001"

    line = _CODE_SPAN.sub(lambda m: hold(m.group(2).strip() or m.group(2)), line)
    line = _ESCAPE.sub(lambda m: hold(m.group(1)), line)
    line = _AUTOLINK.sub(lambda m: hold(m.group(1)), line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _REF_LINK.sub(r"\1", line)
    line = _FOOTNOTE.sub("", line)
    line = _HTML_TAG.sub("", line)
    for pattern in (*_STRONG, *_EMPHASIS):
        line = pattern.sub(r"\1", line)
    line = html.unescape(line)  # "&amp;" is "&"
    return _HOLD.sub(lambda m: held[int(m.group(1))], line)


def _table_row(line: str) -> str:
    cells = line.strip()
    if cells.startswith("|"):
        cells = cells[1:]
    if cells.endswith("|") and not cells.endswith("\\|"):
        cells = cells[:-1]
    parts = [inline_text(c.strip()) for c in re.split(r"(?<!\\)\|", cells)]
    return TABLE_CELL_SEPARATOR.join(p for p in parts if p)


def _is_table(lines: list[str], i: int) -> bool:
    """``lines[i]`` starts a table: a row with pipes followed by a delimiter row."""
    return (
        "|" in lines[i]
        and i + 1 < len(lines)
        and "-" in lines[i + 1]
        and bool(_TABLE_DELIM.match(lines[i + 1]))
    )


def markdown_to_text(body: str) -> str:
    """``body`` (Markdown, front matter already removed) as plain text; paragraphs stay
    separated by blank lines, code blocks keep their lines."""
    lines = body.split("\n")
    out: list[str] = []
    fence: str | None = None
    in_table = False
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            else:
                out.append(line)
            continue
        if m:
            fence = m.group(1)
            continue
        while _QUOTE.match(line):
            line = _QUOTE.sub("", line, count=1)
        if not line.strip():
            in_table = False
            out.append("")
            continue
        if in_table or _is_table(lines, i - 1):
            if not in_table:  # the header row; skip the delimiter row after it
                in_table = True
                out.append(_table_row(line))
                i += 1
                continue
            if "|" in line:
                out.append(_table_row(line))
                continue
            in_table = False
        if _THEMATIC.match(line) or _LINK_DEF.match(line):
            continue
        if _SETEXT.match(line) and out and out[-1].strip():
            continue  # the underline of a heading; the heading line is kept
        heading = _ATX.match(line)
        if heading:
            out.append(inline_text(heading.group(1)))
            continue
        line = _BULLET.sub(lambda b: f"{b.group(1)}- ", line)
        line = line.rstrip()
        if line.endswith("\\"):  # a hard line break
            line = line[:-1].rstrip()
        out.append(inline_text(line).rstrip())
    text = "\n".join(out)
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text).strip("\n")
