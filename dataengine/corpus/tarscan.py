"""Fast reading of plain USTAR tars (what `ShardWriter` writes): member headers parsed directly, image data
seeked over or sliced, no per-member `TarInfo` objects. `tarfile` costs ~30 µs per member in Python; a build
touches every member of every input shard twice, so this is most of its per-sample overhead.

Headers are checked (checksum, octal fields); anything this reader does not handle (PAX or GNU long-name
headers, base-256 sizes, links) raises `UnsupportedTar`, and callers fall back to `tarfile`.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = 512
_ZERO = bytes(BLOCK)
_REGULAR = (b"0", b"\0")
_SKIPPED = (b"5",)  # directories carry no data


class UnsupportedTar(Exception):
    """A header this reader does not parse; use tarfile for this archive."""


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of the header
    data_offset: int
    size: int

    @property
    def end(self) -> int:
        """Offset just past the member's data padding."""
        return self.data_offset + (self.size + BLOCK - 1) // BLOCK * BLOCK


def _octal(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:
        raise UnsupportedTar("base-256 number")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def parse_header(block: bytes, offset: int) -> Member | None:
    """The member described by a 512-byte header at `offset`; None for directories and other data-less entries."""
    checksum = _octal(block[148:156])
    if checksum != sum(block) - sum(block[148:156]) + 8 * 32:
        raise tarfile.ReadError(f"bad tar header checksum at offset {offset}")
    typeflag = block[156:157]
    if typeflag in _SKIPPED:
        return None
    if typeflag not in _REGULAR:
        raise UnsupportedTar(f"member type {typeflag!r} at offset {offset}")
    name = block[0:100].split(b"\0", 1)[0]
    if block[257:262] == b"ustar":
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return Member(name.decode("utf-8"), offset, offset + BLOCK, _octal(block[124:136]))


def iter_members(fh: BinaryIO) -> Iterator[Member]:
    """Members of a tar read from `fh` (positioned at its start); the caller may read a member's data before
    asking for the next one (this reader seeks to the next header itself)."""
    offset = 0
    while True:
        fh.seek(offset)
        block = fh.read(BLOCK)
        if len(block) < BLOCK:
            if block:
                raise tarfile.ReadError(f"truncated tar header at offset {offset}")
            return
        if block == _ZERO:
            return
        member = parse_header(block, offset)
        if member is None:
            offset += BLOCK
            continue
        yield member
        offset = member.end


def split_members(chunk: bytes) -> list[tuple[str, bytes]]:
    """(name, data) of every member in a byte range holding whole members (one sample of a shard)."""
    out = []
    view = memoryview(chunk)
    offset = 0
    while offset + BLOCK <= len(chunk):
        block = chunk[offset : offset + BLOCK]
        if block == _ZERO:
            break
        member = parse_header(block, offset)
        if member is None:
            offset += BLOCK
            continue
        if member.data_offset + member.size > len(chunk):
            raise tarfile.ReadError(f"member {member.name!r} runs past the sample's byte range")
        out.append((member.name, bytes(view[member.data_offset : member.data_offset + member.size])))
        offset = member.end
    return out
