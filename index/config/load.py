"""Reading settings: defaults < TOML file < environment, every mistake one line.

Three steps, each with its own kind of message: ``_check_keys`` walks the file against the
dataclasses (unknown keys with "did you mean", a section that is not a table);
``msgspec.convert`` checks each value's type and limits, and ``_explain`` turns its error into
``<file>: <dotted.key> must be <what> (got <value>)`` from the field's own annotation; then
``rules.check`` runs the rules that span keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from index.config import rules
from index.config.models import Settings
from index.errors import ConfigError

if TYPE_CHECKING:
    import msgspec

log = logging.getLogger(__name__)

ALLOW_HOSTS_ENV = "NEWSDESK_ALLOW_HOSTS"


def env_allow_hosts() -> list[str]:
    """``$NEWSDESK_ALLOW_HOSTS``: more ``fetch.allow_hosts`` entries, separated by commas or
    spaces (``"127.0.0.1:8080, intranet.example.org"``), for a local server without editing the
    config. Raises ConfigError naming the variable for an entry of the wrong form."""
    raw = os.environ.get(ALLOW_HOSTS_ENV, "")
    entries = [e for e in re.split(r"[,\s]+", raw) if e]
    for entry in entries:
        if not rules.allow_entry_ok(entry):
            raise ConfigError(f"{ALLOW_HOSTS_ENV}: {rules.ALLOW_ENTRY_FORM} (got {entry!r})")
    return entries


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p
    env = os.environ.get("NEWSDESK_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (from NEWSDESK_CONFIG)")
        return p
    local = Path("config.toml")
    return local if local.is_file() else None


def load_settings(
    config: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load and validate settings. Raises :class:`ConfigError` naming the offending key."""
    settings = Settings()
    path = find_config_path(config)
    where = str(path) if path else "settings"
    if path is not None:
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        _check_token_in_file(raw, path)
        settings = convert(data, where)
        settings.config_path = path
        # a relative data_dir in a config file is relative to that file
        if "data_dir" in data and not settings.data_dir.is_absolute():
            settings.data_dir = (path.parent / settings.data_dir).resolve()
        # and so are the folders it watches
        for i, folder in enumerate(settings.folders):
            if folder.path is not None and not folder.path.is_absolute():
                try:
                    folder.path = (path.parent / folder.path).resolve()
                except (RuntimeError, OSError):  # a symlink loop
                    raise ConfigError(f"{where}: folders[{i}].path is a symlink loop") from None
        for scope in settings.scopes:  # the folders of a scope too
            scope.folders = [
                f if Path(f).expanduser().is_absolute() else str((path.parent / f).resolve())
                for f in scope.folders
            ]
    if overrides:
        _override(settings, convert(overrides, "settings"), overrides)
    settings.fetch.allow_hosts = [*settings.fetch.allow_hosts, *env_allow_hosts()]
    env_dir = os.environ.get("NEWSDESK_DATA_DIR")
    if env_dir:
        settings.data_dir = Path(env_dir).expanduser()
    if data_dir:
        settings.data_dir = Path(data_dir).expanduser()
    rules.check(settings, where)
    return settings


def convert(data: dict[str, Any], where: str) -> Settings:
    """``data`` (a parsed TOML document) as Settings; ConfigError for the first mistake."""
    import msgspec  # here, not at the top: a run without a config file does not need it

    _check_keys(Settings, data, "", where)
    try:
        return msgspec.convert(data, Settings, dec_hook=_to_path)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{where}: {_explain(str(e), data)}") from None


def _override(settings: Settings, given: Settings, keys: dict[str, Any]) -> None:
    """Copy the keys present in ``keys`` (one level into sections) from ``given``."""
    for key, value in keys.items():
        if isinstance(value, dict) and dataclasses.is_dataclass(getattr(settings, key)):
            for sub in value:
                setattr(getattr(settings, key), sub, getattr(getattr(given, key), sub))
        else:
            setattr(settings, key, getattr(given, key))


def _to_path(tp: type, value: Any) -> Any:
    if tp is Path and isinstance(value, str) and value.strip():
        return Path(value).expanduser()
    raise ValueError("not a path")  # msgspec turns it into a ValidationError at the key


@functools.cache
def _fields(cls: type) -> dict[str, Any]:
    """A dataclass's settable keys and their annotations (``config_path`` is not a key)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name != "config_path"}


def _table_type(tp: Any) -> type | None:
    """The dataclass of a ``[[name]]`` array-of-tables field, else None."""
    tp = _base(tp)
    if get_origin(tp) is list and dataclasses.is_dataclass(arg := get_args(tp)[0]):
        return arg if isinstance(arg, type) else None
    return None


@functools.cache
def _shape(cls: type) -> dict[str, tuple[str, type] | None]:
    """Each key of ``cls``: ("section", class) for a table, ("tables", class) for an array of
    tables, None for a value. Sections are known from their default factories, so only the
    top level's annotations are evaluated (each ``doc(...)`` costs a little start-up)."""
    shape: dict[str, tuple[str, type] | None] = {}
    for f in dataclasses.fields(cls):
        factory = f.default_factory
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            shape[f.name] = ("section", factory)
        elif factory is list and cls is Settings and (item := _table_type(_fields(cls)[f.name])):
            shape[f.name] = ("tables", item)
        elif f.name != "config_path":
            shape[f.name] = None
    return shape


