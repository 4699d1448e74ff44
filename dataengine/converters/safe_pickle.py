"""Load pickles that may only hold plain containers and scalars.

`pickle.load` runs whatever callable a pickle names (`os.system`, `subprocess.Popen`, ...). Dataset pickles such as
RefCOCO's `refs(unc).p` only need lists, dicts, tuples, strings and numbers, which pickle builds with opcodes that
import nothing. This unpickler refuses every global except a few container types, so a hostile pickle raises
`UnsafePickleError` naming the global it asked for, before any of its code can run.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

from dataengine.errors import InputError, UnsafePickleError

# Globals a plain-data pickle may need: containers that older protocols build through a call, and the bytes
# decoder that protocol-2 pickles written by Python 3 use for `bytes` objects.
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


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose `find_class` only resolves ALLOWED_GLOBALS."""

    source = "<pickle>"

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (`__builtin__.set`, `copy_reg`) map to their Python 3 homes first, as pickle itself does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: refusing to load global {module}.{name}; only plain containers and scalars "
            "(list, dict, tuple, set, str, bytes, int, float, bool, None) are allowed in this pickle"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: persistent ids are not allowed (got {pid!r})")


def safe_loads(data: bytes, source: str = "<pickle>", encoding: str = "utf-8") -> Any:
    """Unpickle plain data from bytes. Python 2 pickles decode their `str` objects with `encoding` (UTF-8 first,
    Latin-1 if that fails, which never fails)."""
    try:
        return _load(data, source, encoding)
    except UnicodeDecodeError:
        return _load(data, source, "latin1")


def safe_load(path: str | Path, encoding: str = "utf-8") -> Any:
    """Unpickle plain data from a file (see `safe_loads`)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:  # a real file: the C unpickler reads it faster than a BytesIO
            try:
                return _load(fh, str(path), encoding)
            except UnicodeDecodeError:
                fh.seek(0)
                return _load(fh, str(path), "latin1")
    except OSError as exc:
        raise InputError(f"cannot read pickle {path}: {exc}") from exc


def _load(data: bytes | BinaryIO, source: str, encoding: str) -> Any:
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    unpickler = RestrictedUnpickler(stream, encoding=encoding)
    unpickler.source = source
    try:
        return unpickler.load()
    except (UnsafePickleError, UnicodeDecodeError):
        raise
    except Exception as exc:  # truncated or garbage data raises many types
        raise InputError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
