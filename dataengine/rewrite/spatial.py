"""Spatial noun phrases ('the mug to the left of the banana') that are true in the scene's geometry.

Directions are the robot's: `SceneFacts.robot_forward_xy` points away from the robot, 'left' is that direction
turned 90 degrees counter-clockwise, 'in front of' means nearer the robot. Positions are metres in the world frame.
"""

from __future__ import annotations

import math

from dataengine.rewrite.base import ObjectFact, SceneFacts
from dataengine.rewrite.describe import noun_choices
from dataengine.rewrite.lexicon import display_name

MARGIN_M = 0.04  # smaller offsets do not count as left / right / in front / behind
NEXT_TO_M = 0.30  # 'next to' needs the reference to be the nearest object and closer than this


def _frame(scene: SceneFacts) -> tuple[tuple[float, float], tuple[float, float]]:
    fx, fy = scene.robot_forward_xy
    norm = math.hypot(fx, fy) or 1.0
    forward = (fx / norm, fy / norm)
    return forward, (-forward[1], forward[0])


def offset_robot_frame(a: ObjectFact, b: ObjectFact, scene: SceneFacts) -> tuple[float, float]:
    """(ahead_m, left_m) of `a` relative to `b`: positive ahead = farther from the robot, positive left = left."""
    forward, left = _frame(scene)
    dx = a.position_xy_m[0] - b.position_xy_m[0]
    dy = a.position_xy_m[1] - b.position_xy_m[1]
    return dx * forward[0] + dy * forward[1], dx * left[0] + dy * left[1]


def _distance(a: ObjectFact, b: ObjectFact) -> float:
    return math.dist(a.position_xy_m, b.position_xy_m)


def relation_holds(relation: str, a: ObjectFact, ref: ObjectFact, scene: SceneFacts) -> bool:
    """Whether `a` stands in `relation` to `ref` (left_of, right_of, in_front_of, behind, next_to, closest_to)."""
    if a.uid == ref.uid:
        return False
    ahead, left = offset_robot_frame(a, ref, scene)
    if relation == "left_of":
        return left > MARGIN_M
    if relation == "right_of":
        return left < -MARGIN_M
    if relation == "in_front_of":
        return ahead < -MARGIN_M
    if relation == "behind":
        return ahead > MARGIN_M
    others = [o for o in scene.objects if o.uid != a.uid]
    if relation == "next_to":
        nearest = min(others, key=lambda o: (_distance(a, o), o.uid))
        return nearest.uid == ref.uid and _distance(a, ref) < NEXT_TO_M
    if relation == "closest_to":
        if a.role == "place":
            return False
        rivals = [o for o in scene.objects if o.uid not in (ref.uid,) and o.role != "place"]
        best = min(rivals, key=lambda o: (_distance(o, ref), o.uid))
        return best.uid == a.uid
    raise ValueError(f"unknown relation {relation!r}; valid: left_of, right_of, in_front_of, behind, next_to")


_WORDING = {
    "left_of": "to the left of",
    "right_of": "to the right of",
    "in_front_of": "in front of",
    "behind": "behind",
    "next_to": "next to",
    "closest_to": "closest to",
}
_LINKS = ("", "that is ", "which is ", "sitting ")


def spatial_phrases(obj: ObjectFact, scene: SceneFacts, *, with_plain: bool = False) -> list[str]:
    """Phrases naming `obj` by a true relation to another, uniquely named object in the scene.

    Relations that also hold for another object with the same noun are left out when a distinguishing one
    exists. Falls back to 'the <noun> on the table' when nothing else holds. `with_plain` adds the bare noun.
    """
    name_counts: dict[str, int] = {}
    for o in scene.objects:
        name_counts[display_name(o.name)] = name_counts.get(display_name(o.name), 0) + 1
    refs = [o for o in scene.objects if o.uid != obj.uid and name_counts[display_name(o.name)] == 1]
    same_name = [o for o in scene.objects if o.uid != obj.uid and display_name(o.name) == display_name(obj.name)]
    nouns = noun_choices(obj, scene)
    unique: list[str] = []
    shared: list[str] = []
    for ref in refs:
        ref_noun = display_name(ref.name)
        for relation, wording in _WORDING.items():
            if not relation_holds(relation, obj, ref, scene):
                continue
            also = any(relation_holds(relation, o, ref, scene) for o in same_name)
            links = ("",) if relation == "closest_to" else _LINKS
            for noun in nouns:
                for link in links:
                    (shared if also else unique).append(f"{noun} {link}{wording} the {ref_noun}")
    phrases = unique or shared
    if not phrases:
        phrases = [f"{noun} on the table" for noun in nouns]
    if with_plain and not same_name:
        phrases += nouns
    return sorted(set(phrases))
