"""Question templates, (question, answer) rendering and the spatial prompts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dataengine.errors import InputError
from dataengine.formats import (
    SPATIAL_PROMPT_PAPER,
    SPATIAL_PROMPT_UPSTREAM,
    TEMPLATES,
    UnsupportedTaskError,
    apply_spatial_prompt,
    fill_template,
    get_style,
    load_templates,
    pick_template,
    render_item,
)
from dataengine.formats.qa import TASK_CUES
from dataengine.records import BoxItem, PointItem, TraceItem

ITEMS = {
    "box": BoxItem(task="box", query="the red mug near {braces}", boxes=[[10.0, 20.0, 30.0, 40.0]]),
    "point": PointItem(task="point", query="free space left of the plate", points=[[5.0, 6.0]]),
    "trace": TraceItem(
        task="trace", query="the way to the bowl", query_kind="expression", trace=[[1.0, 2.0], [50.0, 40.0]]
    ),
}


@pytest.mark.parametrize("task", ["box", "point", "trace"])
def test_at_least_twenty_distinct_templates_with_the_query(task):
    options = TEMPLATES[task]
    assert len(set(options)) == len(options) >= 20
    query = ITEMS[task].query
    for template in options:
        assert template.count("{query}") == 1
        assert query in fill_template(template, query)


@pytest.mark.parametrize("task", ["box", "point", "trace"])
def test_choice_is_deterministic_and_spread(task):
    picks = [pick_template(task, f"key{i:04d}", i % 3, seed=7) for i in range(400)]
    assert picks == [pick_template(task, f"key{i:04d}", i % 3, seed=7) for i in range(400)]
    assert len(set(picks)) == len(TEMPLATES[task])  # every phrasing gets used
    other_seed = [pick_template(task, f"key{i:04d}", i % 3, seed=8) for i in range(400)]
    assert other_seed != picks


def test_choice_does_not_depend_on_python_hash_seed():
    code = "from dataengine.formats import pick_template as p; print([p('box', f'k{i}', i, 3) for i in range(30)])"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], env={"PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str([pick_template("box", f"k{i}", i, 3) for i in range(30)])


def test_fill_template_keeps_the_query_punctuation():
    assert fill_template("Point to {query}.", "where should the cup go?") == "Point to where should the cup go?"
    assert fill_template("Point to {query}.", " the cup ") == "Point to the cup."


@pytest.mark.parametrize("task", ["box", "point", "trace"])
def test_render_item_question_and_answer(task):
    item = ITEMS[task]
    style = get_style("robopoint")
    question, answer = render_item(item, style, 100, 100, key="img_0001", item_index=2, seed=5)
    assert item.query in question
    assert question.endswith(style.hint(task))
    assert answer == style.render(item, 100, 100)
    again = render_item(item, style, 100, 100, key="img_0001", item_index=2, seed=5)
    assert again == (question, answer)
    bare, _ = render_item(item, style, 100, 100, key="img_0001", item_index=2, seed=5, hint=False)
    assert bare == fill_template(pick_template(task, "img_0001", 2, 5), item.query)


@pytest.mark.parametrize("task", ["box", "point", "trace"])
def test_instructions_are_used_as_written(task):
    coords = {"box": {"boxes": [[10.0, 20.0, 30.0, 40.0]]}, "point": {"points": [[5.0, 6.0], [7.0, 8.0]]}}
    fields = coords.get(task, {"trace": [[1.0, 2.0], [50.0, 40.0]]})
    item = ITEMS[task].model_copy(update={"query": "put the apple in the bowl", "query_kind": "instruction", **fields})
    style = get_style("qwen2.5-vl")
    question, answer = render_item(item, style, 100, 100, key="k", item_index=0)
    assert question == "Put the apple in the bowl. " + style.hint(task, labelled=False)
    assert "apple" not in answer and '"label"' not in question
    bare, _ = render_item(item, style, 100, 100, key="k", item_index=0, hint=False)
    assert bare == "Put the apple in the bowl. " + TASK_CUES[task]
    molmo_question, _ = render_item(item, get_style("florence2"), 100, 100, key="k", item_index=0)
    assert molmo_question == bare  # a style without a hint still says what to answer with


def test_expressions_read_as_phrases():
    item = ITEMS["box"].model_copy(update={"query": "Man on the left."})
    question, answer = render_item(item, get_style("qwen2.5-vl"), 100, 100, key="k", item_index=0, hint=False)
    assert question == fill_template(pick_template("box", "k", 0, 0), "man on the left")
    assert '"label": "Man on the left"' in answer


def test_render_item_refuses_what_the_style_cannot_express():
    with pytest.raises(UnsupportedTaskError):
        render_item(ITEMS["box"], get_style("molmo"), 100, 100, key="k", item_index=0)


def test_custom_templates_file(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"box": ["Find {query} now."]}))
    table = load_templates(path)
    assert table["box"] == ("Find {query} now.",)
    assert table["point"] == TEMPLATES["point"]
    question, _ = render_item(
        ITEMS["box"], get_style("normalized"), 100, 100, key="k", item_index=0, templates=table, hint=False
    )
    assert question == "Find the red mug near {braces} now."
    yaml_path = tmp_path / "t.yaml"
    yaml_path.write_text("trace:\n  - 'Trace {query}'\n")
    assert load_templates(yaml_path)["trace"] == ("Trace {query}",)
    for bad in ({"box": ["no slot"]}, {"boxes": ["{query}"]}, {"box": []}, {"box": "{query}"}):
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError):
            load_templates(path)


def test_spatial_prompts():
    assert SPATIAL_PROMPT_UPSTREAM == (
        "Your task is {instruction}. To identify the key objects for your task. "
        "Locate their bounding boxes in [x1,y1,x2,y2] format."
    )
    assert SPATIAL_PROMPT_PAPER == "Figure out how to execute it, then locate the key object needed."
    assert apply_spatial_prompt("pick up the red cup.") == (
        "Your task is pick up the red cup. To identify the key objects for your task. "
        "Locate their bounding boxes in [x1,y1,x2,y2] format."
    )
    assert apply_spatial_prompt("Put {x} in the bowl ", "paper") == (
        "Put {x} in the bowl. Figure out how to execute it, then locate the key object needed."
    )
    with pytest.raises(InputError, match="valid"):
        apply_spatial_prompt("x", "other")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        apply_spatial_prompt("  . ")


def test_public_names_resolve():
    import dataengine.formats as formats

    for name in formats.__all__:
        assert getattr(formats, name) is not None
