"""`dataengine export llava-json`: exact JSONL, untouched deduplicated images, skips with reasons, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataengine.cli.app import app
from dataengine.errors import InputError
from dataengine.export.llava_json import export_llava_json
from dataengine.formats import get_style, render_item
from dataengine.images import sha1_hex
from dataengine.records import PointItem, TraceItem
from tests.fixtures.llava_shards import build_llava_fixture

TEMPLATES = {"box": ["Find {query}."], "point": ["Point to {query}."], "trace": ["Trace: {query}"]}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("llava_shards")
    images = build_llava_fixture(root)
    return root, images


@pytest.fixture(scope="module")
def templates_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("templates") / "templates.json"
    path.write_text(json.dumps(TEMPLATES))
    return path


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "annotations.jsonl").read_text(encoding="utf-8").splitlines()]


def test_exact_jsonl_qwen25vl(shards, templates_file, tmp_path):
    root, images = shards
    out = tmp_path / "out"
    report = export_llava_json(root, out, style="qwen2.5-vl", templates=templates_file, hint=False)
    jpg = f"images/{sha1_hex(images['jpg'])}.jpg"
    png = f"images/{sha1_hex(images['png'])}.png"

    def row(id_, image, question, answer):
        return {
            "id": id_,
            "images": [image],
            "conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}],
        }

    expected = [
        # 64x48 -> smart_resize 56x56; 56x28 -> 84x56 (upsampled to min_pixels 3136)
        row("img_a-0", jpg, "Find the red square.", '[{"bbox_2d": [7, 7, 35, 35], "label": "square"}]'),
        row(
            "img_a-1",
            jpg,
            "Point to free space.",
            '[{"point_2d": [28, 28], "label": "free space"}, {"point_2d": [7, 14], "label": "free space"}]',
        ),
        row("img_a-2", jpg, "Move right. Answer with the trajectory as points in order.", "[[0, 0], [56, 56]]"),
        {
            "id": "img_a-3",
            "images": [jpg],
            "conversations": [
                {"from": "human", "value": "<image>\nWhat colour is it?"},
                {"from": "gpt", "value": "Red."},
                {"from": "human", "value": "Sure?"},
                {"from": "gpt", "value": "Yes."},
            ],
        },
        row("img_b-0", png, "Find all.", '[{"bbox_2d": [0, 0, 84, 56], "label": "all"}]'),
        row("img_c-0", jpg, "Point to centre.", '[{"point_2d": [28, 28], "label": "centre"}]'),
        {"id": "text_d-0", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
    ]
    text = (out / "annotations.jsonl").read_text(encoding="utf-8")
    assert text == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in expected)
    assert report.conversations == 7
    assert dict(report.skipped) == {
        "duplicate_key": 1,  # img_c again in the second shard set
        "image_sha1_mismatch": 1,  # img_f
        "invalid_record": 2,  # truncated JSON, box outside the image
        "vqa_starts_with_gpt": 1,  # img_e
    }
    assert (report.images, report.images_deduplicated) == (2, 2)
    info = json.loads((out / "export.json").read_text())
    assert info["style"] == "qwen2.5-vl"
    assert info["style_options"] == {"factor": 28, "max_pixels": 12845056, "min_pixels": 3136}
    assert info["templates"] == "templates.json"


def test_images_are_untouched_copies_named_by_sha1(shards, tmp_path):
    root, images = shards
    out = tmp_path / "out"
    export_llava_json(root, out, style="normalized")
    files = sorted(p.name for p in (out / "images").iterdir())
    assert files == sorted([f"{sha1_hex(images['jpg'])}.jpg", f"{sha1_hex(images['png'])}.png"])
    assert (out / "images" / files[0]).read_bytes() in (images["jpg"], images["png"])
    for path in (out / "images").iterdir():
        assert sha1_hex(path.read_bytes()) == path.stem
    for line in _lines(out):
        for rel in line.get("images", []):
            assert (out / rel).is_file()
        human = [t["value"] for t in line["conversations"] if t["from"] == "human"]
        text = "".join(t["value"] for t in line["conversations"])
        if "images" in line:
            assert human[0].startswith("<image>\n")
            assert text.count("<image>") == 1
        else:
            assert "<image>" not in text


def test_builtin_templates_and_hints_match_render_item(shards, tmp_path):
    root, _ = shards
    out = tmp_path / "out"
    report = export_llava_json(root, out, style="molmo", seed=11)
    assert report.skipped["unsupported_box"] == 2  # molmo has no box notation
    by_id = {line["id"]: line for line in _lines(out)}
    assert "img_a-0" not in by_id and "img_b-0" not in by_id
    molmo = get_style("molmo")
    point = PointItem(task="point", query="free space", points=[[32, 24], [8, 12]])
    trace = TraceItem(task="trace", query="move right", trace=[[0, 0], [64, 48]])
    for id_, item, index in (("img_a-1", point, 1), ("img_a-2", trace, 2)):
        question, answer = render_item(item, molmo, 64, 48, key="img_a", item_index=index, seed=11)
        assert by_id[id_]["conversations"] == [
            {"from": "human", "value": f"<image>\n{question}"},
            {"from": "gpt", "value": answer},
        ]
    assert by_id["img_a-1"]["conversations"][1]["value"] == (
        '<points x1="12.5" y1="25.0" x2="50.0" y2="50.0" alt="free space">free space</points>'
    )


def test_same_input_and_seed_give_identical_files(shards, tmp_path):
    root, _ = shards
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        export_llava_json(root, out, style="internvla-m1", seed=3)
    for name in ("annotations.jsonl", "export.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    other = tmp_path / "c"
    export_llava_json(root, other, style="internvla-m1", seed=4)
    assert (other / "annotations.jsonl").read_bytes() != (outs[0] / "annotations.jsonl").read_bytes()


def test_existing_export_needs_overwrite(shards, tmp_path):
    root, _ = shards
    out = tmp_path / "out"
    export_llava_json(root, out, style="robopoint")
    first = (out / "annotations.jsonl").read_bytes()
    with pytest.raises(InputError, match="--overwrite"):
        export_llava_json(root, out, style="robopoint")
    export_llava_json(root, out, style="robopoint", overwrite=True)
    assert (out / "annotations.jsonl").read_bytes() == first
    with pytest.raises(InputError, match=r"no \.tar shards"):
        export_llava_json(tmp_path / "out" / "images", tmp_path / "x")


def test_cli(shards, tmp_path):
    root, _ = shards
    out = tmp_path / "cli"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "export",
            "llava-json",
            str(root),
            "--out",
            str(out),
            "--style",
            "qwen2.5-vl",
            "--seed",
            "2",
            "--style-option",
            "max_pixels=50176",
            "--style-option",
            "min_pixels=784",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 7 conversations" in result.output
    assert "skipped invalid_record: 2" in result.output
    info = json.loads((out / "export.json").read_text())
    assert info["style_options"]["max_pixels"] == 50176 and info["seed"] == 2
    bad = runner.invoke(app, ["export", "llava-json", str(root), "--out", str(tmp_path / "bad"), "--style", "qwen9"])
    assert bad.exit_code != 0
    assert isinstance(bad.exception, InputError) and "valid styles" in str(bad.exception)
    bad_opt = runner.invoke(
        app, ["export", "llava-json", str(root), "--out", str(tmp_path / "bad"), "--style-option", "max_pixels"]
    )
    assert isinstance(bad_opt.exception, InputError) and "NAME=VALUE" in str(bad_opt.exception)
