"""The dataset card: `README.md` with Hugging Face front matter (licence, task categories, tags, configs with
data_files globs, and `dataset_info.features` equal to `records.grounding.hf_features()`, so neither the Hub nor
`datasets` has to infer types), then sources, licences, counts, holdouts, dedup and how to load the corpus.

The features are kept as a generated snapshot (`hf_features_snapshot.py`) so a build needs no `datasets` install
and writes the same bytes everywhere; `python -m dataengine.corpus.card --write-features` regenerates it and a
test checks that it agrees with `hf_features()`.
"""

from __future__ import annotations

import argparse
import pprint
from pathlib import Path

import yaml

from dataengine import __version__
from dataengine.corpus.hf_features_snapshot import HF_FEATURES_YAML

SNAPSHOT_PATH = Path(__file__).with_name("hf_features_snapshot.py")
TASK_CATEGORIES = ["image-text-to-text", "visual-question-answering", "object-detection"]
TAGS = ["spatial-grounding", "referring-expression-comprehension", "pointing", "robotics", "vla", "webdataset"]
HF_LICENSES = {
    "apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-3.0", "cc0-1.0",
    "odc-by", "odbl", "cc-by-2.0", "cc-by-nc-2.0", "cc-by-sa-3.0", "cdla-permissive-2.0", "bsd-3-clause", "other",
}  # fmt: skip
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]  # fmt: skip


def features_yaml_from_datasets() -> list:
    """The YAML form of `hf_features()` as `datasets` writes it into dataset cards (needs `datasets`)."""
    from dataengine.records.grounding import hf_features

    return hf_features()._to_yaml_list()


def hf_license(licenses: list[str]) -> str | list[str]:
    """Hub licence id(s) for the records' licence strings ("other" for what the Hub does not list)."""
    ids: list[str] = []
    for text in licenses:
        for part in text.replace("(", " ").replace(")", " ").split(" AND "):
            lid = part.strip().lower()
            lid = lid if lid in HF_LICENSES else "other"
            if lid not in ids:
                ids.append(lid)
    ids = ids or ["other"]
    return ids[0] if len(ids) == 1 else sorted(ids)


def size_category(samples: int) -> str:
    return next((label for limit, label in SIZE_CATEGORIES if samples < limit), "n>100M")


