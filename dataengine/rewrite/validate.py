"""Checks every rewrite against the scene; a rejected rewrite gets a snake_case reason (also a stat key).

Rules: not empty, not too long, no unfilled `{slot}`, names the pick object and the place object (by name,
synonym, category or use), and names no object noun that no scene object answers to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dataengine.rewrite.base import REWRITE_KINDS, ObjectFact, Rewrites, SceneFacts
from dataengine.rewrite.lexicon import (
    AMBIGUOUS_WORDS,
    COLORS,
    FIXTURE_WORDS,
    MATERIALS,
    NOUN_WORDS,
    OBJECT_NOUNS,
    category_phrase,
    contains_phrase,
    display_name,
    is_use_phrase,
    synonyms,
    words,
)

MAX_CHARS = 200
MAX_WORDS = 40
MAX_PHRASE_CHARS = 80
_REPEATED_WORD = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)  # 'the basket basket'

REJECT_REASONS: tuple[str, ...] = (
    "empty",
    "too_long",
    "unfilled_placeholder",
    "repeated_word",
    "drops_pick_object",
    "drops_place_object",
    "names_unknown_object",
    "drops_object",
)


def reference_terms(obj: ObjectFact) -> set[str]:
    """Phrases that refer to `obj`: name, synonyms, head noun, category, category phrase, use phrases."""
    name = display_name(obj.name)
    terms = set(synonyms(name))
    name_words = name.split()
    if name_words:
        terms.add(name_words[-1])
        terms.update(w for w in name_words[:-1] if w in NOUN_WORDS)  # 'tape roll' also answers to 'tape'
    if obj.category:
        terms.add(display_name(obj.category))
        terms.add(category_phrase(obj.category))
    terms.update(a.lower().strip() for a in obj.attributes if is_use_phrase(a))
    return {t for t in terms if t}


def build_vocabulary(extra: Iterable[str] = ()) -> frozenset[str]:
    """Object nouns a rewrite must not use unless the scene holds such an object: built-ins plus `extra`."""
    added = set()
    for name in extra:
        added.update(synonyms(name))
    vocab = OBJECT_NOUNS | added
    return frozenset(v for v in vocab if v not in AMBIGUOUS_WORDS | COLORS | MATERIALS | FIXTURE_WORDS)


DEFAULT_VOCABULARY = build_vocabulary()


def _strip_terms(text: str, terms: Iterable[str]) -> str:
    """Blank out every occurrence of the scene's own terms (longest first) so their words are not re-checked."""
    low = " " + " ".join(words(text)) + " "
    for term in sorted(terms, key=len, reverse=True):
        tokens = words(term)
        if tokens:
            pattern = r"\b" + r"\s+".join(re.escape(t) for t in tokens) + r"(?:s|es)?\b"
            low = re.sub(pattern, " | ", low)
    return low


def _names_unknown_noun(remainder: str, vocabulary: frozenset[str]) -> bool:
    """True if any 1- to 3-word run of the remainder (or its singular) is a vocabulary noun."""
    for chunk in remainder.split("|"):
        tokens = chunk.split()
        for n in (1, 2, 3):
            for i in range(len(tokens) - n + 1):
                gram = " ".join(tokens[i : i + n])
                if gram in vocabulary or any(f in vocabulary for f in _singular_forms(gram)):
                    return True
    return False


def _singular_forms(gram: str) -> tuple[str, ...]:
    """'boxes' -> ('boxe', 'box'); 'mugs' -> ('mug',); other words -> ()."""
    if gram.endswith("es"):
        return gram[:-1], gram[:-2]
    return (gram[:-1],) if gram.endswith("s") else ()


def check_text(text: object, scene: SceneFacts, vocabulary: frozenset[str] = DEFAULT_VOCABULARY) -> str | None:
    """None if `text` is an acceptable rewrite of the scene's task, else the reason it is not."""
    if not isinstance(text, str) or not text.strip():
        return "empty"
    if len(text) > MAX_CHARS or len(text.split()) > MAX_WORDS:
        return "too_long"
    if "{" in text or "}" in text:
        return "unfilled_placeholder"
    if _REPEATED_WORD.search(text):
        return "repeated_word"
    picks, places = scene.by_role("pick"), scene.by_role("place")
    if picks and not any(contains_phrase(text, t) for o in picks for t in reference_terms(o)):
        return "drops_pick_object"
    if places and not any(contains_phrase(text, t) for o in places for t in reference_terms(o)):
        return "drops_place_object"
    scene_terms = set().union(*(reference_terms(o) for o in scene.objects)) if scene.objects else set()
    if _names_unknown_noun(_strip_terms(text, scene_terms), vocabulary):
        return "names_unknown_object"
    return None


def check_rewrites(
    rewrites: Rewrites, scene: SceneFacts, vocabulary: frozenset[str] = DEFAULT_VOCABULARY
) -> dict[str, str]:
    """The rejected kinds of one `Rewrites` with their reasons ({} when all three are fine)."""
    problems = {}
    for kind in REWRITE_KINDS:
        reason = check_text(getattr(rewrites, kind), scene, vocabulary)
        if reason is not None:
            problems[kind] = reason
    return problems


def check_phrase(text: object, obj: ObjectFact, vocabulary: frozenset[str] = DEFAULT_VOCABULARY) -> str | None:
    """None if `text` is a usable noun phrase for `obj` (model-written pools), else the reason it is not."""
    if not isinstance(text, str) or not text.strip():
        return "empty"
    if len(text) > MAX_PHRASE_CHARS:
        return "too_long"
    if "{" in text or "}" in text:
        return "unfilled_placeholder"
    if _REPEATED_WORD.search(text):
        return "repeated_word"
    terms = reference_terms(obj)
    if not any(contains_phrase(text, t) for t in terms):
        return "drops_object"
    if _names_unknown_noun(_strip_terms(text, terms), vocabulary):
        return "names_unknown_object"
    return None
