"""The rewriter interface shared by the simulator and `dataengine rewrite`.

A rewriter sees only facts about the scene (`SceneFacts`) and returns three kinds of rewrites of the task
instruction, named as InternData-M1 names them: `attr` (by appearance), `semantic` (by category or use) and
`spatial` (by position relative to other objects in the scene).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, PrivateAttr

RewriteKind = Literal["attr", "semantic", "spatial"]
REWRITE_KINDS: tuple[RewriteKind, ...] = ("attr", "semantic", "spatial")


class ObjectFact(BaseModel):
    """One object as instructions may refer to it."""

    uid: str = Field(description="unique id of the object in the scene, e.g. 'obj_2'")
    name: str = Field(description="short catalog name, e.g. 'mug'")
    category: str = Field(description="category, e.g. 'kitchenware'")
    color: str | None = None
    size: Literal["small", "medium", "large"] | None = None
    attributes: list[str] = Field(default_factory=list, description="e.g. ['ceramic', 'used for drinking']")
    position_xy_m: tuple[float, float] = Field(description="position on the table, world frame, metres")
    role: Literal["pick", "place", "distractor"]


class SceneFacts(BaseModel):
    """Everything a rewriter may use: the base instruction and the objects in the scene."""

    episode_key: str
    task_family: str = "pick_place"
    relation: Literal["in", "on"] = "in"
    base_instruction: str
    objects: list[ObjectFact]
    split: Literal["seen", "unseen"] = Field(
        default="seen", description="which half of the template and phrase pools this episode draws from"
    )
    robot_forward_xy: tuple[float, float] = Field(
        default=(1.0, 0.0),
        description="the direction the robot faces, world frame; 'left' is this turned 90 degrees "
        "counter-clockwise, 'in front of' means nearer the robot along it",
    )

    def by_role(self, role: str) -> list[ObjectFact]:
        return [o for o in self.objects if o.role == role]


class Rewrites(BaseModel):
    """Three rewrites of one instruction (the structured output asked of an LLM).

    Which rewriter actually wrote each kind, and why a kind fell back to the offline rewriter, travel with it as
    private attributes (not part of the schema an LLM is asked to fill): see `mark` and `provenance`."""

    attr: str = Field(description="refers to objects by appearance (colour, size, material)")
    semantic: str = Field(description="refers to objects by category or use")
    spatial: str = Field(description="refers to objects by position relative to other objects")
    _produced_by: dict[str, str] = PrivateAttr(default_factory=dict)
    _fallbacks: dict[str, str] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:  # the texts, not who wrote them
        return isinstance(other, Rewrites) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def mark(self, kind: str, producer: str, fallback_reason: str | None = None) -> Rewrites:
        """Record that `producer` wrote `kind` (instead of the rewriter asked for, because of `fallback_reason`)."""
        self._produced_by[kind] = producer
        if fallback_reason is not None:
            self._fallbacks[kind] = fallback_reason
        else:
            self._fallbacks.pop(kind, None)
        return self

    def provenance(self, asked: str) -> dict[str, Any]:
        """{"rewriter": who wrote the three kinds ("openai", "offline", "openai+offline"), "produced_by": per kind,
        "fallbacks": per kind that fell back, its reason}; kinds never marked count as written by `asked`."""
        by_kind = {kind: self._produced_by.get(kind, asked) for kind in REWRITE_KINDS}
        return {
            "rewriter": "+".join(dict.fromkeys(by_kind.values())),
            "produced_by": by_kind,
            "fallbacks": {k: self._fallbacks[k] for k in REWRITE_KINDS if k in self._fallbacks},
        }


def tally_provenance(rewrites: Sequence[Rewrites], asked: str) -> dict[str, dict[str, int]]:
    """Rewrites by the rewriter that wrote them and fallbacks by reason, over many episodes (for summaries)."""
    producers: Counter[str] = Counter()
    fallbacks: Counter[str] = Counter()
    for item in rewrites:
        info = item.provenance(asked)
        producers.update(info["produced_by"].values())
        fallbacks.update(info["fallbacks"].values())
    return {
        "rewrites_by_rewriter": dict(sorted(producers.items())),
        "fallbacks_by_reason": dict(sorted(fallbacks.items())),
    }


class Rewriter(Protocol):
    """Turns scene facts into rewrites. Implementations: offline (default), openai."""

    name: str

    def rewrite(self, scenes: Sequence[SceneFacts]) -> list[Rewrites]:
        """One `Rewrites` per scene, in order."""
        ...
