"""Decoding a response body within a size limit: gzip and deflate, stage by stage.

Size: ``fetch.max_bytes`` bounds the bytes received *and* the bytes produced by every decoding
stage, as they are produced: the raw stream is read and decoded here (gzip, deflate, stacked up to
:data:`MAX_ENCODINGS` deep) with bounded ``zlib`` decompressors, never by httpx, which inflates a
whole network chunk at once. Compressions that cannot be decoded (br, zstd, compress) are refused.
Only text charsets are accepted in ``Content-Type`` (``charset=zlib`` or ``base64`` is refused).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

# Content-Encoding stages decoded (e.g. "gzip, gzip" is two); more are refused
MAX_ENCODINGS = 2
# the most bytes one decompression step produces before it is counted
_DECODE_STEP = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate"
_ZLIB_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
# compressions that are not decoded here: refused rather than passed on as garbage
_UNDECODED_CODINGS = frozenset({"br", "zstd", "compress", "x-compress", "pack200-gzip", "exi"})


class TooBig(Exception):
    """The body, or what one decoding stage produced from it, passed the size limit."""


class BadEncoding(Exception):
    """The body is not the gzip or deflate stream its Content-Encoding says."""


class _Inflate:
    """One gzip or deflate stage, fed and drained in steps of at most :data:`_DECODE_STEP`
    bytes of output, so that no compressed input can make it produce more at once."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.started = False
        self._d = self._new()

    def _new(self, raw: bool = False) -> Any:
        if self.coding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._d.decompress(data, _DECODE_STEP)
            except zlib.error:
                if self.coding == "deflate" and not self.started:
                    # "deflate" is meant to be zlib-wrapped, but many servers send it raw
                    self.started = True
                    self._d = self._new(raw=True)
                    continue
                raise BadEncoding from None
            self.started = True
            if out:
                yield out
            if self._d.eof:
                # another gzip member follows (or its first bytes: the rest comes with the next
                # chunk, gathered in unused_data); other trailing bytes are ignored, as httpx does
                rest = self._d.unused_data
                if self.coding == "gzip" and len(rest) >= 2 and rest[:2] == b"\x1f\x8b":
                    self._d = self._new()
                    data = rest
                    continue
                return
            # output beyond _DECODE_STEP stays in the decompressor: the next feed or finish
            # drains it
            data = self._d.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        if self._d.eof or not self.started:
            return
        while True:
            try:
                out = self._d.decompress(b"", _DECODE_STEP)
            except zlib.error:
                raise BadEncoding from None
            if not out:
                break
            yield out


class BodyDecoder:
    """Undo a response's Content-Encoding stage by stage, counting what *each* stage produces
    against ``limit`` as it is produced (a stacked "gzip, gzip" bomb stops at the limit)."""

    def __init__(self, codings: Sequence[str], limit: int) -> None:
        # applied in the order listed, so undone in reverse
        self.stages = [_Inflate(_ZLIB_CODINGS[c]) for c in reversed(codings)]
        self.produced = [0] * len(self.stages)
        self.received = 0
        self.limit = limit

    def feed(self, raw: bytes) -> Iterator[bytes]:
        self.received += len(raw)
        if self.received > self.limit:
            raise TooBig
        yield from self._through(0, raw)

    def finish(self) -> Iterator[bytes]:
        for i, stage in enumerate(self.stages):
            for out in stage.finish():
                yield from self._count(i, out)

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self.stages):
            yield data
            return
        for out in self.stages[i].feed(data):
            yield from self._count(i, out)

    def _count(self, i: int, out: bytes) -> Iterator[bytes]:
        self.produced[i] += len(out)
        if self.produced[i] > self.limit:
            raise TooBig
        yield from self._through(i + 1, out)


def content_codings(response: httpx.Response) -> list[str]:
    """The Content-Encoding stages to undo, in the order they were applied.

    Raises FetchError-worthy ValueError with a reason for encodings that are not decoded here.
    """
    codings: list[str] = []
    for value in response.headers.get_list("content-encoding", split_commas=True):
        coding = value.strip().lower()
        if coding in _ZLIB_CODINGS:
            codings.append(coding)
        elif coding in _UNDECODED_CODINGS:
            raise ValueError(f"unsupported Content-Encoding {coding}")
        # "identity", "", and non-compression tokens some servers send ("utf-8"): nothing to undo
    if len(codings) > MAX_ENCODINGS:
        raise ValueError(
            f"refused: the response is compressed {len(codings)} times over "
            f"(Content-Encoding {', '.join(codings)})"
        )
    return codings
