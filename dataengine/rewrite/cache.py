"""A persistent, content-addressed cache of model replies: one JSON file per request, named by its hash.

The key hashes the model, the full request body (messages, response format, sampling settings) and the prompt
schema version, so a rerun of the same work makes no request at all. Writes go to a unique temporary file that
is renamed into place, so concurrent writers (threads, processes, Ray workers on a shared disk) never leave a
torn file; two writers of the same key write the same reply.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dataengine.runtime.atomic import atomic_write_bytes

DEFAULT_CACHE_ENV = "DATAENGINE_CACHE_DIR"


def default_cache_dir() -> Path:
    """$DATAENGINE_CACHE_DIR/rewrite, else ~/.cache/dataengine/rewrite."""
    root = os.environ.get(DEFAULT_CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "dataengine"
    return base / "rewrite"


def request_key(body: dict[str, Any], schema_version: str) -> str:
    """sha256 of the request body (model included) and the prompt schema version; never of credentials."""
    canonical = json.dumps({"body": body, "schema_version": schema_version}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Directory of `<key[:2]>/<key>.json` files holding {'content': str, 'usage': {...}, 'model': str}."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored reply, or None if absent or unreadable (an unreadable entry is treated as a miss)."""
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("content"), str) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store a reply atomically (temporary file in the same directory, then rename)."""
        payload = json.dumps(entry, sort_keys=True, ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self._path(key), payload)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.exists() else 0
