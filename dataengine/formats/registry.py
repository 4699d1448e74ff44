"""Style names -> classes, and `get_style(name, **options)`."""

from __future__ import annotations

import inspect
from typing import Any

from dataengine.errors import InputError
from dataengine.formats.base import AnswerStyle
from dataengine.formats.florence2 import Florence2Style
from dataengine.formats.internvl import InternVLStyle
from dataengine.formats.internvla_m1 import InternVLAM1Style
from dataengine.formats.molmo import MolmoStyle
from dataengine.formats.normalized import NormalizedStyle
from dataengine.formats.qwen3vl import Qwen3VLStyle
from dataengine.formats.qwen25vl import Qwen25VLStyle
from dataengine.formats.robopoint import RoboPointStyle

STYLES: dict[str, type[AnswerStyle]] = {
    cls.name: cls
    for cls in (
        Qwen25VLStyle,
        Qwen3VLStyle,
        InternVLStyle,
        Florence2Style,
        MolmoStyle,
        RoboPointStyle,
        InternVLAM1Style,
        NormalizedStyle,
    )
}
STYLE_NAMES = tuple(STYLES)


def style_options(name: str) -> list[str]:
    """Option names a style accepts (its constructor's keyword arguments)."""
    params = inspect.signature(_style_class(name).__init__).parameters.values()
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)  # object.__init__: no options
    return [p.name for p in params if p.name != "self" and p.kind not in variadic]


def get_style(name: str, **options: Any) -> AnswerStyle:
    """The answer style called `name`, configured with `options` (e.g. `max_pixels=50176` for qwen2.5-vl)."""
    cls = _style_class(name)
    valid = style_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InputError(f"style {name!r} has no option(s) {unknown}; valid options: {valid or 'none'}")
    return cls(**options)


def _style_class(name: str) -> type[AnswerStyle]:
    try:
        return STYLES[name]
    except KeyError:
        raise InputError(f"unknown answer style {name!r}; valid styles: {list(STYLE_NAMES)}") from None
