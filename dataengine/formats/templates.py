"""Question phrasings per task, chosen deterministically from (key, item index, seed).

Every template holds `{query}` once and wraps a referring expression (a noun phrase; point templates read right for
plural phrases too, as PixMo's counting labels are); instructions are never wrapped (`formats.qa`). The choice uses
SHA-256 (not Python's salted `hash`), so the same record, item and seed give the same question on every machine and
run. Custom sets load from JSON or YAML: `{"box": ["Find {query}.", ...], "point": [...], "trace": [...]}` (tasks
left out keep the built-in set).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from dataengine.errors import InputError

QUERY_SLOT = "{query}"

BOX_TEMPLATES = (
    "Locate {query} in the image and give its bounding box.",
    "Where is {query}? Answer with a bounding box.",
    "Find the bounding box of {query}.",
    "Give the bounding box for: {query}",
    "Please provide the bounding box of the region this phrase describes: {query}",
    "Detect {query} and output its box coordinates.",
    "Draw a box around {query}.",
    "Which region shows {query}? Give its bounding box.",
    "Output the bounding box of {query}.",
    'Ground the expression "{query}" with a bounding box.',
    "Box the object described as: {query}",
    "What are the box coordinates of {query}?",
    "Mark {query} with a bounding box.",
    "Identify {query} and return its bounding box.",
    "Show me where {query} is by giving a bounding box.",
    "Find {query} in this picture and report its bounding box.",
    "Referring expression: {query}. Give the matching bounding box.",
    "Localize {query}. Reply with box coordinates.",
    "Put a bounding box on {query}.",
    "Give the coordinates of the box that encloses {query}.",
    "Where in the image can you see {query}? Return its bounding box.",
    'Return the bounding box for the object that matches "{query}".',
)
POINT_TEMPLATES = (
    "Point to {query}.",
    "Answer with points for the location of {query}.",
    "Mark {query} with a point.",
    "Give the point coordinates of {query}.",
    "Locate {query} and answer with one or more points.",
    "Pinpoint {query} in the image.",
    "Indicate {query} with points.",
    "Which points in the image correspond to {query}?",
    "Show the location of {query} by pointing.",
    "Provide points that lie on {query}.",
    "Point at: {query}",
    "Find {query} and give its location as points.",
    "Place points on {query}.",
    "Answer with points: {query}",
    "Identify the location of {query} with points.",
    "Give the exact point coordinates of {query}.",
    "Select points on {query}.",
    "Point out {query} in this picture.",
    "Click on {query}.",
    "Give the pixel location of {query} as points.",
    "Task: {query}. Answer with points in the image.",
    "Mark the spots for: {query}",
)
TRACE_TEMPLATES = (
    "Draw the trajectory for: {query}",
    "Give the visual trace of the motion for: {query}",
    "Task: {query}. Predict the path as a sequence of points.",
    "Which path should be followed for: {query}? Answer with ordered points.",
    "Sketch the 2-D trajectory in the image for: {query}",
    "Predict the end-effector trace for the instruction: {query}",
    "Output the ordered waypoints for: {query}",
    "Give the motion path, as points in order, for: {query}",
    "Instruction: {query}. Draw the trajectory as a list of points.",
    "Plot the trajectory in the image for this task: {query}",
    "Show the path in image coordinates for: {query}",
    'What trajectory accomplishes "{query}"? Answer with points in order.',
    "List the trajectory points, start to end, for: {query}",
    "Predict the future 2-D trajectory for: {query}",
    "Give the sequence of image points the gripper passes through for: {query}",
    'Draw the visual trace for the task "{query}".',
    'Describe the path for "{query}" as ordered points.',
    "Mark the route, start to finish, for: {query}",
    "Provide the waypoints of the trajectory for: {query}",
    "Outline the movement path in the image for: {query}",
    "Return the polyline of the motion for: {query}",
    "Task: {query}. Where does the motion go? Answer with a trace of points.",
)
TEMPLATES: dict[str, tuple[str, ...]] = {"box": BOX_TEMPLATES, "point": POINT_TEMPLATES, "trace": TRACE_TEMPLATES}


def stable_index(count: int, *parts: object) -> int:
    """A deterministic index in [0, count) from the parts (SHA-256 of their joined text)."""
    if count <= 0:
        raise InputError("stable_index needs count > 0")
    text = "\x1f".join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def pick_template(
    task: str, key: str, item_index: int, seed: int = 0, templates: Mapping[str, Sequence[str]] | None = None
) -> str:
    """The template for item `item_index` of record `key` under `seed`."""
    table = TEMPLATES if templates is None else templates
    options = table.get(task)
    if not options:
        raise InputError(f"no question templates for task {task!r}; have {sorted(table)}")
    return options[stable_index(len(options), "question", task, key, item_index, seed)]


def fill_template(template: str, query: str) -> str:
    """Put the query in the template's `{query}` slot (other braces are left alone). A query that ends in
    ".", "?" or "!" keeps its own mark in place of a "." that follows the slot."""
    query = query.strip()
    before, _, after = template.partition(QUERY_SLOT)
    if query.endswith((".", "?", "!")) and after.startswith("."):
        after = after[1:]
    return before + query + after


def check_templates(templates: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Validate a template table: known tasks, non-empty lists of strings that each hold `{query}` once."""
    out: dict[str, tuple[str, ...]] = {}
    for task, options in templates.items():
        if task not in TEMPLATES:
            raise InputError(f"templates: unknown task {task!r}; valid tasks: {list(TEMPLATES)}")
        if isinstance(options, str) or not options or not all(isinstance(t, str) for t in options):
            raise InputError(f"templates[{task!r}] must be a non-empty list of strings")
        bad = [t for t in options if t.count(QUERY_SLOT) != 1]
        if bad:
            raise InputError(f"templates[{task!r}]: each template needs exactly one {QUERY_SLOT}; bad: {bad[:3]}")
        out[task] = tuple(options)
    return out


def load_templates(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read a JSON or YAML template file; tasks it leaves out keep the built-in templates."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read templates file {path}: {exc}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise InputError(f"templates file {path} is not valid JSON/YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"templates file {path} must map task -> list of templates")
    return {**TEMPLATES, **check_templates(data)}
