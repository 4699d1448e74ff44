"""Load pickles that may only hold plain containers and scalars, and only as much of them as their size allows.

`pickle.load` runs whatever callable a pickle names (`os.system`, `subprocess.Popen`, ...). Dataset pickles such as
RefCOCO's `refs(unc).p` only need lists, dicts, tuples, strings and numbers, which pickle builds with opcodes that
import nothing. This loader
- refuses every global except a few container types, so a hostile pickle raises `UnsafePickleError` naming the
  global it asked for before any of its code can run;
- calls those container types only on data the pickle holds (`bytearray(2**31)` or `set(range(...))` are refused:
  an integer argument or a non-container is never passed through);
- walks the opcodes once before loading (`check_opcodes`): every length a pickle declares must fit in the bytes
  that follow it (the C unpickler allocates a declared length before reading it), opcodes plain data never needs
  are refused, and the memory the objects will take is estimated; together with what the container calls copy,
  it may not pass MEMORY_FACTOR times the pickle's size. A 43-byte pickle can no longer allocate gigabytes.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import pickletools
from pathlib import Path
from typing import Any

from dataengine.errors import InputError, UnsafePickleError

# Memory the loaded objects may take, as a multiple of the pickle's size (at least MIN_BUDGET). A RefCOCO refs
# pickle estimates at 23x (protocol 2) to 33x (protocol 5); dense runs of empty containers are what reach higher.
MEMORY_FACTOR = 100
MIN_BUDGET = 1 << 20

# Containers that older protocols build through a call, and the bytes decoder that protocol-2 pickles written by
# Python 3 use for `bytes` objects. Each is called through `_PlainCall`, which only passes plain data on.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("builtins", "tuple"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
    }
)
_CONTAINERS = (list, tuple, dict, set, frozenset, str, bytes, bytearray)
_REFUSED_OPCODES = {"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER", "INST", "OBJ"}
_REF = 48  # a reference in a container or the memo, with its share of the container's growth
_CONTAINER = 232  # the largest empty container (a set)


def _opcode_table() -> tuple[list, list, list, list]:
    """Per opcode byte: fixed argument length (or None), length-prefix size (or None), cost, refused name."""
    fixed: list[int | None] = [None] * 256
    prefix: list[int | None] = [None] * 256
    cost: list[int] = [0] * 256
    refused: list[str | None] = [None] * 256
    for op in pickletools.opcodes:
        code = op.code.encode("latin-1")[0]
        arg = op.arg
        if arg is None:
            fixed[code] = 0
        elif arg.n >= 0:
            fixed[code] = arg.n
        elif arg.n in (pickletools.TAKEN_FROM_ARGUMENT1, pickletools.TAKEN_FROM_ARGUMENT4,
                       pickletools.TAKEN_FROM_ARGUMENT4U, pickletools.TAKEN_FROM_ARGUMENT8U):  # fmt: skip
            prefix[code] = {pickletools.TAKEN_FROM_ARGUMENT1: 1, pickletools.TAKEN_FROM_ARGUMENT8U: 8}.get(arg.n, 4)
        pushes = [p for p in op.stack_after if p is not pickletools.markobject]
        cost[code] = (_REF + 32) * len(pushes) if "GET" not in op.name else _REF
        if any(t in op.name for t in ("LIST", "DICT", "TUPLE", "SET")) and op.name not in ("SETITEM", "SETITEMS"):
            cost[code] += _CONTAINER
        if "PUT" in op.name or op.name == "MEMOIZE":
            cost[code] += _REF
        if op.name in _REFUSED_OPCODES:
            refused[code] = op.name
    return fixed, prefix, cost, refused


_FIXED, _PREFIX, _COST, _REFUSED = _opcode_table()
_STOP = ord(".")
# 1 + the fixed argument length of each opcode that has one (0: the opcode needs a closer look)
_STEP = [0 if size is None or code == _STOP else 1 + size for code, size in enumerate(_FIXED)]
_LINE_OPCODES = {
    op.code.encode("latin-1")[0]
    for op in pickletools.opcodes
    if op.arg is not None and op.arg.n == pickletools.UP_TO_NEWLINE
}
_TWO_LINES = {ord("c"), ord("i")}  # GLOBAL and INST take a module line and a name line


def check_opcodes(data: bytes, source: str = "<pickle>", budget: int | None = None) -> int:
    """Walk the opcodes of `data` without building anything: refuse declared lengths past the end, opcodes
    plain data never needs, and pickles whose objects would take more than `budget` bytes (default MEMORY_FACTOR
    times the size). Returns the estimated bytes."""
    budget = budget if budget is not None else max(MIN_BUDGET, MEMORY_FACTOR * len(data))
    step, prefix, refused = _STEP, _PREFIX, _REFUSED
    counts = [0] * 256
    i, n, extra = 0, len(data), 0
    while i < n:  # the common opcodes take the first branch: one table lookup and a jump
        op = data[i]
        counts[op] += 1
        size = step[op]
        if size:
            i += size
            continue
        i += 1
        if (width := prefix[op]) is not None:
            length = int.from_bytes(data[i : i + width], "little")
            i += width + length
            if i > n:
                raise InputError(f"{source}: truncated or hostile pickle (an object claims {length:,} bytes)")
            extra += 4 * length  # a text object of `length` UTF-8 bytes takes at most 4 bytes a character
        elif refused[op] is not None:
            raise UnsafePickleError(f"{source}: refusing pickle opcode {refused[op]}; only plain data is allowed")
        elif op in _TWO_LINES or op in _LINE_OPCODES:
            for _ in range(2 if op in _TWO_LINES else 1):
                end = data.find(b"\n", i)
                if end < 0:
                    raise InputError(f"{source}: truncated pickle")
                extra += 4 * (end - i)
                i = end + 1
        elif op == _STOP:
            break
        else:
            raise InputError(f"{source}: not a pickle (unknown opcode {op:#04x} at byte {i - 1})")
    total = extra + sum(count * cost for count, cost in zip(counts, _COST, strict=True) if count)
    if total > budget:
        raise InputError(_too_big(source, len(data)))
    return total


def _too_big(source: str, size: int) -> str:
    return (
        f"{source}: this {size:,}-byte pickle would build objects over {MEMORY_FACTOR}x its size; refusing it "
        "(a refer pickle needs far less)"
    )


class _PlainCall:
    """An allowed global, called only with plain data and charged to the loader's memory budget."""

    def __init__(self, loader: RestrictedUnpickler, name: str, target: Any) -> None:
        self.loader, self.name, self.target = loader, name, target

    def __call__(self, *args: Any) -> Any:
        if self.name == "encode":  # _codecs.encode(text, "latin1"): how Python 3 writes bytes at protocol <= 2
            if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
                raise UnsafePickleError(f"{self.loader.source}: _codecs.encode is only allowed as (str, 'latin1')")
            self.loader.charge(len(args[0]))
        elif self.name == "complex":
            if not all(isinstance(a, int | float) for a in args):
                raise UnsafePickleError(f"{self.loader.source}: complex() is only allowed on numbers")
        else:
            if len(args) > 2 or (args and not isinstance(args[0], _CONTAINERS)):
                shown = type(args[0]).__name__ if args else "?"
                raise UnsafePickleError(
                    f"{self.loader.source}: {self.name}() is only allowed on data the pickle holds, not {shown}"
                )
            if len(args) == 2 and not (self.name == "bytearray" and isinstance(args[1], str)):
                raise UnsafePickleError(f"{self.loader.source}: {self.name}() called with two arguments")
            self.loader.charge(_REF * len(args[0]) if args else _CONTAINER)
        return self.target(*args)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose `find_class` only resolves ALLOWED_GLOBALS (as `_PlainCall`s)."""

    source = "<pickle>"
    size = 0
    budget = MIN_BUDGET

    def charge(self, nbytes: int) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            raise InputError(_too_big(self.source, self.size))

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (`__builtin__.set`, `copy_reg`) map to their Python 3 homes first, as pickle itself does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in ALLOWED_GLOBALS:
            return _PlainCall(self, name, super().find_class(module, name))
        raise UnsafePickleError(
            f"{self.source}: refusing to load global {module}.{name}; only plain containers and scalars "
            "(list, dict, tuple, set, str, bytes, int, float, bool, None) are allowed in this pickle"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: persistent ids are not allowed")


def safe_loads(data: bytes, source: str = "<pickle>", encoding: str = "utf-8") -> Any:
    """Unpickle plain data from bytes. Python 2 pickles decode their `str` objects with `encoding` (UTF-8 first,
    Latin-1 if that fails, which never fails)."""
    estimate = check_opcodes(data, source)
    try:
        return _load(data, source, encoding, estimate)
    except UnicodeDecodeError:
        return _load(data, source, "latin1", estimate)


def safe_load(path: str | Path, encoding: str = "utf-8") -> Any:
    """Unpickle plain data from a file (see `safe_loads`; converters read the file through `converters.files`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read pickle {path}: {exc.strerror or exc}") from exc
    return safe_loads(data, str(path), encoding)


def _load(data: bytes, source: str, encoding: str, estimate: int) -> Any:
    # A buffered reader lets the C unpickler prefetch (peek): 2.5x faster than a bare BytesIO.
    unpickler = RestrictedUnpickler(io.BufferedReader(io.BytesIO(data), buffer_size=1 << 20), encoding=encoding)
    unpickler.source, unpickler.size = source, len(data)
    unpickler.budget = max(MIN_BUDGET, MEMORY_FACTOR * len(data)) - estimate
    try:
        return unpickler.load()
    except (UnsafePickleError, InputError, UnicodeDecodeError):
        raise
    except Exception as exc:  # truncated or garbage data raises many types; never repr what it built
        raise InputError(f"{source}: not a readable pickle ({type(exc).__name__}: {str(exc)[:200]})") from exc
