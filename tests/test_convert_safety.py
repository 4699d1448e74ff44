"""Untrusted input: a malicious pickle neither runs nor crashes; paths from the data cannot leave the input root."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections import OrderedDict

import pytest

from dataengine.converters import run_conversion
from dataengine.converters.common import UnsafePathError, make_key, safe_relpath
from dataengine.converters.safe_pickle import safe_loads
from dataengine.errors import InputError, UnsafePickleError
from dataengine.fixtures.refcoco import build_malicious_refer, malicious_pickle


def test_plain_containers_load_for_every_protocol():
    data = [{"ref_id": 1, "sentences": [{"raw": "café", "tokens": ["a"]}], "s": {1, 2}, "f": frozenset([3])}]
    data.append({"t": (1, 2.5, None, True), "b": b"\x00\xff", "o": OrderedDict(a=1), "big": 2**70})
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert safe_loads(pickle.dumps(data, protocol=protocol)) == data


def test_python2_str_pickles_decode_as_text():
    # protocol 2 as written by Python 2: a `str` is a SHORT_BINSTRING holding UTF-8 bytes
    py2 = b"\x80\x02]q\x00U\x06caf\xc3\xa9 q\x01a."
    assert safe_loads(py2) == ["café "]


def test_malicious_fixture_really_runs_code_with_plain_pickle(tmp_path):
    marker = tmp_path / "plain_pickle_ran"
    code = f"import pickle; pickle.loads({malicious_pickle(marker)!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert marker.exists()  # the fixture is a real threat, so the next test means something


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(UnsafePickleError, match=r"os\.system"):
        safe_loads(malicious_pickle(marker))
    info = build_malicious_refer(tmp_path / "fx", marker)
    with pytest.raises(UnsafePickleError, match=r"refs\(unc\)\.p.*os\.system"):
        run_conversion("refcoco", info.input_path, tmp_path / "out", images_dir=info.images_dir, workers=0)
    assert not marker.exists()


def test_cli_reports_the_malicious_pickle_and_exits_non_zero(tmp_path):
    marker = tmp_path / "pwned"
    info = build_malicious_refer(tmp_path / "fx", marker)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataengine.cli.app",
            "convert",
            "refcoco",
            "--input",
            str(info.input_path),
            "--images",
            str(info.images_dir),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "refusing to load global os.system" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    "raw",
    ["../etc/passwd", "a/../../b.png", "/etc/passwd", "C:\\Windows\\x.png", "..\\..\\x.png", "", "   ", "a/\x00b"],
)
def test_unsafe_paths_are_refused(raw):
    with pytest.raises(UnsafePathError):
        safe_relpath(raw)


def test_windows_paths_are_normalized():
    assert safe_relpath("final_dataset\\train\\image\\0000000.png") == "final_dataset/train/image/0000000.png"
    assert safe_relpath("./a//b/./c.jpg") == "a/b/c.jpg"


def test_keys_are_dot_free_and_bounded():
    assert make_key("llavaov", "sharegpt4v(coco)", 3) == "llavaov_sharegpt4v_coco_3"
    long_key = make_key("x" * 300, "y")
    assert len(long_key) <= 128 and "." not in long_key
    assert make_key("x" * 300, "y") == long_key and make_key("x" * 300, "z") != long_key


def test_missing_input_is_a_clear_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_conversion("refcoco", tmp_path / "nope", tmp_path / "out", workers=0)
    (tmp_path / "empty" / "refcoco").mkdir(parents=True)
    with pytest.raises(InputError, match=r"expected .*refs\(unc\)\.p"):
        run_conversion("refcoco", tmp_path / "empty", tmp_path / "out", images_dir=tmp_path, workers=0)
    with pytest.raises(InputError, match="unknown source"):
        run_conversion("refcoco-nope", tmp_path, tmp_path / "out", workers=0)
    with pytest.raises(InputError, match="--split-by 'umd' is not valid"):
        run_conversion("refcoco+", tmp_path / "empty", tmp_path / "out", split_by="umd", workers=0)


def test_malformed_refs_are_quarantined_not_fatal(tmp_path):
    from dataengine.fixtures.refcoco import build_refer
    from tests.fixtures.converters import assert_valid, quarantine_lines

    info = build_refer(tmp_path / "fx", n=0)
    refs_path = info.input_path / "refcoco" / "refs(unc).p"
    refs = pickle.loads(refs_path.read_bytes())
    good = refs[0]
    refs += [
        "not a ref",
        {**good, "ref_id": 900, "image_id": "42"},
        {**good, "ref_id": 901, "ann_id": [1, 2]},
        {**good, "ref_id": 902, "sentences": "a string, not a list"},
        {**good, "ref_id": 903, "sentences": [None, 7, {"raw": 5, "sent": "usable sentence", "sent_id": 1}]},
    ]
    refs_path.write_bytes(pickle.dumps(refs, protocol=2))
    out = tmp_path / "out"
    run_conversion("refcoco", info.input_path, out, images_dir=info.images_dir, workers=0, show_progress=False)
    reasons = {(q["source_id"], q["reason"]) for q in quarantine_lines(out)}
    assert ("'not a ref'", "malformed_ref") in reasons
    assert ("ref_id=901", "missing_annotation") in reasons
    assert ("ref_id=902", "no_usable_sentence") in reasons
    assert any(q[1] == "malformed_ref" and "900" in q[0] for q in reasons)
    assert_valid(out)
