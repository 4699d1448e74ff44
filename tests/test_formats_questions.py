"""Every fixture of every source, rendered in every answer style, reads right.

A question wraps only a referring expression in a template; an instruction is used as written (with the style's
hint or a task cue); the query appears once; a printed label is a short phrase, never the instruction.
"""

from __future__ import annotations

import pytest

from dataengine.formats import STYLE_NAMES, UnsupportedTaskError, get_style, render_record_item
from dataengine.formats.base import SHORT_LABEL_WORDS, item_label
from dataengine.formats.qa import as_phrase, as_sentence
from dataengine.formats.templates import TEMPLATES
from dataengine.records.query import guess_query_kind, query_kind_of
from dataengine.shards import iter_grounding

# Template text around the slot, to detect a template wrapped around an instruction.
TEMPLATE_PARTS = {task: [t.split("{query}") for t in options] for task, options in TEMPLATES.items()}


def _spatial_items(folder):
    for sample in iter_grounding(folder):
        for index, item in enumerate(sample.record.items):
            if item.task != "vqa":
                yield sample.record, index, item


def test_every_source_sets_the_query_kind(every_source):
    kinds = {}
    for source, folder in every_source.items():
        for _, _, item in _spatial_items(folder):
            assert item.query_kind is not None, (source, item.query)
            kinds.setdefault(source, set()).add(item.query_kind)
            if item.query_kind == "expression":  # a sentence is never stored as an expression
                assert guess_query_kind(item.query) == "expression", (source, item.query)
    assert kinds["refcoco"] == kinds["pixmo-points"] == {"expression"}
    for source in ("robopoint", "where2place", "sharerobot"):
        assert kinds[source] == {"instruction"}
    assert kinds["roborefit"] == kinds["sim-frames"] == {"expression", "instruction"}
    assert "llava-onevision" not in kinds  # vqa only


@pytest.mark.parametrize("style_name", STYLE_NAMES)
def test_every_fixture_reads_right_in_every_style(every_source, style_name):
    style = get_style(style_name)
    rendered = 0
    for source, folder in every_source.items():
        for record, index, item in _spatial_items(folder):
            try:
                question, answer = render_record_item(record, index, style)
            except UnsupportedTaskError:
                assert not style.supports(item.task)
                continue
            rendered += 1
            where = (source, record.key, index, question)
            query = item.query.strip()
            if query_kind_of(item) == "instruction":
                sentence = as_sentence(query)
                assert question.startswith(sentence), where  # used as written, no template before it
                assert question.count(sentence) == 1, where
                assert query not in answer, where  # never printed as a label
                assert len(question) > len(sentence), where  # a hint or task cue says what to answer with
            else:
                phrase = as_phrase(query)
                assert question.count(phrase) == 1, where
                assert any(
                    question.startswith(before) and after.strip(' .?!:"') in question
                    for before, after in TEMPLATE_PARTS[item.task]
                ), where
            label = item_label(item)
            if label is not None:
                assert len(label.split()) <= SHORT_LABEL_WORDS, where
                assert guess_query_kind(label) == "expression", where
    assert rendered > 0


def test_instruction_with_several_points_is_one_item(every_source):
    multi = [item for _, _, item in _spatial_items(every_source["robopoint"]) if item.task == "point"]
    assert any(len(item.points) > 1 for item in multi)
    question, answer = render_record_item(*_first_multi_point(every_source["robopoint"]), get_style("qwen2.5-vl"))
    assert answer.count('"point_2d"') > 1 and '"label"' not in answer  # no instruction repeated per point
    assert question.count("In the image, there is an item") == 1


def _first_multi_point(folder):
    for record, index, item in _spatial_items(folder):
        if item.task == "point" and len(item.points) > 1:
            return record, index


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Man on the left.", "expression"),
        ("left guy", "expression"),
        ("open laptop", "expression"),
        ("the cut-off bottle", "expression"),
        ("pick up the red cup", "instruction"),
        ("I want to get the large yellow pear", "instruction"),
        ("Please point out the free area between the two cups.", "instruction"),
        ("Free spot 0?", "instruction"),
        ("In the image, there is an item encased within a red rectangle. Pinpoint several points.", "instruction"),
        ("place the red fork to the left of the left burner", "instruction"),
    ],
)
def test_guess_query_kind(text, kind):
    assert guess_query_kind(text) == kind


def test_old_records_without_query_kind_are_guessed():
    from dataengine.records import BoxItem

    old = BoxItem.model_validate({"task": "box", "query": "place the fork left of the burner", "boxes": [[0, 0, 1, 1]]})
    assert old.query_kind is None and query_kind_of(old) == "instruction" and item_label(old) is None
    phrase = BoxItem.model_validate({"task": "box", "query": "Red mug.", "boxes": [[0, 0, 1, 1]]})
    assert query_kind_of(phrase) == "expression" and item_label(phrase) == "Red mug"
