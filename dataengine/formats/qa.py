"""Render a grounding item to (question, answer) text for an answer style."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dataengine.formats.base import AnswerStyle, item_label
from dataengine.formats.templates import fill_template, pick_template
from dataengine.records.grounding import BoxItem, GroundingRecord, PointItem, TraceItem
from dataengine.records.query import query_kind_of

# Said after an instruction when the style has no hint of its own, so the question names what to answer with.
TASK_CUES = {
    "box": "Answer with a bounding box.",
    "point": "Answer with points.",
    "trace": "Answer with the trajectory as points in order.",
}


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

    A referring expression goes into a template picked from (key, item_index, seed); an instruction is used as
    written (first letter capitalised, closing full stop added) followed by a sentence naming the answer's kind
    (`TASK_CUES`) unless the style's hint is added. With `hint` true the question ends with the style's notation
    hint. The answer is `style.render(item, width, height)`. Raises `UnsupportedTaskError` when the style has no
    notation for the item's task.
    """
    answer = style.render(item, width, height)
    note = style.hint(item.task, labelled=item_label(item) is not None) if hint else ""
    if query_kind_of(item) == "instruction":
        question = as_sentence(item.query)
        note = note or TASK_CUES[item.task]
    else:
        question = fill_template(pick_template(item.task, key, item_index, seed, templates), as_phrase(item.query))
    if not note:
        return question, answer
    end = "" if question.endswith((".", "?", "!")) else "."
    return f"{question}{end} {note}", answer


def as_sentence(text: str) -> str:
    """An instruction as a sentence: stripped, first letter capitalised, a full stop added if it has no closing
    mark."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!", "。", "？", "！")) else text + "."


def as_phrase(text: str) -> str:
    """A referring expression ready for a template slot: stripped, trailing full stops dropped, a capitalised first
    word lowered unless it is an acronym ("Man on the left." -> "man on the left", "TV on the left" kept)."""
    text = text.strip().rstrip(".").rstrip()
    first = text.split()[0] if text else ""
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        return text[0].lower() + text[1:]
    return text


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
