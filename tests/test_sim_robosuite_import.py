"""Optional: robosuite's textured household objects imported from its object XMLs (no network at test time).

robosuite 1.5.2 pins `mink==0.0.5` (installing it here would downgrade mink 1.3 and numpy 2.4), so it is not a
dependency: install it into a venv of its own and point the test at the package folder, e.g.
    python -m venv /tmp/rs && /tmp/rs/bin/pip install --no-deps robosuite
    export DATAENGINE_ROBOSUITE_DIR=/tmp/rs/lib/python3.11/site-packages/robosuite
    python -m pytest tests/test_sim_robosuite_import.py
Where robosuite is installed in this environment the test finds it without importing it; otherwise it is skipped.
"""

from __future__ import annotations

import os

import pytest
import yaml

pytest.importorskip("mujoco")
pytest.importorskip("trimesh")

from dataengine.sim.importer.job import CATALOG_NAME, ImportOptions, import_assets
from dataengine.sim.importer.sources import ROBOSUITE_DIR_ENV, robosuite_objects_dir

TEXTURED = {"bread", "can", "cereal", "lemon", "milk"}


def test_robosuite_object_xmls_import_textured(tmp_path, monkeypatch):
    objects = robosuite_objects_dir()
    if objects is None:
        if os.environ.get(ROBOSUITE_DIR_ENV):  # CI installs it: a wrong path must fail, not skip
            pytest.fail(f"{ROBOSUITE_DIR_ENV}={os.environ[ROBOSUITE_DIR_ENV]} holds no robosuite object XMLs")
        pytest.skip("robosuite's object XMLs not found (set DATAENGINE_ROBOSUITE_DIR to its package folder)")
    monkeypatch.setenv("DATAENGINE_CACHE_DIR", str(tmp_path / "cache"))
    opts = ImportOptions(collision="convex-hull", grasp_trials=0)
    report = import_assets(objects, tmp_path / "catalog", opts, workers=0, show_progress=False)
    entries = {e["id"]: e for e in yaml.safe_load((tmp_path / "catalog" / CATALOG_NAME).read_text())["objects"]}
    assert set(entries) >= TEXTURED, sorted(entries)
    for name in TEXTURED:
        entry = entries[name]
        assert entry["source"]["textured"] and entry["source"]["scale_source"] == "mjcf_metres", name
        assert 0.03 < max(entry["source"]["extent_m"]) < 0.3, (name, entry["source"]["extent_m"])
        assert (tmp_path / "catalog" / entry["thumbnail"]).is_file()
    assert report["quarantine_reasons"].get("no_mesh_geoms", 0) >= 1  # door, nuts: primitives only