def front_matter(name: str, split: str, stats: dict) -> dict:
    licenses = sorted({lic for per_source in stats["licenses"].values() for lic in per_source})
    return {
        "license": hf_license(licenses),
        "pretty_name": name,
        "task_categories": TASK_CATEGORIES,
        "tags": TAGS,
        "size_categories": [size_category(stats["samples"])],
        "configs": [{"config_name": "default", "data_files": [{"split": split, "path": f"{split}-*.tar"}]}],
        "dataset_info": {
            "config_name": "default",
            "features": HF_FEATURES_YAML,
            "splits": [{"name": split, "num_bytes": stats["bytes"], "num_examples": stats["samples"]}],
            "download_size": stats["bytes"],
            "dataset_size": stats["bytes"],
        },
    }


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"{c:,}" if isinstance(c, int) else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(recipe, recipe_file: str, recipe_sha256: str, stats: dict, command: str) -> str:
    """The full README.md text (deterministic: no dates, no timings)."""
    split = recipe.output_split
    head = yaml.safe_dump(front_matter(recipe.name, split, stats), sort_keys=False, allow_unicode=True, width=120)
    sel = stats["selection"]
    source_rows = []
    for s in recipe.sources:
        spec = s.from_
        origin = (
            f"converter `{spec.converter}`"
            if spec.converter
            else (f"fixture `{spec.fixture}`" if spec.fixture else "converted shards")
        )
        share = f"{s.pairs:,} pairs" if s.pairs is not None else f"weight {s.effective_weight:g}"
        lic = ", ".join(sorted(stats["licenses"].get(s.name, {}))) or "-"
        c = sel[s.name]
        name = f"[{s.name}]({s.url})" if s.url else s.name
        source_rows.append(
            [
                name,
                origin,
                lic,
                share,
                c["available_pairs"],
                stats["quotas"][s.name],
                c["selected_pairs"],
                c["selected_items"],
            ]
        )
    split_rows = [
        [src, sp, v["items"], v["pairs"]] for src, d in stats["by_source_split"].items() for sp, v in d.items()
    ]
    task_rows = [[src, t, v["items"], v["pairs"]] for src, d in stats["by_source_task"].items() for t, v in d.items()]
    removed_rows = [
        [
            src,
            c["scanned_items"],
            c["removed_split_filter"],
            c["removed_task_filter"],
            c["removed_holdout_image_sha1"],
            c["removed_holdout_coco_image_id"],
            c["removed_duplicate_item"],
            c["available_items"] - c["selected_items"],
        ]
        for src, c in ((s.name, sel[s.name]) for s in recipe.sources)
    ]
    hold_rows = [
        [h, v["images"], v["coco_image_ids"], v["items_by_image_sha1"], v["items_by_coco_image_id"]]
        for h, v in ((h.name, stats["holdouts"][h.name]) for h in recipe.holdouts)
    ]
    export = recipe.export
    target = f"target {recipe.target_pairs:,} pairs" if recipe.target_pairs else "every admitted pair"
    parts = [
        f"---\n{head}---\n",
        f"# {recipe.name} (version {recipe.version})\n",
        (recipe.description.strip() + "\n") if recipe.description else "",
        f"A spatial grounding corpus of **{stats['pairs']:,} pairs** ({stats['items']:,} items) on "
        f"**{stats['samples']:,} images** in {stats['shards']:,} WebDataset shards ({stats['bytes']:,} bytes), "
        f"split `{split}`.\n",
        f"Built by dataengine {__version__} from recipe `{recipe_file}` (family `{recipe.family or recipe.name}`, "
        f"seed {recipe.seed}, {target}, recipe sha256 `{recipe_sha256}`):\n",
        f"```\n{command}\n```\n",
        "The resolved recipe with input hashes is in `recipe.lock.yaml`; counts are in `stats.json`, one row per "
        "item in `manifest.parquet`, rejected records with reasons in `quarantine.jsonl` (when any).\n",
        "## Sources\n",
        markdown_table(
            ["source", "from", "licence", "share", "available pairs", "quota", "pairs", "items"], source_rows
        )
        + "\n",
        "Record licences are kept per sample (`license`; merged samples list each, joined by AND). Respect the "
        "terms of every source.\n",
        "## Counts per source and split\n",
        markdown_table(["source", "split", "items", "pairs"], split_rows) + "\n",
        "## Counts per source and task\n",
        markdown_table(["source", "task", "items", "pairs"], task_rows) + "\n",
        "## Filters, holdouts and deduplication (items)\n",
        markdown_table(
            [
                "source",
                "scanned",
                "split filter",
                "task filter",
                "holdout: image sha1",
                "holdout: COCO id",
                "duplicate",
                "over quota",
            ],
            removed_rows,
        )
        + "\n",
        markdown_table(
            ["holdout", "images", "COCO ids", "items removed by image sha1", "items removed by COCO id"], hold_rows
        )
        + "\n"
        if hold_rows
        else "No eval holdouts.\n",
        f"Identical image bytes across sources are one sample holding the union of their items "
        f"({stats['dedup']['multi_source_samples']:,} samples merge several sources, "
        f"{stats['dedup']['merged_samples']:,} merge several input samples); identical (image, task, query, "
        f"answer) items appear once ({stats['dedup']['duplicate_items_removed']:,} removed).\n",
        "## Format\n",
        "Each sample is the untouched image (`.jpg`/`.png`/`.webp`) and a `grounding/v1` record (`.json`): "
        "absolute pixel coordinates of the stored image, boxes `[x1, y1, x2, y2]`, points `[x, y]`, traces as "
        "point lists; each item names the recipe `source` and its `source_split`. The sample key is the image "
        "SHA-1.\n",
        "```python\nimport datasets\nfrom dataengine.records.grounding import hf_features\n\n"
        f'ds = datasets.load_dataset("webdataset", data_files={{"{split}": "{split}-*.tar"}}, split="{split}", '
        "features=hf_features())\n```\n",
        "## Export settings\n",
        f"Answer style `{export.answer_style}` (options {export.style_options or 'default'}), question templates "
        f"{'`' + export.templates + '`' if export.templates else 'built-in'}, template seed "
        f"{export.template_seed if export.template_seed is not None else recipe.seed}, spatial prompt "
        f"{export.spatial_prompt or 'none'}.\n",
    ]
    return "\n".join(p for p in parts if p)


def write_features_snapshot() -> Path:
    text = (
        '"""Generated by `python -m dataengine.corpus.card --write-features`\n'
        'from `records.grounding.hf_features()`; do not edit."""\n\n'
        f"HF_FEATURES_YAML = {pprint.pformat(features_yaml_from_datasets(), width=118, sort_dicts=False)}\n"
    )
    SNAPSHOT_PATH.write_text(text, encoding="utf-8")
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "ruff", "format", str(SNAPSHOT_PATH)], check=False, capture_output=True)
    return SNAPSHOT_PATH


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-features", action="store_true", help="regenerate hf_features_snapshot.py")
    if parser.parse_args().write_features:
        print(write_features_snapshot())
