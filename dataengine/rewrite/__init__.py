"""Instruction rewriting: one interface, an offline default and an OpenAI-compatible rewriter.

`get_rewriter("offline" | "openai" | "none", **options)` returns a `Rewriter`; `rewriter.rewrite(scenes)` gives one
`Rewrites` (attr / semantic / spatial) per `SceneFacts`, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dataengine.errors import RecipeError
from dataengine.rewrite.base import REWRITE_KINDS, ObjectFact, RewriteKind, Rewriter, Rewrites, SceneFacts
from dataengine.rewrite.offline import OfflineRewriter

REWRITER_NAMES: tuple[str, ...] = ("offline", "openai", "none")


class NoneRewriter:
    """Keeps the base instruction for every kind (for runs that want the template sentence only)."""

    name = "none"

    def rewrite(self, scenes: Sequence[SceneFacts]) -> list[Rewrites]:
        return [
            Rewrites(attr=s.base_instruction, semantic=s.base_instruction, spatial=s.base_instruction) for s in scenes
        ]


def get_rewriter(name: str, **options: Any) -> Rewriter:
    """Build a rewriter by name.

    - `offline` (default everywhere): options `seed`, `vocabulary` (extra object names, e.g. the asset catalog),
      `unseen_fraction`.
    - `openai`: options of `OpenAIRewriter` (model, mode, cache_dir, concurrency, ...); needs OPENAI_API_KEY or a
      local server's key, and falls back to offline rewrites per item when a reply is unusable.
    - `none`: the base instruction for all three kinds; ignores options.
    """
    if name == "offline":
        return OfflineRewriter(**options)
    if name == "none":
        return NoneRewriter()
    if name == "openai":
        from dataengine.rewrite.openai_rewriter import OpenAIRewriter

        return OpenAIRewriter(**options)
    raise RecipeError(f"unknown rewriter {name!r}; valid: {', '.join(REWRITER_NAMES)}")


__all__ = [
    "REWRITER_NAMES",
    "REWRITE_KINDS",
    "NoneRewriter",
    "ObjectFact",
    "OfflineRewriter",
    "RewriteKind",
    "Rewriter",
    "Rewrites",
    "SceneFacts",
    "get_rewriter",
]
