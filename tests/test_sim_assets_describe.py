"""`sim assets import --describe openai`: object descriptions from thumbnails through the rewriter's real `openai`
client path, against the local OpenAI-compatible server the rewriter tests use (no mock objects, no network)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml

pytest.importorskip("mujoco")
pytest.importorskip("trimesh")
pytest.importorskip("openai")

from dataengine.sim.importer.describe import DESCRIBE_PROMPT_VERSION, DescribeOptions, check_description
from dataengine.sim.importer.fixtures import write_mesh_library
from dataengine.sim.importer.job import CATALOG_NAME, REPORT_NAME, ImportOptions, import_assets
from tests.fixtures.rewrite_env import FAKE_KEY, server  # noqa: F401

FOLDERS = ("food_can", "fruit", "toy")  # soup can (no sidecar), pear (no sidecar), toy block (sidecar)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("describe_lib")
    write_mesh_library(root / "all", mjcf=False)
    for folder in FOLDERS:
        shutil.copytree(root / "all" / folder, root / "src" / folder)
    return root / "src"


def _import(src: Path, out: Path, cache: Path, **describe) -> tuple[dict, dict[str, dict]]:
    opts = ImportOptions(collision="convex-hull", grasp_trials=0, **describe.pop("import_options", {}))
    options = DescribeOptions(**{"describer": "openai", "cache_dir": cache, "timeout_s": 5.0, "max_retries": 0,
                                 "concurrency": 1, **describe})  # fmt: skip
    report = import_assets(src, out, opts, workers=0, show_progress=False, describe=options)
    entries = yaml.safe_load((out / CATALOG_NAME).read_text())["objects"]
    return report, {e["source"]["path"]: e for e in entries}


@pytest.fixture
def mesh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAENGINE_CACHE_DIR", str(tmp_path / "mesh_cache"))


def test_objects_are_described_from_their_thumbnails_and_cached(library, tmp_path, server, mesh_cache, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    report, entries = _import(library, tmp_path / "a", tmp_path / "describe_cache")
    assert server.chat_requests == 3  # one per object, each with its PNG thumbnail (the server checks)
    assert server.headers_seen[0]["authorization"] == f"Bearer {FAKE_KEY}"
    body = server.chat_bodies[0]
    assert body["response_format"]["json_schema"]["name"] == "object_description"
    assert body["response_format"]["json_schema"]["strict"] is True
    can = entries["food_can/soup_can.obj"]
    assert (can["name"], can["category"], can["color"], can["attributes"]) == (
        "small can",
        "household item",
        "purple",
        ["plastic", "graspable"],
    )
    assert can["source"]["described_by"] == f"openai/gpt-4o-mini {DESCRIBE_PROMPT_VERSION}"
    block = entries["toy/block.stl"]  # the sidecar's name, colour and attributes stay; its category was guessed
    assert (block["name"], block["color"], block["attributes"]) == ("toy block", "orange", ["wooden"])
    assert block["category"] == "household item"
    description = report["description"]
    assert description["counts"] == {"described": 3} and description["requests"] == 3
    assert description["base_url"] == server.base_url and description["prompt_tokens"] > 0
    # the key is never written or logged
    written = (tmp_path / "a" / CATALOG_NAME).read_text() + (tmp_path / "a" / REPORT_NAME).read_text()
    assert FAKE_KEY not in written and FAKE_KEY not in caplog.text

    # a second import (another catalog) is answered by the cache: no request, the same catalog bytes
    again, _ = _import(library, tmp_path / "b", tmp_path / "describe_cache")
    assert server.chat_requests == 3 and again["description"]["cache_hits"] == 3
    assert (tmp_path / "b" / CATALOG_NAME).read_bytes() == (tmp_path / "a" / CATALOG_NAME).read_bytes()


def test_an_invalid_reply_keeps_the_offline_values(library, tmp_path, server, mesh_cache):  # noqa: F811
    server.push("invalid_description")  # the first request (soup can, in path order) gets an unknown colour
    report, entries = _import(library, tmp_path / "a", tmp_path / "describe_cache")
    can = entries["food_can/soup_can.obj"]
    assert (can["name"], can["category"], can["color"]) == ("soup can", "food can", "red")
    assert can["source"]["description_note"] == "rejected_unknown_color" and "described_by" not in can["source"]
    assert entries["fruit/pear.obj"]["name"] == "small pear"
    assert report["description"]["counts"] == {"described": 2, "rejected_unknown_color": 1}
    # a well-formed reply is cached even when rejected (as the rewriter does): a rerun gives the same catalog
    _, again = _import(library, tmp_path / "b", tmp_path / "describe_cache")
    assert again == entries and server.chat_requests == 3


def test_failed_requests_keep_the_offline_values(library, tmp_path, server, mesh_cache):  # noqa: F811
    server.push(("status", 503, {"retry-after-ms": "5"}))
    report, entries = _import(library, tmp_path / "a", tmp_path / "describe_cache")
    assert entries["food_can/soup_can.obj"]["source"]["description_note"] == "request_failed_server_error"
    assert entries["food_can/soup_can.obj"]["name"] == "soup can"
    assert report["description"]["counts"] == {"described": 2, "request_failed_server_error": 1}


def test_held_out_categories_are_not_renamed_and_no_category_mixes_splits(library, tmp_path, server, mesh_cache):  # noqa: F811
    _, entries = _import(library, tmp_path / "a", tmp_path / "c1", import_options={"unseen_categories": ["fruit"]})
    pear = entries["fruit/pear.obj"]
    assert (pear["category"], pear["split"], pear["name"]) == ("fruit", "unseen", "small pear")
    # the whole import unseen but the pear held out again by a sidecar: every described category would be
    # 'household item'; a seen object there beside unseen ones is undone back to its own category
    src = tmp_path / "src"
    shutil.copytree(library, src)
    (src / "fruit" / "pear.yaml").write_text("split: seen\n")
    _, mixed = _import(src, tmp_path / "b", tmp_path / "c2", import_options={"split": "unseen"})
    assert mixed["fruit/pear.obj"]["category"] == "fruit"
    assert mixed["fruit/pear.obj"]["source"]["description_note"] == "category_split_conflict"
    splits: dict[str, set[str]] = {}
    for entry in mixed.values():
        splits.setdefault(entry["category"], set()).add(entry["split"])
    assert all(len(s) == 1 for s in splits.values()), splits


def test_offline_is_the_default_and_asks_nothing(library, tmp_path, server, mesh_cache):  # noqa: F811
    report = import_assets(library, tmp_path / "a", ImportOptions(collision="convex-hull", grasp_trials=0),
                           workers=0, show_progress=False)  # fmt: skip
    assert report["description"] == {"describer": "offline"} and server.chat_requests == 0
    text = (tmp_path / "a" / CATALOG_NAME).read_text()
    assert "described_by" not in text and "description_note" not in text


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("{not json", "malformed_json"),
        (json.dumps({"name": "mug"}), "bad_schema"),
        (
            json.dumps({"name": "a very long name for a mug", "category": "x", "color": "red", "attributes": []}),
            "bad_name",
        ),
        (
            json.dumps({"name": "red mug", "category": "kitchenware", "color": "red", "attributes": []}),
            "name_has_color",
        ),
        (json.dumps({"name": "mug", "category": " ", "color": "red", "attributes": []}), "bad_category"),
        (json.dumps({"name": "mug", "category": "kitchenware", "color": "teal", "attributes": []}), "unknown_color"),
        (
            json.dumps({"name": "mug", "category": "kitchenware", "color": "red", "attributes": ["blue"]}),
            "bad_attributes",
        ),
    ],
)
def test_replies_are_validated(reply, reason):
    assert check_description(reply) == (None, reason)


def test_a_good_reply_is_normalized():
    reply = json.dumps({"name": " Coffee  Mug", "category": "Kitchenware", "color": "Gray",
                        "attributes": ["ceramic", "ceramic", "handled"]})  # fmt: skip
    assert check_description(reply) == (
        {"name": "coffee mug", "category": "kitchenware", "color": "grey", "attributes": ["ceramic", "handled"]},
        None,
    )


def test_the_command_line_describes_through_the_given_endpoint(library, tmp_path, server, mesh_cache, monkeypatch):  # noqa: F811
    from typer.testing import CliRunner

    from dataengine.cli.app import app

    monkeypatch.delenv("OPENAI_BASE_URL")  # the endpoint comes from --openai-base-url
    args = ["sim", "assets", "import", str(library), "--out", str(tmp_path / "out"), "--collision", "convex-hull",
            "--grasp-trials", "0", "--workers", "0", "--describe", "openai", "--openai-base-url", server.base_url,
            "--describe-cache-dir", str(tmp_path / "cache")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "described with gpt-4o-mini: described 3" in result.output and FAKE_KEY not in result.output
    assert server.chat_requests == 3
    bad = CliRunner().invoke(app, [*args[:-4], "--describe", "gpt"])
    assert bad.exit_code != 0 and "unknown describer 'gpt'" in str(bad.exception)
