"""`dataengine export ...`: the export command group, one module per kind of input.

- `grounding.py`: llava-json | hf (grounding/v1 shards -> LLaVA / Qwen-VL JSONL, or a Hugging Face dataset folder);
- `lerobot.py`: lerobot (episode/v1 shards -> a LeRobot dataset, v3.0 or v2.1).
"""

from __future__ import annotations

import importlib

import typer

MODULES = ("grounding", "lerobot")


def register(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app)
