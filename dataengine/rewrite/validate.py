"""Checks every rewrite against the scene; a rejected rewrite gets a snake_case reason (also a stat key).

Rules: not empty, not too long, no unfilled `{slot}`, names the pick object and the place object (by name,
synonym, category or use), and names no object noun that no scene object answers to. Then the structure: the
first of the two named before the placement words ("in", "into", "on", "onto", ...) is the pick object
(`swapped_roles` otherwise), the object after the last placement words is the place object (`swapped_roles` or
`wrong_destination`), those words match the scene's relation (`wrong_relation`: "on" for a basket the object
goes into), and every landmark of a spatial phrase ("next to the X", "left of the X") is a scene object
(`names_unknown_object`).
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
    "missing_relation",
    "wrong_relation",
    "swapped_roles",
    "wrong_destination",
)

# Placement words and the relation they express; "on top of" is placement, "in front of" is not.
_PLACEMENT: dict[tuple[str, ...], str] = {
    ("into",): "in", ("inside",): "in", ("in",): "in", ("within",): "in",
    ("onto",): "on", ("on", "top", "of"): "on", ("on",): "on", ("atop",): "on", ("upon",): "on",
}  # fmt: skip
_NOT_PLACEMENT_NEXT = {"front", "between", "the left", "the right", "the middle", "the back", "the side", "the edge",
                       "the corner", "the center", "the centre", "its left", "its right", "left", "right"}  # fmt: skip
# Spatial relations whose landmark must be a scene object (the words before the landmark's noun phrase).
_LANDMARK_WORDS: tuple[tuple[str, ...], ...] = (
    ("next", "to"), ("close", "to"), ("closest", "to"), ("nearest", "to"), ("near",), ("beside",), ("behind",),
    ("left", "of"), ("right", "of"), ("front", "of"), ("beyond",), ("between",),
)  # fmt: skip
_DETERMINERS = {"the", "a", "an", "that", "this", "those", "these", "its", "their", "one", "other", "some"}
# A landmark's noun phrase ends before these words; it must hold a scene object or a part of the scene.
_PHRASE_STOPS = {"in", "into", "inside", "on", "onto", "atop", "and", "then", "to", "of", "with", "from", "so",
                 "that", "which", "where", "while", "please", "for"}  # fmt: skip
_SCENE_PARTS = FIXTURE_WORDS | {"edge", "corner", "side", "center", "centre", "middle", "front", "back", "you", "me"}


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
    if len(picks) == 1 and len(places) == 1:
        return check_structure(text, scene)
    return None


def check_structure(text: str, scene: SceneFacts) -> str | None:
    """Roles, relation and spatial landmarks of a one-pick, one-place instruction (see the module docstring)."""
    tokens = words(text)
    spans = _mentions(tokens, scene)
    placements = [(i, n, rel) for i, n, rel in _placements(tokens) if any(start >= i + n for start, _, _ in spans)]
    if not placements:
        return "missing_relation"
    at, width, relation = placements[-1]
    before = [roles for start, end, roles in spans if end <= at and roles & {"pick", "place"}]
    if not before or "pick" not in before[0]:
        return "swapped_roles"
    destination = next(roles for start, _, roles in spans if start >= at + width)
    if "place" not in destination:
        return "swapped_roles" if "pick" in destination else "wrong_destination"
    if relation != scene.relation:
        return "wrong_relation"
    for end in _landmark_ends(tokens):
        stop = next((i for i in range(end, len(tokens)) if tokens[i] in _PHRASE_STOPS), len(tokens))
        landmark = range(end, stop)
        if not any(start in landmark for start, _, _ in spans) and not _SCENE_PARTS & set(tokens[end:stop]):
            return "names_unknown_object"
    return None


def _mentions(tokens: list[str], scene: SceneFacts) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, roles) of the mentions of scene objects in text order: the longest where mentions overlap,
    every role a span names when several objects answer to it (such a span fits either role)."""
    roles_by_span: dict[tuple[int, int], set[str]] = {}
    for obj in scene.objects:
        for term in reference_terms(obj):
            term_tokens = words(term)
            n = len(term_tokens)
            for i in range(len(tokens) - n + 1):
                window = tokens[i : i + n]
                if n and window[:-1] == term_tokens[:-1] and window[-1] in _forms(term_tokens[-1]):
                    roles_by_span.setdefault((i, i + n), set()).add(obj.role)
    kept: list[tuple[int, int, frozenset[str]]] = []
    for (start, end), roles in sorted(roles_by_span.items(), key=lambda kv: (kv[0][0], kv[0][0] - kv[0][1])):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end, frozenset(roles)))
    return kept


def _forms(word: str) -> tuple[str, str, str]:
    return word, word + "s", word + "es"


def _placements(tokens: list[str]) -> list[tuple[int, int, str]]:
    """(index, length, relation) of each placement phrase, spatial uses ('in front of', 'on the left') left out."""
    out = []
    i = 0
    while i < len(tokens):
        for phrase, relation in _PLACEMENT.items():
            n = len(phrase)
            if tuple(tokens[i : i + n]) == phrase:
                following = " ".join(tokens[i + n : i + n + 2])
                first = tokens[i + n] if i + n < len(tokens) else ""
                if first not in _NOT_PLACEMENT_NEXT and following not in _NOT_PLACEMENT_NEXT:
                    out.append((i, n, relation))
                i += n - 1
                break
        i += 1
    return out


def _landmark_ends(tokens: list[str]) -> list[int]:
    """Token index just after each spatial relation ('next to', 'left of', ...), determiners skipped."""
    ends = []
    for i in range(len(tokens)):
        for phrase in _LANDMARK_WORDS:
            n = len(phrase)
            if tuple(tokens[i : i + n]) == phrase:
                end = i + n
                while end < len(tokens) and tokens[end] in _DETERMINERS:
                    end += 1
                if end < len(tokens):
                    ends.append(end)
    return ends


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
