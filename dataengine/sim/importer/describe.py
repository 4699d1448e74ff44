"""Optional model descriptions of imported objects: name, category, colour and attributes from the thumbnail.

Offline (the default) an object keeps what its sidecar and file name say. With `describer="openai"` the importer
sends each object's thumbnail and its offline values to an OpenAI-compatible Chat Completions endpoint (GPT-4o-mini
by default; `OPENAI_BASE_URL` or `base_url` for vLLM / Ollama) through the rewriter's client path
(`dataengine.rewrite.llm`: retries, redaction, cost meter, reply cache) and asks for a structured JSON reply.
Every reply is validated (`check_description`); a rejected or missing one keeps the offline values, and the entry's
`source` says why. Values the sidecar sets stay as the user wrote them, and so do categories held out with
`unseen_categories`; a described category that would put seen and unseen objects in one category is undone.

Replies are cached by (mesh hash, model, prompt version, the offline values sent), not by the thumbnail's bytes,
so a rerun on another machine (another GL renderer) asks nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataengine.errors import InputError

DESCRIBERS: tuple[str, ...] = ("offline", "openai")
DESCRIBE_PROMPT_VERSION = "describe-objects/1"
DEFAULT_MODEL = "gpt-4o-mini"
FIELDS: tuple[str, ...] = ("name", "category", "color", "attributes")
MAX_NAME_WORDS, MAX_CATEGORY_WORDS, MAX_ATTRIBUTE_WORDS, MAX_ATTRIBUTES, MAX_CHARS = 4, 3, 2, 4, 40
_PHRASE = re.compile(r"^[a-z][a-z0-9' -]*$")
_COLOR_ALIASES = {"gray": "grey"}
REJECT_REASONS: tuple[str, ...] = (
    "malformed_json", "bad_schema", "bad_name", "name_has_color", "bad_category", "unknown_color", "bad_attributes",
)  # fmt: skip


class ObjectDescription(BaseModel):
    """The reply's schema (structured output)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="what the object is, a short noun phrase without colour, e.g. 'soup can'")
    category: str = Field(description="a broad category, one to three words, e.g. 'food', 'kitchenware', 'toy'")
    color: str = Field(description="its main colour: one of the allowed colour names")
    attributes: list[str] = Field(description="up to four one- or two-word attributes: material, shape, use")


SYSTEM = (
    "You label objects for a robot's tabletop simulator. You see a rendering of one object and the name, category "
    "and colour guessed from its file name and texture. Return JSON: 'name', a short noun phrase of at most "
    f"{MAX_NAME_WORDS} words saying what the object is, without its colour; 'category', a broad category of at most "
    f"{MAX_CATEGORY_WORDS} words; 'color', its main colour, exactly one of the allowed colours; 'attributes', up to "
    f"{MAX_ATTRIBUTES} attributes of one or two words each (material, shape, use), no colours. Lowercase English, "
    "no articles. Keep the guessed values when the picture agrees with them."
)


@dataclass
class DescribeOptions:
    """How to describe imported objects; `api_key` is only passed to the client (None: OPENAI_API_KEY)."""

    describer: str = "offline"
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    cache_dir: str | os.PathLike[str] | None = None
    use_cache: bool = True
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 4
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        if self.describer not in DESCRIBERS:
            raise InputError(f"unknown describer {self.describer!r}; valid: {', '.join(DESCRIBERS)}")


def _allowed_colors() -> list[str]:
    from dataengine.sim.importer.write import COLOR_NAMES

    return sorted(COLOR_NAMES)


def offline_values(entry: dict) -> dict[str, Any]:
    return {"name": entry["name"], "category": entry["category"], "color": entry["color"],
            "attributes": list(entry.get("attributes", []))}  # fmt: skip


def description_body(entry: dict, png: bytes, model: str) -> dict[str, Any]:
    """The request for one object: its offline values and allowed colours as JSON text, its thumbnail inline."""
    facts = {**offline_values(entry), "allowed_colors": _allowed_colors(), "size": entry.get("size")}
    image = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    from dataengine.rewrite.prompts import response_format

    return {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": [
                {"type": "text", "text": json.dumps(facts, sort_keys=True, ensure_ascii=False)},
                {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
            ]},
        ],
        "response_format": response_format(ObjectDescription, "object_description"),
        "temperature": 0.0,
        "max_tokens": 150,
    }  # fmt: skip


def cache_key(entry: dict, model: str) -> str:
    """(mesh hash, model, prompt version, the offline values sent): the thumbnail is a function of the mesh."""
    data = {"mesh": entry["source"]["sha256"], "model": model, "prompt": DESCRIBE_PROMPT_VERSION,
            "facts": offline_values(entry)}  # fmt: skip
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _phrase(text: str, max_words: int) -> str | None:
    """The text lowercased with single spaces, if it is a short phrase of plain words; else None."""
    clean = " ".join(str(text).lower().split())
    if not clean or len(clean) > MAX_CHARS or len(clean.split()) > max_words or not _PHRASE.match(clean):
        return None
    return clean


