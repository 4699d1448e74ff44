"""Instruction template pools, their seen / unseen split, and filling a template for one episode.

A template is a sentence with exactly one `{pick}` and one `{place}` slot; the relation words are already in it
("Put the {pick} into the {place}."). Offline pools are built in; the OpenAI `templates` mode asks a model for
more (see `pools.py`) and fills them with the same functions.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Sequence
from typing import Literal

Split = Literal["seen", "unseen"]
UNSEEN_FRACTION = 0.25
MAX_TEMPLATE_CHARS = 160

# `{in}` becomes 'in' / 'on' and `{into}` 'into' / 'onto' for the scene's relation.
PICK_PLACE_TEMPLATES: tuple[str, ...] = (
    "Put the {pick} {in} the {place}.",
    "Place the {pick} {in} the {place}.",
    "Pick up the {pick} and put it {in} the {place}.",
    "Move the {pick} {into} the {place}.",
    "Grab the {pick} and drop it {into} the {place}.",
    "Transfer the {pick} {into} the {place}.",
    "Set the {pick} {in} the {place}.",
    "Could you put the {pick} {in} the {place}?",
    "Take the {pick} and place it {in} the {place}.",
    "Get the {pick} {into} the {place}.",
    "The {pick} goes {in} the {place}.",
    "Lift the {pick} and set it down {in} the {place}.",
    "Please move the {pick} {into} the {place}.",
    "Find the {pick} and put it {in} the {place}.",
    "I want the {pick} {in} the {place}.",
    "Carry the {pick} over and place it {in} the {place}.",
)

FAMILY_TEMPLATES: dict[str, tuple[str, ...]] = {"pick_place": PICK_PLACE_TEMPLATES}
_RELATION_WORDS = {"in": {"in": "in", "into": "into"}, "on": {"in": "on", "into": "onto"}}
_SLOT = re.compile(r"\{([^{}]*)\}")


def family_templates(task_family: str, relation: str) -> list[str]:
    """The built-in templates of a task family with the relation filled in (unknown families use pick_place)."""
    raw = FAMILY_TEMPLATES.get(task_family, PICK_PLACE_TEMPLATES)
    words = _RELATION_WORDS[relation]
    return [t.replace("{in}", words["in"]).replace("{into}", words["into"]) for t in raw]


def template_problem(template: str) -> str | None:
    """Why a template is unusable (a snake_case reason), or None when it has exactly {pick} and {place}."""
    if not template.strip():
        return "empty_template"
    if len(template) > MAX_TEMPLATE_CHARS:
        return "template_too_long"
    slots = _SLOT.findall(template)
    if sorted(slots) != ["pick", "place"] or template.count("{") != 2 or template.count("}") != 2:
        return "template_bad_slots"
    return None


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def split_pool(items: Sequence[str], split: Split, unseen_fraction: float = UNSEEN_FRACTION) -> list[str]:
    """The part of a pool reserved for `split`: a stable, content-based choice of about `unseen_fraction` unseen.

    Pools with fewer than 2 items are shared by both splits, so a split is never empty.
    """
    unique = sorted(set(items))
    if len(unique) < 2:
        return unique
    n_unseen = min(len(unique) - 1, max(1, math.ceil(len(unique) * unseen_fraction)))
    ranked = sorted(unique, key=lambda t: (_stable_hash(t), t))
    unseen = set(ranked[:n_unseen])
    return [t for t in unique if (t in unseen) == (split == "unseen")]


def episode_rng(seed: int, episode_key: str, purpose: str) -> random.Random:
    """A random generator fixed by (seed, episode key, purpose): same inputs, same draws, on any machine."""
    digest = hashlib.sha256(f"{seed}\x1f{episode_key}\x1f{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def fill(template: str, pick_phrase: str, place_phrase: str) -> str:
    """Put the phrases into the slots and capitalise the first letter."""
    text = template.replace("{pick}", pick_phrase).replace("{place}", place_phrase)
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]
