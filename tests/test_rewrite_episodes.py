"""`dataengine rewrite DIR` on a real (physics-only) episode shard set, offline and through the local server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataengine.cli.app import app
from dataengine.rewrite import get_rewriter
from dataengine.rewrite.batch import BatchPendingError
from dataengine.rewrite.cost import CostLimitError
from dataengine.rewrite.episodes import rewrite_episode_shards
from dataengine.shards import ShardWriter, iter_samples, list_shards
from tests.fixtures.episode_shards import build_episode_shards
from tests.fixtures.rewrite_env import FAKE_KEY, server  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def episodes(tmp_path_factory) -> Path:
    return build_episode_shards(tmp_path_factory.mktemp("sim") / "episodes")


def copy_set(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("_state"))
    return dst


def instructions(path: Path) -> dict[str, dict]:
    return {s["__key__"]: json.loads(s["episode.json"])["instructions"] for sh in list_shards(path)
            for s in iter_samples(sh)}  # fmt: skip


def tree_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
            and "_state" not in p.parts and p.name != "rewrite_report.json"}  # fmt: skip


def run_cli(*args: str):
    result = CliRunner().invoke(app, ["rewrite", *args])
    return result


def test_offline_rewrite_reproduces_the_simulator_bytes(episodes, tmp_path):
    result = run_cli(str(episodes), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "rewrote 4 episodes in 2 shards with offline" in result.output
    # same facts, seed (from recipe.resolved.json) and catalog vocabulary as the generator: identical shards
    assert tree_bytes(tmp_path / "out") == tree_bytes(episodes)


def test_openai_per_episode_in_place_then_cached_rerun(episodes, tmp_path, server):  # noqa: F811
    work = copy_set(episodes, tmp_path / "work")
    args = [str(work), "--rewriter", "openai", "--mode", "per-episode", "--cache-dir", str(tmp_path / "cache")]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    assert server.chat_requests == 4
    assert "requests 4 (cache hits 0)" in result.output and "cost $" in result.output
    rewritten = instructions(work)
    before = instructions(episodes)
    assert rewritten.keys() == before.keys()
    for key, inst in rewritten.items():
        assert inst["attr"].startswith("Kindly") and inst["rewriter"] == "openai"
        assert inst["base"] == before[key]["base"]
    # only episode.json changed; the arrays and frames are the same bytes, and the indexes match the new tars
    old = {(s["__key__"], ext): v for sh in list_shards(episodes) for s in iter_samples(sh) for ext, v in s.items()
           if ext in ("arrays.npz", "frames.npz")}  # fmt: skip
    new = {(s["__key__"], ext): v for sh in list_shards(work) for s in iter_samples(sh) for ext, v in s.items()
           if ext in ("arrays.npz", "frames.npz")}  # fmt: skip
    assert old == new
    for shard in list_shards(work):
        index = json.loads(shard.with_name(shard.name.replace(".tar", ".idx.json")).read_text())
        assert index["shard"] == shard.name and [k for k, _, _ in index["index"]] == [
            s["__key__"] for s in iter_samples(shard)
        ]
    first = tree_bytes(work)
    again = run_cli(*args)
    assert again.exit_code == 0 and server.chat_requests == 4  # the rerun made no request
    assert "requests 0 (cache hits 4)" in again.output
    assert tree_bytes(work) == first
    report = json.loads((work / "rewrite_report.json").read_text())
    assert report["rewriter"]["model"] == "gpt-4o-mini" and report["counts"]["episodes_rewritten"] == 4
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert FAKE_KEY.encode() not in path.read_bytes(), path
    assert FAKE_KEY not in result.output + again.output


def test_batch_command_resumes_after_exit(episodes, tmp_path, server):  # noqa: F811
    server.hold_batches = True
    out = tmp_path / "out"
    args = [str(episodes), "--out", str(out), "--rewriter", "openai", "--mode", "per-episode", "--batch",
            "--poll", "0.02", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    pending = run_cli(*args, "--batch-wait", "0")
    assert isinstance(pending.exception, BatchPendingError) and pending.exception.exit_code == 75
    assert not list(out.glob("*.tar"))  # nothing written while the batch runs
    assert (out / "_state" / "rewrite_batch.json").is_file()
    server.hold_batches = False
    done = run_cli(*args)
    assert done.exit_code == 0, done.output
    assert server.counts["POST /v1/batches"] == 1 and server.counts["POST /v1/files"] == 1
    assert all(i["spatial"].startswith("Kindly") for i in instructions(out).values())


def test_max_cost_refusal_touches_nothing(episodes, tmp_path, server):  # noqa: F811
    work = copy_set(episodes, tmp_path / "work")
    before = tree_bytes(work)
    result = run_cli(str(work), "--rewriter", "openai", "--mode", "per-episode", "--max-cost", "0.000001",
                     "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert isinstance(result.exception, CostLimitError)
    assert "would pass --max-cost $0.000001" in str(result.exception)
    assert server.chat_requests == 0 and tree_bytes(work) == before


def test_crash_between_shards_leaves_valid_shards_and_rerun_completes(episodes, tmp_path):
    reference = tmp_path / "reference"
    rewrite_episode_shards(episodes, reference, get_rewriter("offline", seed=3))
    work = copy_set(episodes, tmp_path / "work")

    def crash(shard: Path) -> None:
        raise KeyboardInterrupt("simulated crash after the first shard")

    with pytest.raises(KeyboardInterrupt):
        rewrite_episode_shards(work, None, get_rewriter("offline", seed=3), on_shard=crash)
    shards = list_shards(work)
    assert all(sum(1 for _ in iter_samples(s)) == 2 for s in shards)  # every shard whole: old or new
    assert shards[0].read_bytes() == (reference / shards[0].name).read_bytes()
    assert shards[1].read_bytes() == (episodes / shards[1].name).read_bytes()
    rewrite_episode_shards(work, None, get_rewriter("offline", seed=3))
    assert tree_bytes(work) == tree_bytes(reference)


def test_unreadable_episode_json_is_kept_and_counted(episodes, tmp_path):
    src = copy_set(episodes, tmp_path / "src")
    samples = list(iter_samples(list_shards(src)[0]))
    with ShardWriter(src, "extra") as writer:
        broken = {k: v for k, v in samples[0].items() if not k.startswith("__")}
        broken["episode.json"] = b'{"schema": "episode/v1", "layout": '
        writer.write("broken-0000000", broken)
    report = rewrite_episode_shards(src, tmp_path / "out", get_rewriter("offline"))
    assert report["counts"] == {"episodes_rewritten": 4, "unreadable_episode_json": 1}
    [kept] = [s for s in iter_samples(tmp_path / "out" / "extra-000000.tar")]
    assert kept["episode.json"] == broken["episode.json"]


def test_not_an_episode_set_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli(str(tmp_path / "empty"))
    assert "holds no .tar shards" in str(result.exception)
