"""The `templates` cost mode: template pools per task family and phrase pools per asset, written by a model.

One request per (task family, relation) and one per asset (name, category, attributes; colour and size are
`{color}` / `{size}` slots in the phrases, filled per episode),
whatever the number of episodes; episodes are then filled offline by `compose_rewrites`, with the same
seen / unseen split of every pool. Items that fail validation are dropped and counted; an empty or failed pool
falls back to the built-in one. Spatial phrases always come from the scene geometry.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from dataengine.rewrite.base import ObjectFact, RewriteKind, SceneFacts
from dataengine.rewrite.lexicon import display_name
from dataengine.rewrite.offline import BuiltinPhrases
from dataengine.rewrite.prompts import AssetPool, TemplatePool, asset_signature
from dataengine.rewrite.templates import template_problem
from dataengine.rewrite.validate import check_phrase

ModelT = TypeVar("ModelT", bound=BaseModel)
_ARTICLES = ("the ", "a ", "an ")


def parse_reply(content: str | None, model: type[ModelT]) -> tuple[ModelT | None, str | None]:
    """The reply as `model`, or the reason it cannot be: malformed_json, schema_mismatch."""
    if content is None:
        return None, "empty_response"
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        return None, "malformed_json"
    try:
        return model.model_validate(data), None
    except ValidationError:
        return None, "schema_mismatch"


def strip_article(phrase: str) -> str:
    text = " ".join(phrase.strip().rstrip(".").split())
    for article in _ARTICLES:
        if text.lower().startswith(article):
            return text[len(article) :]
    return text


def clean_templates(pool: TemplatePool, stats: Counter[str]) -> list[str]:
    """Templates with exactly one {pick} and one {place}; the others are counted by reason."""
    kept = []
    for template in pool.templates:
        problem = template_problem(template.strip())
        if problem is None:
            kept.append(template.strip())
        else:
            stats[f"pool_rejected_{problem}"] += 1
    return sorted(set(kept))


PHRASE_SLOTS = {"{color}": "red", "{size}": "small"}


def fill_phrase(phrase: str, obj: ObjectFact) -> str | None:
    """A pool phrase with the object's colour and size put in; None if it needs a fact the object lacks."""
    values = {"{color}": obj.color, "{size}": obj.size}
    for slot, value in values.items():
        if slot in phrase:
            if not value:
                return None
            phrase = phrase.replace(slot, value.lower())
    return " ".join(phrase.split())


def clean_phrases(phrases: Sequence[str], obj: ObjectFact, vocabulary: frozenset[str], stats: Counter[str]):
    """Phrases (with optional {color} / {size} slots) that name `obj` and no other object; others counted."""
    kept = []
    for phrase in phrases:
        text = strip_article(phrase) if isinstance(phrase, str) else phrase
        sample = text
        if isinstance(text, str):
            for slot, value in PHRASE_SLOTS.items():
                sample = sample.replace(slot, value)
        problem = check_phrase(sample, obj, vocabulary)
        if problem is None:
            kept.append(text)
        else:
            stats[f"pool_rejected_{problem}"] += 1
    return sorted(set(kept))


class ModelPhrases(BuiltinPhrases):
    """Model-written pools where there are some, built-in ones elsewhere.

    An object that shares its name with another object in the scene keeps the built-in phrases, which are
    chosen to single it out (a model pool written for the asset alone cannot know the other object).
    """

    def __init__(self) -> None:
        self.family_templates: dict[tuple[str, str], list[str]] = {}
        self.asset_phrases: dict[str, dict[str, list[str]]] = {}

    def templates(self, scene: SceneFacts, kind: RewriteKind) -> list[str]:
        pool = self.family_templates.get((scene.task_family, scene.relation))
        return pool if pool else super().templates(scene, kind)

    def producer(self, scene: SceneFacts, kind: RewriteKind) -> tuple[str, str | None]:
        """ "openai" when the model's templates or the model's phrases of the pick or place object are used."""
        if self.family_templates.get((scene.task_family, scene.relation)):
            return "openai", None
        if kind != "spatial" and any(self._model_pool(o, scene, kind) for o in scene.objects if o.role != "distractor"):
            return "openai", None
        return "offline", "model_pools_unavailable"

    def _model_pool(self, obj: ObjectFact, scene: SceneFacts, kind: RewriteKind) -> list[str]:
        pools = self.asset_phrases.get(asset_signature(obj))
        twin = any(o.uid != obj.uid and display_name(o.name) == display_name(obj.name) for o in scene.objects)
        if kind == "spatial" or pools is None or twin:
            return []
        return sorted(
            {p for p in (fill_phrase(p, obj) for p in pools["appearance" if kind == "attr" else "semantic"]) if p}
        )

    def phrases(self, obj: ObjectFact, scene: SceneFacts, kind: RewriteKind) -> list[str]:
        pools = self.asset_phrases.get(asset_signature(obj))
        twin = any(o.uid != obj.uid and display_name(o.name) == display_name(obj.name) for o in scene.objects)
        if kind == "spatial" or pools is None or twin:
            return super().phrases(obj, scene, kind)
        filled = (fill_phrase(p, obj) for p in pools["appearance" if kind == "attr" else "semantic"])
        pool = sorted({p for p in filled if p})
        return pool if pool else super().phrases(obj, scene, kind)

    def missing_families(self, scenes: Sequence[SceneFacts]) -> list[tuple[str, str]]:
        keys = {(s.task_family, s.relation) for s in scenes}
        return sorted(keys - set(self.family_templates))

    def missing_assets(self, scenes: Sequence[SceneFacts]) -> dict[str, ObjectFact]:
        """One representative object per asset signature without pools yet, in a stable order."""
        found: dict[str, ObjectFact] = {}
        for scene in scenes:
            for obj in scene.objects:
                signature = asset_signature(obj)
                if signature not in self.asset_phrases:
                    found.setdefault(signature, obj)
        return dict(sorted(found.items()))

    def add_family(self, key: tuple[str, str], content: str | None, reason: str | None, stats: Counter[str]):
        pool, problem = parse_reply(content, TemplatePool) if reason is None else (None, reason)
        templates = clean_templates(pool, stats) if pool is not None else []
        if problem is not None:
            stats[f"pool_failed_{problem}"] += 1
        if not templates:
            stats["pool_fallback_builtin_templates"] += 1
        self.family_templates[key] = templates

    def add_asset(self, signature: str, obj: ObjectFact, content: str | None, reason: str | None,
                  vocabulary: frozenset[str], stats: Counter[str]) -> None:  # fmt: skip
        pool, problem = parse_reply(content, AssetPool) if reason is None else (None, reason)
        if problem is not None:
            stats[f"pool_failed_{problem}"] += 1
        appearance = clean_phrases(pool.appearance, obj, vocabulary, stats) if pool else []
        semantic = clean_phrases(pool.semantic, obj, vocabulary, stats) if pool else []
        if not appearance or not semantic:
            stats["pool_fallback_builtin_phrases"] += 1
        self.asset_phrases[signature] = {"appearance": appearance, "semantic": semantic}
