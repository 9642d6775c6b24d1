"""config.example.toml, written from the models: one source for the keys and their docs.

Every key of every section is shown with its default (or, for a key without a literal
default, commented out with an ``example``), under its field description; a section's
docstring introduces it. tests/cli/test_config.py checks that the file in the repo is exactly this
output, so a new or changed key is documented by editing its ``doc(...)`` and running::

    python -m index.config.example > config.example.toml
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import textwrap
import typing
from typing import Any

import msgspec

from index.config.models import Settings

WIDTH = 99
# shown commented out: optional features that stay off until the section is filled in
COMMENTED = {"llm"}


def comment(text: str) -> list[str]:
    """``text`` as ``# `` lines: paragraphs re-filled to WIDTH, indented lines kept as written
    (aligned lists), so the source may wrap descriptions at any width."""
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        joined = " ".join(para)
        out.extend(textwrap.wrap(joined, WIDTH - 2, break_long_words=False, break_on_hyphens=False))
        para.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            out.append("")
        elif line[0].isspace():
            flush()
            out.append(line)
        else:
            para.append(line.strip())
    flush()
    return [f"# {line}".rstrip() for line in out]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _doc(annotation: Any) -> tuple[str, dict[str, Any]]:
    """The description and extras of a field's ``doc(...)`` (empty when it has none)."""
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            return _doc(arg)
        if isinstance(arg, msgspec.Meta):
            return arg.description or "", arg.extra or {}
    return "", {}


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _key(f: dataclasses.Field[Any], annotation: Any, commented: bool) -> list[str]:
    """A key under its description: ``key = default``, or commented out with its example when
    it has no literal default (or its whole section is commented out)."""
    text, extra = _doc(annotation)
    if "example" in extra:
        line = f"# {f.name} = {toml_value(extra['example'])}"
    else:
        line = ("# " if commented else "") + f"{f.name} = {toml_value(_default(f))}"
    return [*(comment(text) if text else []), line]


def _keys(cls: type, commented: bool) -> list[str]:
    """One section's keys, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [line for f in dataclasses.fields(cls) for line in _key(f, hints[f.name], commented)]


def _tables(fields: list[tuple[dataclasses.Field[Any], Any]]) -> list[str]:
    """The ``[[name]]`` arrays of tables: their descriptions, then one commented example each,
    every key followed by its description."""
    lines = [""]
    for _f, annotation in fields:
        text, _ = _doc(annotation)
        lines += comment(text) if text else []
    for f, annotation in fields:
        item = typing.get_args(typing.get_args(annotation)[0])[0]
        hints = typing.get_type_hints(item, include_extras=True)
        lines += ["#", f"# [[{f.name}]]"]
        for key in dataclasses.fields(item):
            text, extra = _doc(hints[key.name])
            value = extra.get("example", _default(key))
            lines.append(f"# {key.name} = {toml_value(value)}".ljust(42) + f"# {text}")
    return lines


def render() -> str:
    """The text of config.example.toml."""
    assert Settings.__doc__
    lines = comment(inspect.cleandoc(Settings.__doc__))
    hints = typing.get_type_hints(Settings, include_extras=True)
    tables = []
    for f in dataclasses.fields(Settings):
        tp = hints[f.name]
        if f.name == "config_path":
            continue
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            commented = f.name in COMMENTED
            lines += ["", *comment(inspect.cleandoc(tp.__doc__ or ""))]
            lines.append(f"# [{f.name}]" if commented else f"[{f.name}]")
            lines += _keys(tp, commented)
        elif typing.get_origin(typing.get_args(tp)[0]) is list:
            tables.append((f, tp))
        else:
            lines += ["", *_key(f, tp, commented=False)]
    lines += _tables(tables)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
