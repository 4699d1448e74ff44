"""The offline rewriter: deterministic paraphrases from templates and synonym sets, using only the scene facts.

Same (seed, episode key, facts) give the same three rewrites on any machine. The filling machinery
(`compose_rewrites`) is shared with the OpenAI `templates` mode, which swaps in model-written pools.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

from dataengine.rewrite.base import REWRITE_KINDS, ObjectFact, RewriteKind, Rewrites, SceneFacts
from dataengine.rewrite.describe import appearance_phrases, noun_choices, semantic_phrases
from dataengine.rewrite.spatial import spatial_phrases
from dataengine.rewrite.templates import episode_rng, family_templates, fill, split_pool
from dataengine.rewrite.validate import build_vocabulary, check_text

MAX_DRAWS = 8


class PhraseSource(Protocol):
    """Where templates and object phrases come from (built-in pools, or pools a model wrote)."""

    def templates(self, scene: SceneFacts, kind: RewriteKind) -> list[str]: ...

    def phrases(self, obj: ObjectFact, scene: SceneFacts, kind: RewriteKind) -> list[str]: ...

    def producer(self, scene: SceneFacts, kind: RewriteKind) -> tuple[str, str | None]:
        """Which rewriter's pools fill `kind` for this scene, and why not the model's when they are built-in."""
        ...


class BuiltinPhrases:
    """Built-in templates; phrases derived from the object's facts and the scene geometry."""

    def templates(self, scene: SceneFacts, kind: RewriteKind) -> list[str]:
        return family_templates(scene.task_family, scene.relation)

    def producer(self, scene: SceneFacts, kind: RewriteKind) -> tuple[str, str | None]:
        return "offline", None

    def phrases(self, obj: ObjectFact, scene: SceneFacts, kind: RewriteKind) -> list[str]:
        if kind == "attr":
            return appearance_phrases(obj, scene)
        if kind == "semantic":
            return semantic_phrases(obj, scene)
        if obj.role == "place":
            return spatial_phrases(obj, scene, with_plain=True)
        return spatial_phrases(obj, scene)


def _plain(scene: SceneFacts, pick: ObjectFact, place: ObjectFact) -> str:
    """The last-resort rewrite: the first built-in template with bare names (always valid)."""
    template = family_templates(scene.task_family, scene.relation)[0]
    return fill(template, noun_choices(pick, scene)[0], noun_choices(place, scene)[0])


def compose_rewrites(
    scene: SceneFacts,
    source: PhraseSource,
    *,
    seed: int,
    vocabulary: frozenset[str],
    unseen_fraction: float,
    stats: Counter[str] | None = None,
) -> Rewrites:
    """Fill one template per kind with one pick phrase and one place phrase, drawn per (seed, episode, kind).

    Draws that fail validation are redrawn (up to MAX_DRAWS); then the plain rewrite is used and counted.
    Scenes without exactly one pick and one place object keep their base instruction for every kind.
    """
    picks, places = scene.by_role("pick"), scene.by_role("place")
    if len(picks) != 1 or len(places) != 1:
        if stats is not None:
            stats["offline_kept_base_instruction"] += 1
        base = scene.base_instruction
        kept = Rewrites(attr=base, semantic=base, spatial=base)
        for kind in REWRITE_KINDS:
            kept.mark(kind, "offline", "not_one_pick_one_place")
        return kept
    pick, place = picks[0], places[0]
    out: dict[str, str] = {}
    marks: dict[str, tuple[str, str | None]] = {}
    for kind in REWRITE_KINDS:
        rng = episode_rng(seed, scene.episode_key, kind)
        templates = split_pool(source.templates(scene, kind), scene.split, unseen_fraction)
        pick_pool = split_pool(source.phrases(pick, scene, kind), scene.split, unseen_fraction)
        place_pool = split_pool(source.phrases(place, scene, kind), scene.split, unseen_fraction)
        text = None
        if templates and pick_pool and place_pool:
            for _ in range(MAX_DRAWS):
                candidate = fill(rng.choice(templates), rng.choice(pick_pool), rng.choice(place_pool))
                if check_text(candidate, scene, vocabulary) is None:
                    text = candidate
                    break
        marks[kind] = source.producer(scene, kind)
        if text is None:
            text = _plain(scene, pick, place)
            if stats is not None:
                stats[f"offline_plain_{kind}"] += 1
            if marks[kind][0] != "offline":
                marks[kind] = ("offline", "no_valid_draw")
        out[kind] = text
    rewrites = Rewrites(**out)
    for kind, (producer, reason) in marks.items():
        rewrites.mark(kind, producer, reason)
    return rewrites


class OfflineRewriter:
    """Deterministic template rewriter; needs no network, no key and no model."""

    name = "offline"

    def __init__(
        self,
        seed: int = 0,
        vocabulary: Iterable[str] = (),
        unseen_fraction: float = 0.25,
        source: PhraseSource | None = None,
    ) -> None:
        self.seed = seed
        self.vocabulary = build_vocabulary(vocabulary)
        self.unseen_fraction = unseen_fraction
        self.source: PhraseSource = source or BuiltinPhrases()
        self.stats: Counter[str] = Counter()

    def rewrite_one(self, scene: SceneFacts) -> Rewrites:
        return compose_rewrites(
            scene,
            self.source,
            seed=self.seed,
            vocabulary=self.vocabulary,
            unseen_fraction=self.unseen_fraction,
            stats=self.stats,
        )

    def rewrite(self, scenes: Sequence[SceneFacts]) -> list[Rewrites]:
        return [self.rewrite_one(scene) for scene in scenes]
