"""The source registry: CLI source name -> converter class. Add a source by adding one line here."""

from __future__ import annotations

from dataengine.converters.base import Converter
from dataengine.converters.llava_onevision import LlavaOneVisionConverter
from dataengine.converters.pixmo_points import PixmoPointsConverter
from dataengine.converters.refcoco import RefCocoConverter, RefCocoGConverter, RefCocoPlusConverter
from dataengine.converters.robopoint import RoboPointConverter
from dataengine.converters.roborefit import RoboRefItConverter
from dataengine.converters.sharerobot import ShareRobotConverter
from dataengine.converters.where2place import Where2PlaceConverter
from dataengine.errors import InputError
from dataengine.sim.grounding_source import SimFramesConverter

CONVERTERS: dict[str, type[Converter]] = {
    "refcoco": RefCocoConverter,
    "refcoco+": RefCocoPlusConverter,
    "refcocog": RefCocoGConverter,
    "roborefit": RoboRefItConverter,
    "llava-onevision": LlavaOneVisionConverter,
    "robopoint": RoboPointConverter,
    "where2place": Where2PlaceConverter,
    "pixmo-points": PixmoPointsConverter,
    "sharerobot": ShareRobotConverter,
    "sim-frames": SimFramesConverter,
}


def get_converter(source: str) -> type[Converter]:
    try:
        return CONVERTERS[source]
    except KeyError:
        raise InputError(f"unknown source {source!r}; choose one of: {', '.join(CONVERTERS)}") from None
