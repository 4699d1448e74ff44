"""Source converters: one small reader per public dataset, one shared runner (Ray, shards, quarantine, report).

Public names load lazily, so `dataengine --help` stays fast; the registry imports a converter when it is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CONVERTERS": "dataengine.converters.registry",
    "get_converter": "dataengine.converters.registry",
    "run_conversion": "dataengine.converters.runner",
    "Converter": "dataengine.converters.base",
    "ConvertOptions": "dataengine.converters.base",
    "Reject": "dataengine.converters.base",
    "Sample": "dataengine.converters.base",
    "TaskStats": "dataengine.converters.base",
    "safe_load": "dataengine.converters.safe_pickle",
    "safe_loads": "dataengine.converters.safe_pickle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dataengine.converters' has no attribute {name!r}")
