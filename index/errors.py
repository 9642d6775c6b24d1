"""Errors carrying a message written for a person.

Every boundary (CLI, Discord) catches :class:`NewsdeskError` and shows ``str(err)``;
anything else is a bug, logged with its traceback and shown as a short reference.
"""

from __future__ import annotations


class NewsdeskError(Exception):
    """Base class: ``str(err)`` is a complete, one-line message for a person."""

    exit_code = 1


class ConfigError(NewsdeskError):
    """The configuration file or an environment override is invalid."""


class SourceError(NewsdeskError):
    """An input (file, folder, URL, feed) could not be read or turned into an article."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class FetchError(SourceError):
    """A URL could not be fetched (unreachable, HTTP error, timeout, refused address...)."""


class EmptyIndexError(NewsdeskError):
    """Asked a question before anything was indexed."""

    def __init__(self, msg: str = "") -> None:
        super().__init__(msg or "nothing is indexed yet: run `newsdesk index PATH_OR_URL` first")


class IndexMismatchError(NewsdeskError):
    """The index on disk was built with another model, dimension or chunking."""


class IndexCorruptError(NewsdeskError):
    """A file of the index is unreadable or inconsistent."""


class IndexBusyError(NewsdeskError):
    """Another process holds the writer lock."""


class InvalidQuestionError(NewsdeskError):
    """An empty, over-long or otherwise unusable question."""


class ArticleNotFoundError(NewsdeskError):
    """No article matches the given id, title or source."""


class DiskFullError(NewsdeskError):
    """A write ran out of disk space (or hit a file size limit); the old state is kept."""

    def __init__(self, where: str, reason: str = "no space left on device") -> None:
        super().__init__(
            f"disk full: nothing was changed (writing {where} failed: {reason}); "
            "free some space and try again"
        )


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (at most 160 characters), for a one-line error;
    its type name when the message is empty."""
    lines = str(e).strip().splitlines()
    return lines[0][:160] if lines else type(e).__name__
