"""Noun phrases for one object by appearance (`attr`) and by category or use (`semantic`), from its facts only.

Each builder returns candidate phrases; candidates that would also describe another object in the scene are
dropped when at least one candidate singles the object out.
"""

from __future__ import annotations

from collections.abc import Callable

from dataengine.rewrite.base import ObjectFact, SceneFacts
from dataengine.rewrite.lexicon import MATERIALS, category_phrase, display_name, is_use_phrase, synonyms
from dataengine.rewrite.validate import reference_terms

Candidate = tuple[str, Callable[[ObjectFact], bool]]


def noun_choices(obj: ObjectFact, scene: SceneFacts) -> list[str]:
    """The object's name and those synonyms no other object in the scene answers to."""
    others = [o for o in scene.objects if o.uid != obj.uid and display_name(o.name) != display_name(obj.name)]
    taken = set().union(*(reference_terms(o) for o in others)) if others else set()
    name, *syns = synonyms(obj.name)
    return [name, *(s for s in syns if s not in taken)]


def _answers_to(obj: ObjectFact, noun: str) -> bool:
    return noun in synonyms(obj.name) or noun == display_name(obj.name).split()[-1]


def appearance_facts(obj: ObjectFact) -> dict[str, str]:
    """Appearance words by slot: size, shape (other looks), color, material."""
    facts: dict[str, str] = {}
    if obj.size in ("small", "large"):
        facts["size"] = obj.size
    name_words = set(display_name(obj.name).split())
    if obj.color and obj.color.lower().strip() not in name_words:  # no 'orange orange'
        facts["color"] = obj.color.lower().strip()
    for attr in obj.attributes:
        low = attr.lower().strip()
        if not low or is_use_phrase(low) or low in name_words:
            continue
        if low in MATERIALS:
            facts.setdefault("material", low)
        elif len(low.split()) == 1:
            facts.setdefault("shape", low)
    return facts


def use_phrases(obj: ObjectFact) -> list[str]:
    return [a.lower().strip() for a in obj.attributes if is_use_phrase(a)]


def _single_out(obj: ObjectFact, scene: SceneFacts, candidates: list[Candidate]) -> list[str]:
    """Texts of the candidates that fit no other object; all texts when none does."""
    others = [o for o in scene.objects if o.uid != obj.uid]
    unique = [text for text, fits in candidates if not any(fits(o) for o in others)]
    return sorted(set(unique or [text for text, _ in candidates]))


def appearance_phrases(obj: ObjectFact, scene: SceneFacts) -> list[str]:
    """'small red mug', 'red ceramic cup', ...: adjectives in English order (size, shape, colour, material)."""
    facts = appearance_facts(obj)
    slot_sets = [("color",), ("size", "color"), ("color", "material"), ("shape", "color"), ("size",), ("material",)]
    slot_sets += [("shape",), ("size", "material")]
    candidates: list[Candidate] = []
    for noun in noun_choices(obj, scene):
        for slots in slot_sets:
            if not all(s in facts for s in slots):
                continue
            adjectives = [facts[s] for s in ("size", "shape", "color", "material") if s in slots]
            wanted = {s: facts[s] for s in slots}

            def fits(other: ObjectFact, noun: str = noun, wanted: dict[str, str] = wanted) -> bool:
                theirs = appearance_facts(other)
                return _answers_to(other, noun) and all(theirs.get(s) in (None, v) for s, v in wanted.items())

            candidates.append((" ".join([*adjectives, noun]), fits))
        if not facts:
            candidates.append((noun, lambda other, noun=noun: _answers_to(other, noun)))
    return _single_out(obj, scene, candidates)


def semantic_phrases(obj: ObjectFact, scene: SceneFacts) -> list[str]:
    """'kitchen item used for drinking', 'mug used for drinking', 'piece of fruit', ..."""
    category = display_name(obj.category) if obj.category else ""
    cat_text = category_phrase(obj.category) if obj.category else ""
    candidates: list[Candidate] = []
    for use in use_phrases(obj):
        if cat_text:
            candidates.append(
                (
                    f"{cat_text} {use}",
                    lambda o, use=use: display_name(o.category) == category and use in use_phrases(o),
                )
            )
        for noun in noun_choices(obj, scene):
            candidates.append(
                (f"{noun} {use}", lambda o, use=use, noun=noun: _answers_to(o, noun) and use in use_phrases(o))
            )
    if cat_text:
        candidates.append((cat_text, lambda o: display_name(o.category) == category))
    if not candidates:
        candidates = [(n, lambda o, n=n: _answers_to(o, n)) for n in noun_choices(obj, scene)]
    return _single_out(obj, scene, candidates)
