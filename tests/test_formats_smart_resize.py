"""Our smart_resize against the real `qwen_vl_utils.smart_resize` on random sizes and pixel limits.

`import qwen_vl_utils` needs torchvision, which does not import beside this torch, so the reference function and
the module-level constants and helpers it uses are read from the installed package's `vision_process.py` with
`ast` and executed on their own: the code under comparison is still the package's own source.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import random
from pathlib import Path

import pytest

from dataengine.errors import InputError
from dataengine.geometry import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, smart_resize

REFERENCE_DEFS = {"round_by_factor", "ceil_by_factor", "floor_by_factor", "smart_resize"}


@pytest.fixture(scope="module")
def reference_smart_resize():
    spec = importlib.util.find_spec("qwen_vl_utils")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("qwen-vl-utils is not installed (it is in the 'test' extra)")
    source_path = Path(next(iter(spec.submodule_search_locations))) / "vision_process.py"
    tree = ast.parse(source_path.read_text(encoding="utf-8"))
    keep: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in REFERENCE_DEFS:
            keep.append(node)
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            plain = all(
                isinstance(n, ast.Constant | ast.BinOp | ast.operator | ast.Name | ast.Load)
                for n in ast.walk(node.value)
            )
            if plain:  # literal constants such as MAX_RATIO = 200, IMAGE_MAX_TOKEN_NUM = 16384
                keep.append(node)
    namespace: dict = {"math": math}
    exec("from typing import Optional, Union, Tuple, List, Any, Dict", namespace)
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(source_path), "exec"), namespace)
    assert set(namespace) >= REFERENCE_DEFS, f"reference file lacks {REFERENCE_DEFS - set(namespace)}"
    return namespace["smart_resize"]


def _reference(ref, height, width, factor, min_pixels, max_pixels):
    try:
        return ref(height, width, factor, min_pixels=min_pixels, max_pixels=max_pixels)
    except (ValueError, AssertionError):
        return "error"


def _ours(height, width, factor, min_pixels, max_pixels):
    try:
        return smart_resize(height, width, factor, min_pixels=min_pixels, max_pixels=max_pixels)
    except InputError:
        return "error"


def test_matches_reference_on_random_sizes_and_limits(reference_smart_resize):
    rng = random.Random(20240601)
    limit_choices = [
        (QWEN_MIN_PIXELS, QWEN_MAX_PIXELS),
        (784, 50176),
        (256 * 28 * 28, 1280 * 28 * 28),
        (3136, 200704),
    ]
    compared = zero_sides = 0
    for i in range(3000):
        if i % 3 == 0:
            min_pixels, max_pixels = rng.choice(limit_choices)
        else:  # random limits, sometimes max < min (both must refuse)
            min_pixels = rng.randint(1, 400_000)
            max_pixels = rng.randint(1, 4_000_000) if i % 10 else rng.randint(1, min_pixels)
        height = rng.randint(1, 5000) if i % 4 else rng.randint(1, 60)
        width = rng.randint(1, 5000) if i % 5 else rng.randint(1, 8000)
        factor = 28 if i % 7 else rng.choice([14, 16, 28, 32])
        expected = _reference(reference_smart_resize, height, width, factor, min_pixels, max_pixels)
        got = _ours(height, width, factor, min_pixels, max_pixels)
        if expected != "error" and min(expected) == 0:
            zero_sides += 1  # the reference returns a 0-pixel side here; we refuse instead
            assert got == "error", (height, width, factor, min_pixels, max_pixels)
            continue
        assert got == expected, (height, width, factor, min_pixels, max_pixels)
        compared += expected != "error"
    assert compared >= 1000, compared
    print(f"compared {compared} sizes, {zero_sides} zero-side cases")


def test_defaults_are_released_processor_limits(reference_smart_resize):
    assert smart_resize(480, 640) == reference_smart_resize(480, 640, 28, min_pixels=3136, max_pixels=12845056)
    assert smart_resize(480, 640, min_pixels=784, max_pixels=50176) == (168, 252)
    assert smart_resize(10, 10) == (56, 56)  # upsampled to min_pixels


def test_zero_side_and_extreme_ratio_are_clear_errors():
    with pytest.raises(InputError, match="cannot be resized"):
        smart_resize(100, 7000, min_pixels=784, max_pixels=50176)
    with pytest.raises(InputError, match="aspect ratio"):
        smart_resize(10, 2100)
    with pytest.raises(InputError, match="max_pixels"):
        smart_resize(100, 100, min_pixels=5000, max_pixels=4000)
