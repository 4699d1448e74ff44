"""Plain USTAR tars (what `ShardWriter` writes), read and written without per-member `TarInfo` objects: member
headers parsed directly, image data seeked over or sliced; headers built from a template that `tarfile` made.
`tarfile` costs ~30 µs per member in Python; a corpus build touches every member of every input shard twice, so
this is most of its per-sample overhead.

Headers are checked (checksum, octal fields); anything this reader does not handle (PAX or GNU long-name
headers, base-256 sizes, links) raises `UnsupportedTar`, and callers fall back to `tarfile` (`chunk_members`
does so itself). Names decode as `tarfile` decodes them (UTF-8, undecodable bytes surrogate-escaped).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = 512
RECORD = 20 * BLOCK  # tarfile pads a closed archive to whole 10 KB records (like `tar -b20`)
_ZERO = bytes(BLOCK)
_REGULAR = (b"0", b"\0")
_SKIPPED = (b"5",)  # directories carry no data


class UnsupportedTar(Exception):
    """A header this reader does not parse; use tarfile for this archive."""


def padded_size(size: int) -> int:
    """Bytes a member's data occupies in the archive: its size rounded up to whole 512-byte blocks."""
    return (size + BLOCK - 1) // BLOCK * BLOCK


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    offset: int  # of the header
    data_offset: int
    size: int
    end: int  # just past the member's data padding: data_offset + padded_size(size)


def member_at(name: str, offset: int, data_offset: int, size: int) -> Member:
    return Member(name, offset, data_offset, size, data_offset + padded_size(size))


class HeaderMaker:
    """USTAR headers of regular files with a fixed mtime and mode, empty owner, byte-identical to what `tarfile`
    writes (`TarInfo.tobuf`): a header `tarfile` built once, with the name, size and checksum patched per member.
    Names over 100 bytes and sizes of 8 GiB or more, which plain USTAR cannot hold, get `tarfile`'s PAX headers
    (more than one block; readers here fall back to `tarfile` for them)."""

    def __init__(self, mtime: int, mode: int) -> None:
        self.mtime, self.mode = mtime, mode
        # plain USTAR: refuses an mtime or mode it cannot hold, so the template is always exactly one block
        block = bytearray(self._tarfile_header("", 0, tarfile.USTAR_FORMAT))
        block[0:100], block[124:136], block[148:156] = bytes(100), bytes(12), b" " * 8
        self._mode_owner, self._mtime = bytes(block[100:124]), bytes(block[136:148])
        self._tail, self._sum = bytes(block[156:]), sum(block)

    def _tarfile_header(self, name: str, size: int, fmt: int = tarfile.PAX_FORMAT) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uname, info.gname = size, self.mtime, self.mode, "", ""
        return info.tobuf(fmt, "utf-8", "surrogateescape")

    def header(self, name: str, size: int) -> bytes:
        raw = name.encode("utf-8", "surrogateescape")
        if len(raw) > 100 or size >= 8**11:
            return self._tarfile_header(name, size)
        size_field = b"%011o\0" % size
        checksum = self._sum + sum(raw) + sum(size_field)
        parts = (raw, bytes(100 - len(raw)), self._mode_owner, size_field, self._mtime, b"%06o\0 " % checksum)
        return b"".join((*parts, self._tail))


def end_of_archive(offset: int) -> bytes:
    """What `tarfile` appends when it closes an archive whose members end at `offset`: two zero blocks, then
    zeros up to a whole record."""
    end = offset + 2 * BLOCK
    return bytes(2 * BLOCK + (-end % RECORD))


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
    return member_at(name.decode("utf-8", "surrogateescape"), offset, offset + BLOCK, _octal(block[124:136]))


def iter_members(fh: BinaryIO) -> Iterator[Member]:
    """Members of a tar read from `fh` (positioned at its start); the caller may read a member's data before
    asking for the next one (this reader seeks to the next header itself). When it stops, `fh` is just past the
    block that stopped it (see `ends_with_marker`)."""
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


def ends_with_marker(fh: BinaryIO) -> bool:
    """Right after `iter_members` stopped: whether the archive ends with its end-of-archive marker (two zero
    blocks) rather than at the end of the file (a truncated tar)."""
    return fh.read(BLOCK) == _ZERO


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


def tarfile_members(chunk: bytes) -> list[tuple[str, bytes]]:
    """`split_members` done by `tarfile`: any tar format, file members only."""
    with tarfile.open(fileobj=io.BytesIO(chunk), mode="r:") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]


def chunk_members(chunk: bytes) -> list[tuple[str, bytes]]:
    """(name, data) of the file members in a byte range of whole members: plain USTAR parsed directly, any other
    tar through `tarfile`. Raises `tarfile.TarError` for a corrupt range."""
    try:
        return split_members(chunk)
    except UnsupportedTar:
        return tarfile_members(chunk)
