"""The source registry: CLI source name -> its converter class, imported when first asked for (so the CLI starts
without importing every reader).

Adding a converter takes exactly:
1. one module in `dataengine/converters/` with a `Converter` subclass (`converters.base`): `name`, `slug`,
   `license`, `layout` (the expected input, shown by `dataengine convert --help` and in errors), its own `Options`
   model when it takes source options, `plan` and `read`;
2. its line in `CONVERTERS` below;
3. a fixture builder in `dataengine/fixtures/` writing the source's exact upstream layout, and its line in
   `dataengine/fixtures/registry.py`;
4. a test converting that fixture (`tests/test_convert_*.py`).
Nothing else: the runner, the report, the CLI (`--option NAME=VALUE`) and corpus recipes (`options:`) take the
source options from the converter's `Options` model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dataengine.errors import InputError

if TYPE_CHECKING:
    from dataengine.converters.base import Converter

CONVERTERS: dict[str, str] = {
    "refcoco": "dataengine.converters.refcoco:RefCocoConverter",
    "refcoco+": "dataengine.converters.refcoco:RefCocoPlusConverter",
    "refcocog": "dataengine.converters.refcoco:RefCocoGConverter",
    "roborefit": "dataengine.converters.roborefit:RoboRefItConverter",
    "llava-onevision": "dataengine.converters.llava_onevision:LlavaOneVisionConverter",
    "robopoint": "dataengine.converters.robopoint:RoboPointConverter",
    "where2place": "dataengine.converters.where2place:Where2PlaceConverter",
    "pixmo-points": "dataengine.converters.pixmo_points:PixmoPointsConverter",
    "sharerobot": "dataengine.converters.sharerobot:ShareRobotConverter",
    "sim-frames": "dataengine.converters.sim_frames:SimFramesConverter",
}


def get_converter(source: str) -> type[Converter]:
    try:
        module, name = CONVERTERS[source].split(":")
    except KeyError:
        raise InputError(f"unknown source {source!r}; choose one of: {', '.join(CONVERTERS)}") from None
    return getattr(importlib.import_module(module), name)


def source_options(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` checked against the source's `Options` model (InputError naming bad or unknown options and the
    valid ones), as JSON-able values without the defaults."""
    options = get_converter(source).parse_options(values)
    return options.model_dump(mode="json", exclude_defaults=True)


def layouts_epilog() -> str:
    """Every source's expected input, one paragraph per distinct layout (the `convert --help` epilog)."""
    by_layout: dict[str, list[str]] = {}
    for source in CONVERTERS:
        converter = get_converter(source)
        fields = converter.Options.model_fields
        options = "; ".join(f"{name} ({field.description})" for name, field in fields.items())
        text = converter.layout + (f" Options (--option NAME=VALUE): {options}." if options else "")
        by_layout.setdefault(text, []).append(source)
    paragraphs = [f"{' | '.join(names)}: {text}" for text, names in by_layout.items()]
    return "Expected input layouts:\n\n" + "\n\n".join(paragraphs)
