"""What an item's query is: a referring expression (a noun phrase) or a full instruction/question.

Converters set `query_kind` from what their source holds (RefCOCO's sentences are expressions, RoboPoint's and
ShareRobot's are instructions). Records written before the field existed, and sources that mix both (RoboRefIt),
use `guess_query_kind`: a text is an instruction when it opens with an imperative or first-person word, asks a
question, or holds more than one sentence; anything else is an expression.
"""

from __future__ import annotations

import re
from typing import Literal

QueryKind = Literal["expression", "instruction"]
QUERY_KINDS: tuple[str, ...] = ("expression", "instruction")

# Words that open an instruction, never a noun phrase. Words that also name things ("hand", "can", "stack",
# "slide") or describe them ("open") are left out, as are question words: a question ends with "?".
_OPENER_WORDS = """pick place put move grab grasp take bring give push pull lift reach press rotate pour wipe fold
    insert remove fetch knock sweep point locate find identify mark select detect draw predict show tell help get
    please i i'd i'm i'll let's could would"""
INSTRUCTION_OPENERS = frozenset(_OPENER_WORDS.split())
_SENTENCE_BREAK = re.compile(r"[.!?]\s+[A-Z]")
_FIRST_WORD = re.compile(r"[A-Za-z']+")


def guess_query_kind(text: str) -> QueryKind:
    """Return "instruction" for imperative, first-person, interrogative or multi-sentence text, else "expression"."""
    text = text.strip()
    first = _FIRST_WORD.match(text)
    if first and first.group(0).lower() in INSTRUCTION_OPENERS:
        return "instruction"
    if text.endswith("?") or _SENTENCE_BREAK.search(text):
        return "instruction"
    return "expression"


def query_kind_of(item: object) -> QueryKind:
    """The item's `query_kind`, or the guess from its query for records written before the field existed."""
    kind = getattr(item, "query_kind", None)
    return kind if kind is not None else guess_query_kind(item.query)