def check_description(content: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the cleaned values, None) for an acceptable reply, else (None, snake_case reason)."""
    from dataengine.rewrite.lexicon import COLORS

    try:
        raw = json.loads(content)
    except (json.JSONDecodeError, TypeError):
        return None, "malformed_json"
    try:
        reply = ObjectDescription.model_validate(raw)
    except ValidationError:
        return None, "bad_schema"
    name = _phrase(reply.name, MAX_NAME_WORDS)
    if name is None:
        return None, "bad_name"
    if set(name.split()) & COLORS:
        return None, "name_has_color"
    category = _phrase(reply.category, MAX_CATEGORY_WORDS)
    if category is None:
        return None, "bad_category"
    color = " ".join(reply.color.lower().split())
    color = _COLOR_ALIASES.get(color, color)
    if color not in _allowed_colors():
        return None, "unknown_color"
    attributes = [_phrase(a, MAX_ATTRIBUTE_WORDS) for a in reply.attributes]
    if len(attributes) > MAX_ATTRIBUTES or None in attributes or set(attributes) & COLORS:
        return None, "bad_attributes"
    return {"name": name, "category": category, "color": color, "attributes": list(dict.fromkeys(attributes))}, None


def _kept_fields(result: dict, unseen_categories: list[str]) -> set[str]:
    """Fields the model may not change: those the sidecar set, and a held-out category."""
    kept = set(result.get("given", []))
    if result["entry"]["category"] in unseen_categories:
        kept.add("category")
    return kept


def _undo_split_leaks(entries: list[dict], offline: dict[str, dict], counts: Counter) -> None:
    """Give back the offline category to described objects whose new category mixes seen and unseen objects
    (until none does: the offline categories mixed none, `check_category_splits`)."""
    from dataengine.sim.assets import split_category_leaks

    while True:
        leaking = set(split_category_leaks((e["source"]["path"], e["category"], e["split"]) for e in entries))
        moved = [e for e in entries
                 if e["category"] in leaking and e["category"] != offline[e["source"]["path"]]["category"]]  # fmt: skip
        if not moved:
            return
        for entry in moved:
            entry["category"] = offline[entry["source"]["path"]]["category"]
            entry["source"]["description_note"] = "category_split_conflict"
            counts["category_split_conflict"] += 1


class ObjectDescriber:
    """Describes imported catalog entries through the rewriter's OpenAI client path."""

    def __init__(self, options: DescribeOptions) -> None:
        from dataengine.rewrite.cache import ResponseCache, default_cache_dir
        from dataengine.rewrite.cost import UsageMeter, load_price_table, price_for
        from dataengine.rewrite.llm import ChatRunner, LazyClient, make_client

        self.options = options
        self.base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or None
        cache_dir = Path(options.cache_dir) if options.cache_dir else default_cache_dir().parent / "describe"
        self.meter = UsageMeter(price_for(options.model, load_price_table()), options.max_cost_usd)

        def client() -> Any:
            return make_client(api_key=options.api_key, base_url=self.base_url, timeout_s=options.timeout_s,
                               max_retries=options.max_retries)  # fmt: skip

        cache = ResponseCache(cache_dir) if options.use_cache else None
        self.runner = ChatRunner(LazyClient(client), cache=cache, meter=self.meter, concurrency=options.concurrency)

    def describe(self, results: list[dict], catalog_dir: Path, unseen_categories: list[str]) -> dict[str, Any]:
        """Rewrite the entries of `results` (the import's ok results) in place; returns the report part."""
        from dataengine.rewrite.llm import public_url

        counts: Counter[str] = Counter()
        who = f"{self.options.describer}/{self.options.model} {DESCRIBE_PROMPT_VERSION}"
        todo, bodies, keys = [], [], []
        for result in results:
            entry = result["entry"]
            thumbnail = entry.get("thumbnail")
            if not thumbnail or not (catalog_dir / thumbnail).is_file():
                entry["source"]["description_note"] = "no_thumbnail"
                counts["no_thumbnail"] += 1
                continue
            png = (catalog_dir / thumbnail).read_bytes()
            todo.append(result)
            bodies.append(description_body(entry, png, self.options.model))
            keys.append(cache_key(entry, self.options.model))
        replies = self.runner.send_all(bodies, keys) if bodies else []
        offline = {r["entry"]["source"]["path"]: offline_values(r["entry"]) for r in results}
        for result, reply in zip(todo, replies, strict=True):
            entry = result["entry"]
            if reply.content is None:
                values, reason = None, f"request_failed_{reply.reason}"
            else:
                values, reason = check_description(reply.content)
                reason = reason and f"rejected_{reason}"
            if values is None:
                entry["source"]["description_note"] = reason
                counts[reason] += 1
                continue
            kept = _kept_fields(result, unseen_categories)
            entry.update({k: v for k, v in values.items() if k not in kept})
            entry["source"]["described_by"] = who
            counts["described"] += 1
        _undo_split_leaks([r["entry"] for r in results], offline, counts)
        return {
            "describer": self.options.describer,
            "model": self.options.model,
            "base_url": public_url(self.base_url),
            "prompt": DESCRIBE_PROMPT_VERSION,
            "counts": dict(sorted(counts.items())),
            **self.meter.summary(),
        }


def describe_results(results: list[dict], catalog_dir: Path, options: DescribeOptions | None,
                     unseen_categories: list[str]) -> dict[str, Any]:  # fmt: skip
    """Describe the ok results' entries in place with `options.describer`; {"describer": "offline"} offline."""
    if options is None or options.describer == "offline":
        return {"describer": "offline"}
    return ObjectDescriber(options).describe(results, catalog_dir, unseen_categories)
