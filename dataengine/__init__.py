"""Spatial grounding data engine: grounding corpora, simulated demos and a thin VLA training loop."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dataengine")
except PackageNotFoundError:  # running from a checkout without install
    __version__ = "0.1.0"

__all__ = ["__version__"]
