"""Simulator frames -> grounding/v1 (`sim to-grounding`), episode previews, and simulator frames in the demo corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataengine.converters.runner import run_conversion
from dataengine.converters.sim_frames import frame_steps
from dataengine.errors import InputError
from dataengine.geometry import box_iou, mask_bbox_xyxy, point_inside
from dataengine.images import sha1_hex
from dataengine.inspect.validate import validate_path
from dataengine.shards import iter_grounding
from dataengine.shards.episode import iter_episodes
from tests.simout_helpers import EPISODES, REPO, simout_episodes

K = 3


def _to_grounding(src, out, frames_per_episode=K):
    """What `dataengine sim to-grounding SRC --out OUT --frames-per-episode K` runs."""
    options = {"frames_per_episode": frames_per_episode}
    return run_conversion("sim-frames", src, out, source_options=options, workers=0, show_progress=False)


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    out = simout_episodes(tmp_path_factory)
    return out, {e.key: e for e in iter_episodes(out)}


@pytest.fixture(scope="module")
def grounding(episodes, tmp_path_factory):
    out = tmp_path_factory.mktemp("grounding") / "g"
    report = _to_grounding(episodes[0], out)
    return out, report, list(iter_grounding(out))


def test_boxes_match_the_segmentation_they_came_from(episodes, grounding):
    _, eps = episodes
    out, report, samples = grounding
    assert validate_path(out).ok
    assert report["read"] == EPISODES and report["written_samples"] == len(samples) > 0
    checked = 0
    for sample in samples:
        ep_key, cam, t = sample.record.image.origin.split("/")
        ep, t = eps[ep_key], int(t)
        seg = ep.segmentation(cam)[t]
        objects = ep.record.layout.objects
        for item in sample.record.items:
            if item.task != "box":
                continue
            index = next(i for i, o in enumerate(objects) if o.uid == item.meta["uid"])
            truth = mask_bbox_xyxy(seg == index)
            assert truth is not None and box_iou(item.boxes[0], truth) >= 0.9, (sample.record.key, item.query)
            checked += 1
    assert checked >= EPISODES * 2


def test_items_frames_and_bytes(episodes, grounding):
    _, eps = episodes
    _, report, samples = grounding
    tasks = {item.task for s in samples for item in s.record.items}
    assert tasks == {"box", "point", "trace"}
    for sample in samples:
        rec = sample.record
        ep_key, cam, t = rec.image.origin.split("/")
        ep = eps[ep_key]
        assert int(t) in frame_steps(ep.num_steps, K)
        assert sample.image_bytes == ep.jpeg(cam, int(t))  # passed through, never re-encoded
        assert rec.image.sha1 == sha1_hex(sample.image_bytes) and rec.split == "seen"
        w, h = rec.image.width, rec.image.height
        for item in rec.items:
            if item.task == "point":
                assert point_inside(item.points[0], w, h)
            if item.task == "trace":
                assert len(item.trace) == ep.record.labels["trace_horizon"]
            if item.task == "box":
                obj = ep.record.layout.object(item.meta["uid"])
                assert obj.name in item.query and item.meta["role"] in ("pick", "container")
    assert report["source"] == "sim-frames" and report["options"]["frames_per_episode"] == K
    assert sum(report["skipped_by_reason"].values()) >= 0 and (Path(grounding[0]) / "convert_report.json").is_file()


def test_deterministic_output(episodes, grounding, tmp_path):
    again = _to_grounding(episodes[0], tmp_path / "g")
    assert again["pairs"] == grounding[1]["pairs"]
    first = sorted(grounding[0].glob("*.tar"))
    assert [p.name for p in first] == sorted(p.name for p in (tmp_path / "g").glob("*.tar"))
    for shard in first:
        assert shard.read_bytes() == (tmp_path / "g" / shard.name).read_bytes()
    with pytest.raises(InputError, match="frames_per_episode"):
        _to_grounding(episodes[0], tmp_path / "bad", frames_per_episode=0)
    with pytest.raises(InputError, match="its options: frames_per_episode, cameras"):
        run_conversion("sim-frames", episodes[0], tmp_path / "bad", source_options={"frames": 2}, workers=0)


def test_preview_gif_and_mp4(episodes, tmp_path):
    from PIL import Image

    from dataengine.export.video import read_video_rgb
    from dataengine.inspect.sim_preview import preview_episode

    src, eps = episodes
    key = sorted(eps)[1]
    gif = preview_episode(src, key, tmp_path / "p.gif", labels=True, stride=3)
    with Image.open(tmp_path / "p.gif") as image:
        assert image.n_frames == gif["frames"] == len(range(0, eps[key].num_steps, 3))
        assert image.width >= 2 * eps[key].record.cameras[0].width  # cameras side by side
    mp4 = preview_episode(src, key, tmp_path / "p.mp4", labels=False)
    assert len(read_video_rgb(tmp_path / "p.mp4")) == mp4["frames"] == eps[key].num_steps
    with pytest.raises(InputError, match=r"\.gif or \.mp4"):
        preview_episode(src, key, tmp_path / "p.avi")
    with pytest.raises(InputError, match="no episode"):
        preview_episode(src, "nope", tmp_path / "p.gif")


def test_demo_corpus_includes_simulator_frames(tmp_path):
    from dataengine.corpus import build_corpus

    out = tmp_path / "demo"
    stats = build_corpus(REPO / "recipes" / "demo.yaml", out, workers=0, show_progress=False)
    assert validate_path(out).ok
    assert stats["by_source"]["sim_frames"]["pairs"] > 0
    sim = [s for s in iter_grounding(out) if s.record.source == "sim_frames"]  # records carry the recipe source name
    assert sim and {item.task for s in sim for item in s.record.items} == {"box", "point", "trace"}