def _check_keys(cls: type, data: dict[str, Any], prefix: str, where: str) -> None:
    """Unknown keys (with the closest known one) and tables where a table belongs."""
    shape = _shape(cls)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in shape:
            close = difflib.get_close_matches(key, list(shape), n=1)
            hint = f' (did you mean "{prefix}{close[0]}"?)' if close else ""
            raise ConfigError(f"{where}: unknown key {dotted!r}{hint}")
        kind = shape[key]
        if kind is not None and kind[0] == "section":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{dotted}] must be a table")
            _check_keys(kind[1], value, dotted + ".", where)
        elif kind is not None:
            if not isinstance(value, list):
                raise ConfigError(f"{where}: {dotted} must be a list of tables, written [[{key}]]")
            for i, table in enumerate(value):
                if not isinstance(table, dict):
                    raise ConfigError(f"{where}: {dotted}[{i}] must be a table, written [[{key}]]")
                _check_keys(kind[1], table, f"{dotted}[{i}].", where)


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(?P<key>\w+)|\[(?P<index>\d+)\]")


def _explain(error: str, data: dict[str, Any]) -> str:
    """``<dotted.key> must be <what> (got <value>)`` for msgspec's error at ``$.a.b[0]``: the
    key's annotation says what is expected, the value given says whether its type or a limit
    was wrong."""
    m = _AT.search(error)
    if m is None:  # pragma: no cover - msgspec always names where
        return error
    tp: Any = Settings
    value: Any = data
    for step in _STEP.finditer(m["path"]):
        tp = _base(tp)
        if step["key"] is not None:
            tp, value = _fields(tp)[step["key"]], value[step["key"]]
        else:
            tp, value = get_args(tp)[0], value[int(step["index"])]
    if _base(tp) is float and _has_type(float, value):
        value = float(value)  # as it would be stored: "got 0.0" for a float key given 0
    key = m["path"].removeprefix(".")
    return f"{key} must be {_expected(tp, value)}{rules.got(key, value)}"


def _base(tp: Any) -> Any:
    """``X`` for ``X | None`` and for ``Annotated[X, ...]``."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    args = [a for a in get_args(tp) if a is not type(None)]
    if type(None) in get_args(tp) and len(args) == 1:
        return _base(args[0])
    return tp


def _meta(tp: Any) -> msgspec.Meta | None:
    """The ``doc(...)`` of an annotation (also inside ``X | None``)."""
    import msgspec

    if get_origin(tp) is Annotated:
        return next((m for m in get_args(tp)[1:] if isinstance(m, msgspec.Meta)), None)
    args = [a for a in get_args(tp) if a is not type(None)]
    return _meta(args[0]) if len(args) == 1 and args[0] is not tp else None


def _expected(tp: Any, value: Any) -> str:
    """What a key takes: its type's description when the value has the wrong type, else the
    text of the limit it broke (``must``, or one made from ``ge``/``le``)."""
    base, meta = _base(tp), _meta(tp)
    if meta is None or not _has_type(base, value):
        return describe(base)
    extra = meta.extra or {}
    if "must" in extra:
        return str(extra["must"])
    low, high = meta.ge, meta.le
    noun = "an integer " if base is int else ""
    if low is not None and high is not None:
        return f"{noun}between {low:g} and {high:g}"
    if low is not None:
        return f"{noun}>= {low:g}"
    return describe(base)  # pragma: no cover - every other limit has its own `must`


def _has_type(tp: Any, value: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return False


def describe(tp: Any) -> str:
    """A type as a person reads it: "an integer", "a list of strings", "one of ..."."""
    tp = _base(tp)
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in get_args(tp))
    if origin is list:  # "a list of integers", not "a list of an integers"
        item = describe(get_args(tp)[0])
        if item.startswith(("a ", "an ")):
            return f"a list of {item.split(' ', 1)[1]}s"
        return f"a list whose items are each {item}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp) or ("a path" if tp is Path else str(tp))


def _check_token_in_file(raw: str, path: Path) -> None:
    for line in raw.splitlines():
        value = line.split("=", 1)[-1].strip().strip("\"'")
        if rules.TOKEN_SHAPE.match(value):
            log.warning(
                "%s appears to contain a Discord token; move it to the DISCORD_TOKEN environment "
                "variable and remove it from the file",
                path,
            )
            return
