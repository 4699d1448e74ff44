"""The input layout each converter expects, in words (shown by `dataengine convert --help` and in errors).

Kept apart from the converters so the CLI can print them without importing numpy, pydantic or pyarrow.
"""

from __future__ import annotations

_REFER = (
    "--input: the `refer` data root holding refcoco/{instances.json, refs(unc).p, refs(google).p}, "
    "refcoco+/{instances.json, refs(unc).p}, refcocog/{instances.json, refs(umd).p, refs(google).p} "
    "(or one of those folders). --images: COCO train2014 (COCO_train2014_<12-digit id>.jpg) or train2017 "
    "(<12-digit id>.jpg); default <input>/images/mscoco/images/train2014. --split-by unc|google "
    "(refcoco), unc (refcoco+), umd|google (refcocog). Pickles load through a restricted unpickler."
)

LAYOUTS: dict[str, str] = {
    "refcoco": _REFER,
    "refcoco+": _REFER,
    "refcocog": _REFER,
    "roborefit": (
        "--input: the RoboRefIt data root holding final_dataset/{train,testA,testB}/roborefit_<split>.json "
        "with image/, depth/ and mask/<idx>/<k>.png beside them (or the final_dataset folder itself). Paths in the "
        "JSON use Windows backslashes, relative to the data root."
    ),
    "llava-onevision": (
        "--input: the LLaVA-OneVision-Data root with one folder per subset, named literally "
        "(e.g. 'sharegpt4v(coco)', 'visual7w(cauldron,llava_format)'), each holding "
        "train-0000k-of-0000N.parquet with columns id, image{bytes, path}, conversations[{from, value}], "
        "data_source; or one subset folder, or one parquet file. Read by row group; text-only rows are skipped "
        "unless --keep-text-only."
    ),
    "robopoint": (
        "--input: robopoint_1432k.json (a JSON list of {id, image, conversations}) or the folder holding it. "
        "--images: the folder where the images/*.tar.gz archives were extracted (default <input folder>/images); "
        "`image` paths are relative to it."
    ),
    "where2place": (
        "--input: the Where2Place folder holding point_questions.jsonl ({question_id, image, text, category} "
        "per line), images/ and masks/<line index:02d>.jpg."
    ),
    "pixmo-points": (
        "--input: PixMo-Points parquet (a file, or a folder such as data/train-0000k-of-0000N.parquet) or "
        "JSONL with image_url, image_sha256, points[{x, y}], count, label, collection_method. --images: a folder "
        "of the downloaded images named <image_sha256> (any extension), or a mapping file (or a folder holding "
        "mapping.jsonl/.json/.csv/.tsv) with columns image_sha256 or image_url, and path."
    ),
    "sharerobot": (
        "--input: the ShareRobot root holding trajectory/*.json (+ trajectory/images/) and/or affordance/*.json "
        "(+ affordance/images/); rows {id, image, meta_data{original_width, original_height}, instruction, "
        "points | affordance{x, y, width, height}}, image paths relative to <kind>/images/. A file named "
        "test.json gives split test, others train."
    ),
    "sim-frames": "--input: a `dataengine sim generate` output folder (episode/v1 shards with rendered frames).",
}


def layouts_epilog() -> str:
    """Every source's layout, one paragraph each (the `convert --help` epilog)."""
    shown = [name for name in LAYOUTS if name not in ("refcoco+", "refcocog")]
    paragraphs = []
    for name in shown:
        title = "refcoco | refcoco+ | refcocog" if name == "refcoco" else name
        paragraphs.append(f"{title}: {LAYOUTS[name]}")
    return "Expected input layouts:\n\n" + "\n\n".join(paragraphs)
