"""Inputs are bounded: only regular files inside the input folders are read, each at most a set size, and no
pickle can allocate more than a set multiple of its own size. Every hostile input is built here."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from dataengine.converters import run_conversion
from dataengine.converters.files import InputLimits
from dataengine.converters.safe_pickle import MEMORY_FACTOR, safe_loads
from dataengine.errors import InputError, UnsafePickleError
from dataengine.fixtures.images import scene_image
from dataengine.fixtures.pointing import build_robopoint
from dataengine.fixtures.refcoco import build_refer
from tests.fixtures.converters import quarantine_lines, samples_by_key

REPO = Path(__file__).resolve().parents[2]

# --- pickles ------------------------------------------------------------------------------------------------------


def _peak_mb(fn) -> float:
    tracemalloc.start()
    with contextlib.suppress(InputError, UnsafePickleError):
        fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / (1 << 20)


def test_a_43_byte_pickle_cannot_build_a_2_gb_bytearray():
    hostile = b"\x80\x02c__builtin__\nbytearray\nq\x00J\xff\xff\xff\x7f\x85q\x01Rq\x02."
    assert len(hostile) <= 43
    with pytest.raises(UnsafePickleError, match=r"bytearray\(\) is only allowed on data the pickle holds, not int"):
        safe_loads(hostile, "refs(unc).p")
    assert _peak_mb(lambda: safe_loads(hostile)) < 5


@pytest.mark.parametrize(
    "opcode",
    [b"\x8e", b"\x96", b"\x8d"],  # BINBYTES8, BYTEARRAY8, BINUNICODE8: an 8-byte length the C loader allocates first
)
def test_a_declared_length_past_the_end_is_refused_before_allocating(opcode):
    hostile = b"\x80\x05" + opcode + (2**40).to_bytes(8, "little") + b"abc."
    with pytest.raises(InputError, match="claims 1,099,511,627,776 bytes"):
        safe_loads(hostile)
    assert _peak_mb(lambda: safe_loads(hostile)) < 5


def test_dense_containers_past_the_memory_factor_are_refused():
    hostile = b"\x80\x04(" + b"\x8f" * 200_000 + b"l."  # a list of 200,000 empty sets: ~240x the bytes
    with pytest.raises(InputError, match=f"over {MEMORY_FACTOR}x its size"):
        safe_loads(hostile)
    assert _peak_mb(lambda: safe_loads(hostile)) < 20


def test_copying_one_list_over_and_over_is_refused():
    # big = [None] * 100,000 (1 byte each), then list(big) 2,000 times through the memo: 1.6 GB from 200 kB
    body = b"(" + b"N" * 100_000 + b"l\x94"  # MARK, 100,000 x None, LIST, MEMOIZE (memo 0)
    calls = b"".join(b"\x8c\x08builtins\x8c\x04list\x93h\x00\x85R" for _ in range(2_000))
    hostile = b"\x80\x04" + body + b"(" + calls + b"l."
    with pytest.raises(InputError, match=f"over {MEMORY_FACTOR}x its size"):
        safe_loads(hostile)


def test_plain_refer_data_still_loads_at_every_protocol():
    refs = [{"ref_id": i, "sentences": [{"raw": "the cup", "tokens": ["the", "cup"]}], "split": "train"}
            for i in range(1000)]  # fmt: skip
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert safe_loads(pickle.dumps(refs, protocol=protocol)) == refs


def test_hostile_refs_pickle_stops_the_conversion_in_one_line(tmp_path):
    info = build_refer(tmp_path / "fx", n=0)
    (info.input_path / "refcoco" / "refs(unc).p").write_bytes(
        b"\x80\x02c__builtin__\nbytearray\nq\x00J\xff\xff\xff\x7f\x85q\x01Rq\x02."
    )
    result = _cli("convert", "refcoco", "--input", str(info.input_path), "--images", str(info.images_dir),
                  "--out", str(tmp_path / "out"), "--workers", "0")  # fmt: skip
    assert result.returncode == 2
    assert "bytearray() is only allowed on data the pickle holds" in result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "dataengine.cli.app", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip


# --- image files ----------------------------------------------------------------------------------------------


@pytest.fixture
def robopoint(tmp_path):
    return build_robopoint(tmp_path / "fx", n=0)


def _convert(info, out, **limits):
    return run_conversion("robopoint", info.input_path, out, images_dir=info.images_dir, workers=0,
                          show_progress=False, limits=InputLimits(**limits))  # fmt: skip


def _reasons(out: Path) -> dict[str, str]:
    """Quarantine reason by RoboPoint row id (source ids are `#<row>:<id>`)."""
    return {q["source_id"].split(":", 1)[-1]: q["reason"] for q in quarantine_lines(out)}


def test_image_symlink_to_dev_zero_is_quarantined_not_read(robopoint, tmp_path):
    target = robopoint.images_dir / "region_ref" / "scene_0003.png"
    target.unlink()
    target.symlink_to("/dev/zero")
    started = time.monotonic()
    _convert(robopoint, tmp_path / "out")
    assert _reasons(tmp_path / "out")["region_ref/scene_0003_mixed"] == "outside_input_root"
    _convert(robopoint, tmp_path / "out2", follow_symlinks=True)  # followed: still not a regular file
    assert _reasons(tmp_path / "out2")["region_ref/scene_0003_mixed"] == "not_a_regular_file"
    assert time.monotonic() - started < 60


def test_image_that_is_a_fifo_does_not_hang(robopoint, tmp_path):
    target = robopoint.images_dir / "region_ref" / "scene_0003.png"
    target.unlink()
    os.mkfifo(target)
    result = _cli("convert", "robopoint", "--input", str(robopoint.input_path), "--images", str(robopoint.images_dir),
                  "--out", str(tmp_path / "out"), "--workers", "0", timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _reasons(tmp_path / "out")["region_ref/scene_0003_mixed"] == "not_a_regular_file"


def test_symlinks_leading_outside_the_input_root_are_refused_unless_followed(robopoint, tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.png").write_bytes(scene_image(64, 48, 9, fmt="PNG"))
    (robopoint.images_dir / "leak").symlink_to(outside)  # a directory symlink
    (robopoint.images_dir / "root").symlink_to("/")  # the worst one: everything
    rows = json.loads(robopoint.input_path.read_text())
    rows[1]["image"] = "leak/secret.png"
    rows[2]["image"] = "root/etc/hostname"
    robopoint.input_path.write_text(json.dumps(rows))
    _convert(robopoint, tmp_path / "out")
    reasons = _reasons(tmp_path / "out")
    assert reasons["object_ref/scene_0002_box"] == "outside_input_root"
    assert reasons["000000000042"] == "outside_input_root"
    origins = {s.record.image.origin for s in samples_by_key(tmp_path / "out").values() if s.record.image}
    assert not any("secret" in o or "etc" in o for o in origins)
    # Inside the root, a symlink is fine; outside only with --follow-symlinks.
    _convert(robopoint, tmp_path / "followed", follow_symlinks=True)
    origins = {s.record.image.origin for s in samples_by_key(tmp_path / "followed").values() if s.record.image}
    assert "leak/secret.png" in origins


def test_symlink_inside_the_input_root_is_read(robopoint, tmp_path):
    target = robopoint.images_dir / "region_ref" / "scene_0003.png"
    moved = robopoint.images_dir / "object_ref" / "moved.png"
    target.rename(moved)
    target.symlink_to(moved)
    _convert(robopoint, tmp_path / "out")
    assert "region_ref/scene_0003_mixed" not in _reasons(tmp_path / "out")


def test_image_and_annotation_size_caps(robopoint, tmp_path):
    _convert(robopoint, tmp_path / "out", max_image_mb=0.01)  # 10 kB: the PNG scenes are larger
    assert set(_reasons(tmp_path / "out").values()) >= {"image_too_large"}
    with pytest.raises(InputError, match=r"over the annotation limit of 0 MB \(raise it with --max-annotation-mb\)"):
        _convert(robopoint, tmp_path / "out2", max_annotation_mb=0.0001)


def test_nan_in_an_annotation_file_quarantines_that_record_only(tmp_path):
    from dataengine.fixtures.roborefit import build_roborefit

    info = build_roborefit(tmp_path / "fx")
    path = next(info.input_path.rglob("roborefit_train.json"))
    text = path.read_text()
    rows = json.loads(text)
    rows[0]["bbox"] = [float("nan"), 1.0, float("inf"), 20.0]
    path.write_text(json.dumps(rows))  # Python writes NaN and Infinity; strict JSON parsers refuse the file
    report = run_conversion("roborefit", info.input_path, tmp_path / "out", workers=0, show_progress=False)
    assert report["written_samples"] > 0
    bad = [q for q in quarantine_lines(tmp_path / "out") if q["reason"] in ("schema_violation", "bad_box")]
    assert bad, quarantine_lines(tmp_path / "out")


def test_recipe_inputs_carry_the_same_bounds(robopoint, tmp_path):
    from dataengine.corpus.build import build_corpus

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f'name: r\nversion: "1"\nseed: 0\nsources:\n  - name: rp\n    from: {{converter: robopoint, '
        f"input: {robopoint.input_path}, images: {robopoint.images_dir}, max_annotation_mb: 0.0001}}\n"
    )
    with pytest.raises(InputError, match="--max-annotation-mb"):
        build_corpus(recipe, tmp_path / "out", workers=0, show_progress=False)
