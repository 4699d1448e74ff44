"""Partition a huge top-level JSON array (e.g. RoboPoint's 1.7 GB `robopoint_1432k.json`) without loading it.

`array_spans` streams the file once, decoding one element at a time, and returns the byte range of every run of
`items_per_span` elements; `iter_span` decodes the elements of one range. Memory stays at one buffer, whatever
the file size, and the spans depend only on the file.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataengine.errors import InputError

CHUNK_BYTES = 8 << 20
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def array_spans(path: Path, items_per_span: int, limit: int | None = None) -> list[dict[str, int]]:
    """[{"start": byte, "end": byte, "first": element index, "count": n}, ...] covering the array's elements
    (the first `limit` of them when given). Raises InputError when the file is not a JSON array."""
    spans: list[dict[str, int]] = []
    for index, (start, end) in enumerate(_element_ranges(path)):
        if limit is not None and index >= limit:
            break
        if index % items_per_span == 0:
            spans.append({"start": start, "end": end, "first": index, "count": 0})
        spans[-1]["end"] = end
        spans[-1]["count"] += 1
    return spans


def iter_span(path: Path, span: dict[str, int]) -> Iterator[Any]:
    """The decoded elements of one span, in order."""
    with open(path, "rb") as fh:
        fh.seek(span["start"])
        text = fh.read(span["end"] - span["start"]).decode("utf-8")
    pos, count = 0, 0
    while count < span["count"]:
        pos = _skip(text, pos, ",")
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: malformed element {span['first'] + count} ({exc.msg})") from exc
        yield value
        count += 1


def _skip(text: str, pos: int, separators: str) -> int:
    while pos < len(text) and (text[pos] in _WHITESPACE or text[pos] in separators):
        pos += 1
    return pos


def _element_ranges(path: Path) -> Iterator[tuple[int, int]]:
    """Byte (start, end) of each top-level element, streaming through the file.

    Byte offsets are kept by encoding each stretch of text once (from an anchor to the next position), and the
    consumed part of the buffer is dropped only when the buffer refills, so the scan is linear in the file size.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        state = {"buf": "", "eof": False, "anchor": 0, "anchor_byte": 0}

        def refill(pos: int) -> int:
            """Read the next chunk, dropping the text before `pos`; returns pos in the new buffer."""
            buf = state["buf"]
            state["anchor_byte"] = byte_at(pos)
            buf = buf[pos:]
            chunk = fh.read(CHUNK_BYTES)
            state["eof"] = not chunk
            state["buf"] = buf + decoder.decode(chunk, final=state["eof"])
            state["anchor"] = 0
            return 0

        def byte_at(pos: int) -> int:
            anchor = state["anchor"]
            state["anchor_byte"] += len(state["buf"][anchor:pos].encode("utf-8"))
            state["anchor"] = pos
            return state["anchor_byte"]

        pos = refill(0)
        pos = _skip(state["buf"], pos, "")
        while pos >= len(state["buf"]) and not state["eof"]:
            pos = refill(pos)
            pos = _skip(state["buf"], pos, "")
        if pos >= len(state["buf"]) or state["buf"][pos] != "[":
            raise InputError(f"{path}: expected a JSON array (a file starting with '[')")
        pos += 1
        index = 0
        while True:
            pos = _skip(state["buf"], pos, ",")
            while pos >= len(state["buf"]) and not state["eof"]:
                pos = refill(pos)
                pos = _skip(state["buf"], pos, ",")
            if pos < len(state["buf"]) and state["buf"][pos] == "]":
                return
            if pos >= len(state["buf"]):
                raise InputError(f"{path}: the JSON array is not closed (truncated file?)")
            while True:
                try:
                    _, end = _DECODER.raw_decode(state["buf"], pos)
                    if end < len(state["buf"]) or state["eof"]:
                        break  # a value ending exactly at the buffer end might continue in the next chunk
                except json.JSONDecodeError as exc:
                    if state["eof"]:
                        raise InputError(f"{path}: malformed element {index} ({exc.msg})") from exc
                pos = refill(pos)
            start_byte = byte_at(pos)
            yield start_byte, byte_at(end)
            index += 1
            pos = end
