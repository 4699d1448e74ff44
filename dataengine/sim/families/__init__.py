"""Task families: what kind of task the simulator generates (`task.family` of a simulation recipe).

A family is one module here implementing `TaskFamily` (`base.py`): sample a layout, plan the expert, judge success,
write the instruction, and make the label arrays. Adding one (e.g. stacking) takes exactly:
1. `dataengine/sim/families/<name>.py` with a class implementing `TaskFamily`;
2. its line in `FAMILIES` below;
3. a task template `sim_scenes/tasks/<name>.yaml` with `family: <name>` (recipes name it with `task_template:`).
The generator, the replay check, the USD export and the closed-loop evaluation reach tasks only through
`get_family`. Pick-and-place is the first family.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dataengine.errors import InputError

if TYPE_CHECKING:
    from dataengine.sim.families.base import TaskFamily

FAMILIES: dict[str, str] = {
    "pick_place": "dataengine.sim.families.pick_place:PickPlace",
}
DEFAULT_FAMILY = "pick_place"


def get_family(name: str) -> TaskFamily:
    """The task family called `name` (InputError naming the known ones)."""
    try:
        module, attr = FAMILIES[name].split(":")
    except KeyError:
        raise InputError(f"unknown task family {name!r}; known: {', '.join(FAMILIES)}") from None
    return getattr(importlib.import_module(module), attr)()
