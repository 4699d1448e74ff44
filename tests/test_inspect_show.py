"""`dataengine show`: deterministic selection (manifest + index or plain scan), filters, and the PNG it draws."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from dataengine.cli.app import app
from dataengine.inspect.contact_sheet import SheetLayout, default_cols, render_sheet, wrap_text
from dataengine.inspect.select import select_samples
from tests.fixtures.inspect_shards import build_samples, write_foreign_tar, write_shard_set


@pytest.fixture(scope="module")
def samples():
    return build_samples(10, seed=0)


@pytest.fixture(scope="module")
def shard_dir(samples, tmp_path_factory) -> Path:
    return write_shard_set(tmp_path_factory.mktemp("show") / "shards", samples, max_samples=4)


@pytest.fixture(scope="module")
def bare_dir(shard_dir, tmp_path_factory) -> Path:
    """The same tars without manifest and indexes."""
    bare = tmp_path_factory.mktemp("show") / "bare"
    shutil.copytree(shard_dir, bare, ignore=shutil.ignore_patterns("manifest.parquet", "*.idx.json"))
    return bare


def keys(chosen) -> list[str]:
    return [s.record.key for s in chosen]


def test_same_seed_same_samples_whichever_way_they_are_found(shard_dir, bare_dir, samples, tmp_path):
    foreign = write_foreign_tar(tmp_path / "foreign" / "x.tar", samples).parent
    picks = [keys(select_samples(d, 5, seed=7)) for d in (shard_dir, bare_dir, foreign)]
    assert picks[0] == picks[1] == picks[2]
    assert len(set(picks[0])) == 5
    assert keys(select_samples(shard_dir, 5, seed=8)) != picks[0]
    chosen = select_samples(shard_dir, 5, seed=7)
    by_key = {r.key: data for r, data in samples}
    assert all(s.image_bytes == by_key[s.record.key] for s in chosen)  # untouched bytes, read via the index


def test_filters(shard_dir, bare_dir):
    for folder in (shard_dir, bare_dir):
        val = select_samples(folder, 50, source="synthballs")
        assert {s.record.source for s in val} == {"synthballs"} and len(val) == 4
        vqa = select_samples(folder, 50, task="vqa")
        assert len(vqa) == 11  # every sample has a vqa item, the text-only one too
        assert select_samples(folder, 5, source="nope") == []


def test_sheet_is_a_png_of_the_layout_size_and_deterministic(shard_dir, tmp_path):
    chosen = select_samples(shard_dir, 7, seed=1)
    a = render_sheet(chosen, tmp_path / "a.png")
    b = render_sheet(select_samples(shard_dir, 7, seed=1), tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as im:
        im.load()
        assert im.format == "PNG"
        assert im.size == SheetLayout().sheet_size(7, default_cols(7)) == (3 * 400 + 4 * 10, 3 * 492 + 4 * 10)
        # something was drawn over the images: the palette's first colour (item 1) is present
        colours = {c for _, c in im.getcolors(maxcolors=1 << 20)}
        assert (230, 25, 75) in colours


def test_cli_show(shard_dir, bare_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "sheet.png"
    result = runner.invoke(app, ["show", str(bare_dir), "--n", "4", "--out", str(out), "--task", "trace"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == SheetLayout().sheet_size(4, 2)
    same = tmp_path / "same.png"
    result = runner.invoke(app, ["show", str(shard_dir), "--n", "4", "--out", str(same), "--task", "trace"])
    assert result.exit_code == 0, result.output
    assert same.read_bytes() == out.read_bytes()
    result = runner.invoke(app, ["show", str(shard_dir), "--out", str(tmp_path / "x.png"), "--source", "nope"])
    assert result.exit_code != 0


def test_corrupt_image_and_text_only_tiles_still_render(samples, tmp_path):
    record, data = samples[0]
    broken = [(record, data[: len(data) // 3]), samples[-1]]  # truncated jpeg + the text-only sample
    write_shard_set(tmp_path / "s", broken, manifest=False)
    chosen = select_samples(tmp_path / "s", 4)
    assert len(chosen) == 2
    with Image.open(render_sheet(chosen, tmp_path / "sheet.png", cols=2)) as im:
        assert im.size == SheetLayout().sheet_size(2, 2)


def test_wrap_text_fits_the_width():
    from dataengine.inspect.contact_sheet import _font

    font = _font(14)
    text = "pick up the small red mug to the left of the bowl " * 4 + "x" * 120
    lines = wrap_text(text, font, 300)
    assert len(lines) > 3
    assert all(font.getlength(line) <= 300 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
