"""Task instructions: the base template sentence (GenManip style) and scene facts for the pluggable rewriters.

The base instruction names objects by colour and name ("Move the red cube into the bowl."). Rewrites in three
kinds (attr, semantic, spatial) come from a rewriter obtained with `dataengine.rewrite.get_rewriter`; `none` keeps
the base sentence for all three.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dataengine.records.layout import Layout, SceneObject
from dataengine.rewrite.base import ObjectFact, Rewrites, SceneFacts

TEMPLATES = {
    "in": "Move the {obj} into the {container}.",
    "on": "Put the {obj} on the {container}.",
}


def relation_for(layout: Layout, relation_by_container: dict[str, str]) -> str:
    container = layout.place
    for key in (container.category, container.name, container.asset_id):
        if key in relation_by_container:
            return relation_by_container[key]
    return "in"


def phrase(obj: SceneObject) -> str:
    return f"{obj.color} {obj.name}" if obj.color and obj.color not in obj.name else obj.name


def base_instruction(layout: Layout, relation: str) -> str:
    return TEMPLATES[relation].format(obj=phrase(layout.pick), container=phrase(layout.place))


def scene_facts(episode_key: str, layout: Layout, relation: str, split: str) -> SceneFacts:
    yaw = layout.robot.base_yaw_rad
    return SceneFacts(
        episode_key=episode_key,
        relation=relation,
        base_instruction=base_instruction(layout, relation),
        split="unseen" if split == "unseen" else "seen",
        robot_forward_xy=(math.cos(yaw), math.sin(yaw)),
        objects=[
            ObjectFact(
                uid=o.uid,
                name=o.name,
                category=o.category,
                color=o.color,
                size=o.size_label,
                attributes=list(o.attributes),
                position_xy_m=(round(o.pose.pos_m[0], 4), round(o.pose.pos_m[1], 4)),
                role=o.role,
            )
            for o in layout.objects
        ],
    )


def rewrite_all(
    rewriter_name: str, facts: Sequence[SceneFacts], seed: int, vocabulary: Sequence[str]
) -> list[Rewrites]:
    """Rewrites for a batch of scenes (one call per batch, so LLM rewriters can batch and cache)."""
    from dataengine.rewrite import get_rewriter

    options = {"seed": seed, "vocabulary": list(vocabulary)} if rewriter_name == "offline" else {}
    rewriter = get_rewriter(rewriter_name, **options)
    return list(rewriter.rewrite(list(facts)))
