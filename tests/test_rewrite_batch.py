"""Per-episode rewriting through the Batch API (files, batches, output files), resume, and secret hygiene."""

from __future__ import annotations

import json
import logging

import pytest

from dataengine.rewrite import OfflineRewriter
from dataengine.rewrite.batch import BatchPendingError
from tests.fixtures.rewrite_env import FAKE_KEY, make_rewriter, server  # noqa: F401
from tests.fixtures.rewrite_scenes import random_scene


def scenes(n: int):
    return [random_scene(i) for i in range(n)]


def test_batch_flow_in_chunks_merges_by_custom_id(server, make_rewriter, tmp_path):  # noqa: F811
    server.batch_line_behaviour["ep000004"] = "error"
    rewriter = make_rewriter(mode="per-episode", batch=True, batch_max_lines=3)
    out = rewriter.rewrite(scenes(7))
    assert server.counts["POST /v1/files"] == 3 and server.counts["POST /v1/batches"] == 3
    assert server.counts["GET /v1/files/{id}/content"] == 4  # 3 output files + 1 error file
    assert server.chat_requests == 0
    sync = make_rewriter(mode="per-episode", cache_dir=tmp_path / "sync-cache").rewrite(scenes(7))
    assert [o for i, o in enumerate(out) if i != 4] == [o for i, o in enumerate(sync) if i != 4]
    assert out[4] == OfflineRewriter().rewrite([random_scene(4)])[0]
    report = rewriter.report()
    assert report["counts"]["request_failed_batch_request_failed"] == 1
    assert report["requests"] == 6 and report["cost_usd"] > 0
    # the uploaded JSONL: one POST line per episode, custom_id = episode key, structured output requested
    first = json.loads(next(f for f in server.files.values() if f["purpose"] == "batch")["data"].splitlines()[0])
    assert first["custom_id"] == "ep000000" and first["url"] == "/v1/chat/completions"
    assert first["body"]["response_format"]["json_schema"]["name"] == "rewrites"
    # a rerun costs nothing: the replies are in the cache (the failed one is retried)
    server.counts.clear()
    make_rewriter(mode="per-episode", batch=True, batch_max_lines=3).rewrite(scenes(7))
    assert server.counts["POST /v1/batches"] == 1 and server.counts["POST /v1/files"] == 1


def test_half_finished_batch_is_resumed_not_recreated(server, make_rewriter, tmp_path):  # noqa: F811
    server.hold_batches = True
    first = make_rewriter(mode="per-episode", batch=True, batch_max_lines=4, batch_max_wait_s=0.1)
    with pytest.raises(BatchPendingError, match="rerun the same command to resume"):
        first.rewrite(scenes(6))
    state = json.loads((tmp_path / "out" / "_rewrite_batch.json").read_text())
    assert [c["status"] for c in state["chunks"].values()] == ["in_progress", "in_progress"]
    assert server.counts["POST /v1/batches"] == 2

    server.hold_batches = False
    second = make_rewriter(mode="per-episode", batch=True, batch_max_lines=4)
    out = second.rewrite(scenes(6))
    assert server.counts["POST /v1/batches"] == 2 and server.counts["POST /v1/files"] == 2
    assert second.report()["batch_stats"]["batches_resumed"] == 2
    assert all(r.attr.startswith("Kindly") for r in out)


def test_upload_done_but_batch_not_created_reuses_the_file(server, make_rewriter, tmp_path):  # noqa: F811
    server.hold_batches = True
    with pytest.raises(BatchPendingError):
        make_rewriter(mode="per-episode", batch=True, batch_max_wait_s=0.0).rewrite(scenes(3))
    state_path = tmp_path / "out" / "_rewrite_batch.json"
    state = json.loads(state_path.read_text())
    for chunk in state["chunks"].values():  # as if the process died between upload and create
        del chunk["batch_id"], chunk["status"]
    state_path.write_text(json.dumps(state))
    server.hold_batches = False
    make_rewriter(mode="per-episode", batch=True).rewrite(scenes(3))
    assert server.counts["POST /v1/files"] == 1 and server.counts["POST /v1/batches"] == 2


def test_key_absent_from_every_file_written_and_from_logs(server, make_rewriter, tmp_path, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    make_rewriter(mode="per-episode", batch=True).rewrite(scenes(4))
    make_rewriter(mode="per-episode").rewrite(scenes(6))
    make_rewriter(mode="templates").rewrite(scenes(6))
    server.push(("status", 500), ("status", 500), "echo_key_401")
    with pytest.raises(Exception) as info:
        make_rewriter(mode="per-episode", concurrency=1, cache_dir=tmp_path / "fresh").rewrite(scenes(3))
    assert FAKE_KEY not in str(info.value)
    assert any(h.get("authorization") == f"Bearer {FAKE_KEY}" for h in server.headers_seen)  # it was used
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10
    for path in written:
        assert FAKE_KEY.encode() not in path.read_bytes(), path
    assert caplog.records and FAKE_KEY not in caplog.text
