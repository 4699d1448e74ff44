"""Chat Completions request bodies for the OpenAI rewriter, with their structured-output schemas.

Bodies are plain dicts, built deterministically (sorted facts, fixed wording), so the same scene gives the same
body and the same cache key. Changing any wording here must bump `PROMPT_SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from dataengine.rewrite.base import ObjectFact, Rewrites, SceneFacts
from dataengine.rewrite.lexicon import display_name
from dataengine.rewrite.spatial import spatial_phrases
from dataengine.rewrite.validate import MAX_WORDS, reference_terms

PROMPT_SCHEMA_VERSION = "rewrite-prompts/1"
MAX_SPATIAL_FACTS = 8


class TemplatePool(BaseModel):
    """Instruction templates for one task family and relation."""

    templates: list[str] = Field(description="sentences with exactly one {pick} and one {place} placeholder")


class AssetPool(BaseModel):
    """Noun phrases for one asset."""

    appearance: list[str] = Field(description="noun phrases naming the object by colour, size, material")
    semantic: list[str] = Field(description="noun phrases naming the object by category or use")


def response_format(model: type[BaseModel], name: str) -> dict[str, Any]:
    """A strict `json_schema` response format generated from a pydantic model."""
    schema = model.model_json_schema()
    schema["additionalProperties"] = False
    schema["required"] = sorted(schema.get("properties", {}))
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def _object_card(obj: ObjectFact) -> dict[str, Any]:
    return {
        "id": obj.uid,
        "name": display_name(obj.name),
        "role": obj.role,
        "category": obj.category,
        "color": obj.color,
        "size": obj.size,
        "attributes": list(obj.attributes),
        "allowed_terms": sorted(reference_terms(obj)),
    }


SYSTEM_EPISODE = (
    "You rewrite instructions for a robot arm. Given the facts of a tabletop scene, return JSON with three "
    "rewrites of the instruction, each one imperative sentence of at most {max_words} words: "
    "'attr' refers to the objects by appearance (colour, size, material), "
    "'semantic' by category or use, 'spatial' by position relative to other objects (use only the given "
    "spatial facts; left and right are from the robot's point of view). Keep the task identical: the same object "
    "to pick and the same container, with the same relation. Always name the object to pick and the container "
    "with one of their allowed_terms. Mention no object that is not in the scene. Use only the given facts."
)


def episode_body(scene: SceneFacts, model: str, *, temperature: float, max_tokens: int) -> dict[str, Any]:
    """The request for one episode's three rewrites (structured output: `Rewrites`)."""
    picks, places = scene.by_role("pick"), scene.by_role("place")
    spatial_facts = [f"the {p}" for o in picks + places for p in spatial_phrases(o, scene)][:MAX_SPATIAL_FACTS]
    facts = {
        "instruction": scene.base_instruction,
        "relation": scene.relation,
        "objects": [_object_card(o) for o in sorted(scene.objects, key=lambda o: o.uid)],
        "spatial_facts": spatial_facts,
    }
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_EPISODE.format(max_words=min(MAX_WORDS, 30))},
            {"role": "user", "content": json.dumps(facts, sort_keys=True, ensure_ascii=False)},
        ],
        "response_format": response_format(Rewrites, "rewrites"),
        "temperature": temperature,
        "max_tokens": max_tokens,
    }


SYSTEM_TEMPLATES = (
    "You write instruction templates for a robot arm. Return JSON with a list 'templates' of {n} varied English "
    "imperative sentences for this task: pick up an object and put it {relation_words} a container. Each template "
    "contains the placeholder {{pick}} exactly once and {{place}} exactly once, each preceded by 'the'; the "
    "placeholders stand for noun phrases such as 'red mug' and 'blue bowl'. Use no other braces and name no "
    "other object. At most 20 words each."
)


def family_body(task_family: str, relation: str, model: str, *, n: int, temperature: float) -> dict[str, Any]:
    """The request for a task family's template pool (structured output: `TemplatePool`)."""
    words = "in or into" if relation == "in" else "on or onto"
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_TEMPLATES.format(n=n, relation_words=words)},
            {"role": "user", "content": json.dumps({"task_family": task_family, "relation": relation})},
        ],
        "response_format": response_format(TemplatePool, "template_pool"),
        "temperature": temperature,
        "max_tokens": 60 * n,
    }


SYSTEM_ASSET = (
    "You describe one kind of object for a robot's instructions. Return JSON with two lists of {n} short noun "
    "phrases each, without an article: 'appearance' names the object by colour, size, shape or material; "
    "'semantic' names it by category or use. Its colour and size change from scene to scene: write the "
    "placeholder {{color}} where the colour goes and {{size}} where the size goes (e.g. '{{color}} ceramic mug', "
    "'{{size}} {{color}} cup'), never a literal colour or size. Every phrase must contain one of the object's "
    "allowed_terms. Use only the given facts, mention no other object, at most 8 words each."
)


def asset_signature(obj: ObjectFact) -> str:
    """What makes an asset's description pools differ: name, category and attributes (not colour or size,
    which are placeholders in the pools)."""
    attrs = ",".join(sorted(a.lower().strip() for a in obj.attributes))
    return f"{display_name(obj.name)}|{display_name(obj.category)}|{attrs}"


def asset_body(obj: ObjectFact, model: str, *, n: int, temperature: float) -> dict[str, Any]:
    """The request for one asset's description pools (structured output: `AssetPool`)."""
    card = _object_card(obj)
    for key in ("id", "role", "color", "size"):
        card.pop(key)
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_ASSET.format(n=n)},
            {"role": "user", "content": json.dumps(card, sort_keys=True, ensure_ascii=False)},
        ],
        "response_format": response_format(AssetPool, "asset_pool"),
        "temperature": temperature,
        "max_tokens": 40 * n,
    }
