"""Generate the JSON Schemas under `schemas/` from the record models: `python -m dataengine.records.schemas --write`."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

# schema file stem -> "module:Model". Add a line when a new record type appears.
SCHEMA_MODELS = {
    "episode.v1": "dataengine.records.episode:EpisodeRecord",
    "grounding.v1": "dataengine.records.grounding:GroundingRecord",
}

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


def build_schema(stem: str) -> dict:
    module_name, model_name = SCHEMA_MODELS[stem].split(":")
    model = getattr(importlib.import_module(module_name), model_name)
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://dataengine.dev/schemas/{stem}.schema.json",
        **schema,
    }
    return schema


def schema_text(stem: str) -> str:
    return json.dumps(build_schema(stem), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write the files (default: check they are current)")
    args = parser.parse_args(argv)
    stale = []
    for stem in SCHEMA_MODELS:
        path = SCHEMAS_DIR / f"{stem}.schema.json"
        text = schema_text(stem)
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    if stale:
        print("stale schemas (run with --write): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
