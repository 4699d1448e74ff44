"""Answer styles: exact notation, parse(render(x)) within each style's quantization error, tolerant parsing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dataengine.errors import InputError
from dataengine.formats import STYLE_NAMES, UnsupportedTaskError, get_style
from dataengine.geometry import smart_resize
from dataengine.records import BoxItem, PointItem, TraceItem

# Every registered style plus configured variants.
STYLE_CASES = [(name, {}) for name in STYLE_NAMES] + [
    ("qwen2.5-vl", {"min_pixels": 784, "max_pixels": 50176}),
    ("internvla-m1", {"min_pixels": 3136, "max_pixels": 12845056}),
    ("normalized", {"decimals": 4}),
]
LABEL_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="<>")
LABELS = st.one_of(st.none(), st.text(LABEL_CHARS, min_size=1, max_size=20).map(str.strip).filter(bool))


@st.composite
def image_and_targets(draw, task: str):
    width = draw(st.integers(1, 6000))
    height = draw(st.integers(1, 6000))
    assume(max(width, height) / min(width, height) <= 50)
    n = draw(st.integers(1 if task != "trace" else 2, 6))
    coords = []
    for _ in range(n):
        if task == "box":
            xs = sorted(draw(st.lists(st.integers(0, width * 100), min_size=2, max_size=2, unique=True)))
            ys = sorted(draw(st.lists(st.integers(0, height * 100), min_size=2, max_size=2, unique=True)))
            coords.append([xs[0] / 100, ys[0] / 100, xs[1] / 100, ys[1] / 100])
        else:
            coords.append([draw(st.integers(0, width * 100)) / 100, draw(st.integers(0, height * 100)) / 100])
    return width, height, coords


def _assert_close(style, task, parsed, expected, width, height):
    tol_x, tol_y = style.tolerance_px(width, height)
    slack = 1e-9 * max(width, height)
    assert len(parsed) == len(expected), (parsed, expected)
    for got, want in zip(parsed, expected, strict=True):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            tol = tol_x if i % 2 == 0 else tol_y
            assert abs(g - w) <= tol + slack, (style.name, task, got, want, (tol_x, tol_y), width, height)


@pytest.mark.parametrize("task", ["box", "point", "trace"])
@pytest.mark.parametrize(("name", "options"), STYLE_CASES, ids=lambda v: str(v) if v else "default")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_parse_render_round_trip(name, options, task, data):
    style = get_style(name, **options)
    if not style.supports(task):
        with pytest.raises(UnsupportedTaskError):
            style.render([[1, 1, 2, 2]] if task == "box" else [[1, 1], [2, 2]], 10, 10, task=task)
        return
    width, height, coords = data.draw(image_and_targets(task))
    label = data.draw(LABELS)
    text = style.render(coords, width, height, task=task, label=label)
    expected = style.order(task, coords)
    _assert_close(style, task, style.parse(task, text, width, height), expected, width, height)
    wrapped = f"Sure! I found 2 of them.\n```json\n{text}\n```\nLet me know if you need more."
    _assert_close(style, task, style.parse(task, wrapped, width, height), expected, width, height)


@pytest.mark.parametrize(("name", "options"), STYLE_CASES, ids=lambda v: str(v) if v else "default")
def test_tolerance_is_half_a_printed_unit(name, options):
    style = get_style(name, **options)
    tol_x, tol_y = style.tolerance_px(640, 480)
    frame_w, frame_h = style.frame_size(640, 480)
    unit = 1.0 if style.decimals is None else 10.0**-style.decimals
    assert tol_x == pytest.approx(0.5 * unit * 640 / frame_w)
    assert tol_y == pytest.approx(0.5 * unit * 480 / frame_h)


# --- exact notation ------------------------------------------------------------------------------------------
BOX = BoxItem(task="box", query="man on the left", boxes=[[64.0, 48.0, 320.0, 240.0]], label="person")
POINTS = PointItem(task="point", query="the cup", points=[[320.0, 240.0], [64.0, 48.0]])
TRACE = TraceItem(task="trace", query="pick up the cup", trace=[[0.0, 0.0], [320.0, 240.0], [640.0, 480.0]])

EXPECTED = {
    ("qwen2.5-vl", "box"): '[{"bbox_2d": [64, 48, 322, 238], "label": "person"}]',
    (
        "qwen2.5-vl",
        "point",
    ): '[{"point_2d": [322, 238], "label": "the cup"}, {"point_2d": [64, 48], "label": "the cup"}]',
    ("qwen2.5-vl", "trace"): "[[0, 0], [322, 238], [644, 476]]",
    ("qwen3-vl", "box"): '[{"bbox_2d": [100, 100, 500, 500], "label": "person"}]',
    ("qwen3-vl", "trace"): "[[0, 0], [500, 500], [1000, 1000]]",
    ("internvl", "box"): "<ref>person</ref><box>[[100, 100, 500, 500]]</box>",
    ("internvl", "point"): "[[500, 500], [100, 100]]",
    ("florence2", "box"): "person<loc_100><loc_100><loc_500><loc_500>",
    ("florence2", "trace"): "<loc_0><loc_0><loc_500><loc_500><loc_999><loc_999>",  # an instruction is no label
    ("molmo", "point"): '<points x1="10.0" y1="10.0" x2="50.0" y2="50.0" alt="the cup">the cup</points>',
    ("molmo", "trace"): '<points x1="0.0" y1="0.0" x2="50.0" y2="50.0" x3="100.0" y3="100.0" alt=""></points>',
    ("robopoint", "box"): "[(0.100, 0.100, 0.500, 0.500)]",
    ("robopoint", "point"): "[(0.500, 0.500), (0.100, 0.100)]",
    ("internvla-m1", "box"): "[25,17,126,84]",
    ("internvla-m1", "trace"): "[[0,0],[126,84],[252,168]]",
    ("normalized", "box"): "[0.100, 0.100, 0.500, 0.500]",
    ("normalized", "point"): "[[0.500, 0.500], [0.100, 0.100]]",
}


@pytest.mark.parametrize(("name", "task"), sorted(EXPECTED))
def test_exact_notation(name, task):
    item = {"box": BOX, "point": POINTS, "trace": TRACE}[task]
    assert get_style(name).render(item, 640, 480) == EXPECTED[(name, task)]


def test_qwen_frame_is_smart_resized_image():
    assert smart_resize(480, 640) == (476, 644)
    assert get_style("qwen2.5-vl").frame_size(640, 480) == (644.0, 476.0)
    assert get_style("internvla-m1").frame_size(640, 480) == (252.0, 168.0)
    assert get_style("qwen2.5-vl", max_pixels=50176, min_pixels=784).frame_size(640, 480) == (252.0, 168.0)


def test_molmo_single_point_and_box_refusal():
    molmo = get_style("molmo")
    point = PointItem(task="point", query="q", points=[[393.6, 194.88]], label="mug")
    assert molmo.render(point, 640, 480) == '<point x="61.5" y="40.6" alt="mug">mug</point>'
    assert molmo.supports("box") is False
    with pytest.raises(UnsupportedTaskError, match=r"molmo.*'box'.*supports"):
        molmo.render(BOX, 640, 480)
    with pytest.raises(UnsupportedTaskError):
        molmo.parse("box", "<point x='1' y='2'>a</point>", 640, 480)


def test_florence_bins_follow_the_processor():
    florence = get_style("florence2")
    assert florence.encode([0.0, 0.47, 639.99, 480.0], 640, 480) == [0, 0, 999, 999]
    assert florence.decode([0, 999], 640, 480) == pytest.approx([0.32, 479.76])


@pytest.mark.parametrize(
    ("name", "task", "text", "expected"),
    [
        (
            "qwen2.5-vl",
            "box",
            'Here:\n```json\n[\n  {"bbox_2d": [64, 48, 322, 238], "label": "box [1,2,3,4]"}\n]\n```',
            [[64 * 640 / 644, 48 * 480 / 476, 322 * 640 / 644, 238 * 480 / 476]],
        ),
        ("qwen3-vl", "point", '{"point_2d": [500, 250]}', [[320.0, 120.0]]),
        ("internvl", "box", "The <ref>cup 2</ref> is at <box>[[100,100,500,500]]</box>.", [[64.0, 48.0, 320.0, 240.0]]),
        ("florence2", "point", "</s><s>cup<loc_499><loc_499></s>", [[319.68, 239.76]]),
        (
            "molmo",
            "point",
            'Counting the <points x1="10" y1=\'20\' x2=50.5 y2="60" alt="x3=1 y3=2">c</points> shows a total of 2.',
            [[64.0, 96.0], [323.2, 288.0]],
        ),
        ("molmo", "point", "There are none.", []),
        ("robopoint", "point", "The free space is at [(0.5, 0.25),(0.1,0.1)] roughly.", [[320.0, 120.0], [64.0, 48.0]]),
        ("normalized", "box", "Answer: [0.1, 0.1, 0.5, 0.5] (confident)", [[64.0, 48.0, 320.0, 240.0]]),
        (
            "internvla-m1",
            "box",
            "[[25, 17, 126, 84]]",
            [[25 * 640 / 252, 17 * 480 / 168, 126 * 640 / 252, 84 * 480 / 168]],
        ),
    ],
)
def test_parse_tolerates_model_text(name, task, text, expected):
    parsed = get_style(name).parse(task, text, 640, 480)
    assert len(parsed) == len(expected)
    for got, want in zip(parsed, expected, strict=True):
        assert got == pytest.approx(want)


def test_registry_errors_name_what_is_valid():
    with pytest.raises(InputError, match="valid styles"):
        get_style("qwen9")
    with pytest.raises(InputError, match="valid options"):
        get_style("qwen3-vl", max_pixels=5)
    with pytest.raises(InputError, match="min_pixels"):
        get_style("qwen2.5-vl", min_pixels=100, max_pixels=10)
    with pytest.raises(InputError, match="task="):
        get_style("normalized").render([[1, 2]], 10, 10)
    with pytest.raises(InputError, match="4-number"):
        get_style("normalized").render([[1, 2]], 10, 10, task="box")
