"""Render a grounding item to (question, answer) text for an answer style."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dataengine.formats.base import AnswerStyle
from dataengine.formats.templates import fill_template, pick_template
from dataengine.records.grounding import BoxItem, GroundingRecord, PointItem, TraceItem


def render_item(
    item: BoxItem | PointItem | TraceItem,
    style: AnswerStyle,
    width: int,
    height: int,
    *,
    key: str,
    item_index: int,
    seed: int = 0,
    templates: Mapping[str, Sequence[str]] | None = None,
    hint: bool = True,
) -> tuple[str, str]:
    """(question, answer) for item `item_index` of record `key` on a width x height image.

    The question is a template picked from (key, item_index, seed) with the item's query in it, followed by the
    style's notation hint when `hint` is true; the answer is `style.render(item, width, height)`. Raises
    `UnsupportedTaskError` when the style has no notation for the item's task.
    """
    answer = style.render(item, width, height)
    question = fill_template(pick_template(item.task, key, item_index, seed, templates), item.query)
    note = style.hint(item.task) if hint else ""
    if not note:
        return question, answer
    end = "" if question.endswith((".", "?", "!")) else "."
    return f"{question}{end} {note}", answer


def render_record_item(
    record: GroundingRecord,
    index: int,
    style: AnswerStyle,
    *,
    seed: int = 0,
    templates: Mapping[str, Sequence[str]] | None = None,
    hint: bool = True,
) -> tuple[str, str]:
    """`render_item` for item `index` (a box, point or trace item) of a record with an image: the frame is the
    record's image size, the template is picked from the record's key."""
    return render_item(
        record.items[index],
        style,
        record.image.width,
        record.image.height,
        key=record.key,
        item_index=index,
        seed=seed,
        templates=templates,
        hint=hint,
    )
