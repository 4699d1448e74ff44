"""Benchmark: the training loader against plain `webdataset` iteration over the same shards, in the same run.

    python bench/train_loader.py --work /tmp/bench_train_loader [--samples 2000] [--episodes 8] [--repeat 3]

Builds (or reuses) grounding shards (drawn 320x240 / 200x300 scenes, 25 samples a shard, the engine's shard writer)
and episode shards (the demo sim recipe, 224x224 front camera, from the MuJoCo generator), warms the page cache,
then times, each `--repeat` times (best kept: other jobs on the machine only slow a run down), one epoch of:
  raw       : samples as member bytes;                 baseline `wds.WebDataset(urls)` with the same shuffle buffer;
  grounding : training-ready chat samples (record parsed, item rendered with the answer style and templates,
              image decoded and resized to 224x224);   baseline: the same transform in `.map()`;
  actions   : one sample per control step (frame decoded and resized to 224, state, normalized 16-step chunk);
              baseline: `.compose()` expanding each episode into its steps, the same per-step transform.
Both sides run in the main process (no workers), batch 16, shuffle buffer 1000 units. Target: loader >= 0.8x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH, BUFFER = 16, 1000


def build(work: Path, samples: int, episodes: int) -> tuple[Path, Path]:
    from tests.fixtures.train_data import make_episode_shards, make_grounding_shards

    g, e = work / "corpus", work / "sim"
    marker = work / "built.json"
    want = {"samples": samples, "episodes": episodes}
    if not marker.exists() or json.loads(marker.read_text()) != want:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        t = time.perf_counter()
        make_grounding_shards(g, samples=samples, per_shard=25)
        make_episode_shards(e, episodes=episodes, size=224)
        print(f"built {samples} grounding samples and {episodes} episodes in {time.perf_counter() - t:.0f}s")
        marker.write_text(json.dumps(want))
    return g, e


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass


def time_epoch(iterable, count_of=len) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    for batch in iterable:
        n += count_of(batch)
    return time.perf_counter() - t, n


class RawUnits:
    def prepare(self, raw):
        return raw

    def item(self, raw, unit, epoch):
        return {"__key__": raw["__key__"], "bytes": sum(len(v) for v in raw.values() if isinstance(v, bytes))}


def meta_collate(items):
    from dataengine.train.streams import META_KEYS

    return {"meta": {k: [it.get(k) for it in items] for k in META_KEYS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_train_loader"))
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import torch
    import webdataset as wds
    from torch.utils.data import DataLoader

    from dataengine.formats import get_style
    from dataengine.shards import list_shards
    from dataengine.train.action_data import ActionUnits
    from dataengine.train.collate import Collator
    from dataengine.train.grounding_data import GroundingUnits
    from dataengine.train.models.tiny_vlm import ByteChatEncoder
    from dataengine.train.normalization import Normalizer, apply_units, load_or_compute_stats
    from dataengine.train.shard_index import load_shard_set
    from dataengine.train.streams import ShardStream, SkipSample, StreamLoader

    torch.set_num_threads(1)
    g_dir, e_dir = build(args.work, args.samples, args.episodes)
    g_urls, e_urls = [str(p) for p in list_shards(g_dir)], [str(p) for p in list_shards(e_dir)]
    warm([Path(u) for u in g_urls + e_urls])
    encoder = ByteChatEncoder(224, 256)
    grounding = GroundingUnits(get_style("internvla-m1"), encoder.prepare_image)
    e_entries = load_shard_set(e_dir)
    stats, _ = load_or_compute_stats(e_entries, e_dir, args.work)
    actions = ActionUnits(Normalizer(stats), encoder.prepare_image, image_size=224, chunk_size=16)
    collate = Collator(encoder)

    def mine(path, units, collate_fn, with_steps=False):
        entries = load_shard_set(path)
        if with_steps:
            apply_units(entries, stats)
        stream = ShardStream(entries, units, seed=0, shuffle_buffer=BUFFER, epochs=1)
        return StreamLoader(stream, BATCH, collate_fn)

    def plain(urls, transform=None, expand=None):
        ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
        if expand is not None:
            ds = ds.compose(expand)
        ds = ds.shuffle(BUFFER, initial=BUFFER)
        if transform is not None:
            ds = ds.map(transform, handler=wds.ignore_and_continue)  # the loader skips the same samples
        return DataLoader(ds, batch_size=BATCH, collate_fn=collate if transform else list, num_workers=0)

    def g_transform(sample):
        return grounding.item(grounding.prepare(sample), 0, 0)

    def expand_steps(src):
        for sample in src:
            try:
                ep = actions.prepare(sample)
            except SkipSample:
                continue
            for t in range(ep.record.num_steps):
                yield (ep, t)

    def a_transform(pair):
        return actions.item(pair[0], pair[1], 0)

    count_meta = lambda b: len(b["meta"]["__key__"])  # noqa: E731
    cases = {
        "raw": (lambda: mine(g_dir, RawUnits(), meta_collate), count_meta, lambda: plain(g_urls, None), len),
        "grounding": (
            lambda: mine(g_dir, grounding, collate), count_meta, lambda: plain(g_urls, g_transform), count_meta,
        ),
        "actions": (
            lambda: mine(e_dir, actions, collate, with_steps=True), count_meta,
            lambda: plain(e_urls, a_transform, expand_steps), count_meta,
        ),
    }  # fmt: skip
    report = {"samples": args.samples, "episodes": args.episodes, "batch": BATCH, "shuffle_buffer": BUFFER}
    for name, (make_mine, count_mine, make_plain, count_plain) in cases.items():
        best_mine = best_plain = None
        for _ in range(args.repeat):
            load0 = os.getloadavg()[0]
            s_plain, n_plain = time_epoch(make_plain(), count_plain)
            s_mine, n_mine = time_epoch(make_mine(), count_mine)
            if n_plain != n_mine:
                raise SystemExit(f"{name}: loader gave {n_mine} samples, webdataset {n_plain}")
            best_plain = min(best_plain or s_plain, s_plain)
            best_mine = min(best_mine or s_mine, s_mine)
            print(f"{name}: webdataset {n_plain / s_plain:9.1f}/s  loader {n_mine / s_mine:9.1f}/s  (load {load0:.1f})")
        report[name] = {
            "units": n_mine,
            "webdataset_per_s": round(n_plain / best_plain, 1),
            "loader_per_s": round(n_mine / best_mine, 1),
            "ratio": round(best_plain / best_mine, 3),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
