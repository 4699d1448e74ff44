"""Words the rewriters and the validator share: synonym sets, object nouns, colours, materials, fixtures.

One home for vocabulary. The offline rewriter draws synonyms from here; the validator uses `OBJECT_NOUNS` (plus any
catalog names the caller passes) to spot a rewrite that names an object the scene does not contain.
"""

from __future__ import annotations

import re

# Synonyms a rewrite may use for an object name (the name itself always counts). Keep them unambiguous, and
# never let a synonym add a fact ('wicker basket' would claim a material the scene does not state).
NAME_SYNONYMS: dict[str, tuple[str, ...]] = {
    "mug": ("cup",),
    "cup": ("mug",),
    "bowl": ("dish",),
    "plate": ("dish",),
    "tray": (),
    "basket": (),
    "box": ("carton",),
    "bin": (),
    "bottle": ("flask",),
    "can": ("tin",),
    "soda can": ("can", "tin"),
    "jar": ("pot",),
    "sponge": ("scrubber",),
    "block": ("cube",),
    "cube": ("block",),
    "ball": ("sphere",),
    "tennis ball": ("ball",),
    "rubber duck": ("duck", "toy duck"),
    "toy car": ("car",),
    "marker": ("pen",),
    "pen": ("marker",),
    "scissors": ("shears",),
    "spoon": ("teaspoon",),
    "remote": ("remote control",),
    "phone": ("cell phone", "smartphone"),
    "banana": (),
    "apple": (),
    "lemon": (),
    "orange": (),
    "cylinder": ("tube",),
    "canister": ("tin",),
    "dice": ("die",),
    "eraser": (),
    "tape": ("roll of tape",),
    "brush": (),
}

# How a category reads inside a sentence ("the piece of fruit"); default: the category itself ("toy block").
CATEGORY_PHRASES: dict[str, str] = {
    "fruit": "piece of fruit",
    "vegetable": "vegetable",
    "toy": "toy",
    "tool": "tool",
    "kitchenware": "kitchen item",
    "tableware": "piece of tableware",
    "container": "container",
    "stationery": "piece of stationery",
    "office": "office item",
    "food": "food item",
    "drink": "drink",
    "electronics": "gadget",
    "cleaning": "cleaning item",
    "sports": "sports item",
    "shape": "shape",
    "block": "block",
    "hardware": "piece of hardware",
    "clothing": "piece of clothing",
    "furniture": "piece of furniture",
    "jewelry": "piece of jewelry",
    "equipment": "piece of equipment",
}


# Scene parts that are always present and may be named freely.
FIXTURE_WORDS: frozenset[str] = frozenset(
    {"table", "tabletop", "robot", "gripper", "arm", "hand", "surface", "camera", "counter", "workspace"}
)

COLORS: frozenset[str] = frozenset(
    {
        "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey",
        "gray", "cyan", "magenta", "beige", "teal", "navy", "silver", "gold", "golden", "violet", "tan",
    }
)  # fmt: skip

MATERIALS: frozenset[str] = frozenset(
    {
        "ceramic", "plastic", "metal", "metallic", "wooden", "glass", "rubber", "paper", "cardboard",
        "wicker", "steel", "aluminium", "aluminum", "cotton", "foam", "porcelain", "clay", "stone", "fabric",
    }
)  # fmt: skip

# Nouns that name graspable objects or containers. A rewrite naming one of these that is not in the scene is
# rejected (`names_unknown_object`). Callers add their catalog names via `vocabulary=`.
_NOUN_CANDIDATES: frozenset[str] = frozenset(
    {
        *NAME_SYNONYMS,
        *(s for syns in NAME_SYNONYMS.values() for s in syns),
        "knife", "fork", "chopsticks", "glass", "wine glass", "teapot", "kettle", "pan", "pot", "lid",
        "spatula", "ladle", "whisk", "cutting board", "napkin", "towel", "cloth", "bag", "backpack",
        "shoe", "hat", "book", "notebook", "laptop", "keyboard", "mouse", "stapler", "ruler", "pencil",
        "crayon", "glue", "battery", "screwdriver", "hammer", "wrench", "pliers", "drill", "nail", "screw",
        "bolt", "nut", "key", "wallet", "watch", "glasses", "toothbrush", "toothpaste", "soap", "shampoo",
        "carrot", "potato", "tomato", "onion", "pepper", "cucumber", "corn", "broccoli", "eggplant",
        "strawberry", "grape", "pear", "peach", "plum", "kiwi", "mango", "pineapple", "watermelon", "lime",
        "bread", "cookie", "cake", "donut", "egg", "cheese", "sandwich", "pizza", "candy", "chocolate",
        "doll", "teddy bear", "toy", "lego", "puzzle", "frisbee", "baseball", "football", "basketball",
        "golf ball", "bucket", "crate", "drawer", "shelf", "cabinet", "vase", "flowerpot", "candle",
        "lamp", "clock", "sock", "glove", "bottle cap", "cork", "coin", "card", "envelope", "paper",
        "cereal box", "milk carton", "juice box", "ketchup", "mustard", "salt shaker", "pepper shaker",
    }
)  # fmt: skip

# Words that are object nouns but also common verbs, colours, materials or categories ("Can you...", "orange mug").
AMBIGUOUS_WORDS: frozenset[str] = frozenset({"can", "toy", "key", "watch", "glass", "orange", "paper", "block"})
OBJECT_NOUNS: frozenset[str] = _NOUN_CANDIDATES - AMBIGUOUS_WORDS - COLORS - MATERIALS - FIXTURE_WORDS
NOUN_WORDS: frozenset[str] = _NOUN_CANDIDATES  # every noun, ambiguous ones included

USE_PREFIXES: tuple[str, ...] = ("used for ", "used to ", "for ", "good for ", "meant for ", "made for ")

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def display_name(name: str) -> str:
    """A catalog name as words: 'tennis_ball' -> 'tennis ball'."""
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def words(text: str) -> list[str]:
    """Lower-case word tokens of a text."""
    return _WORD.findall(text.lower())


def is_use_phrase(attribute: str) -> bool:
    """True for attributes that describe a use ('used for drinking'), False for appearance ('ceramic')."""
    low = attribute.lower().strip()
    return low.startswith(USE_PREFIXES)


def synonyms(name: str) -> tuple[str, ...]:
    """The name followed by its synonyms, all as display words."""
    base = display_name(name)
    return (base, *NAME_SYNONYMS.get(base, ()))


def category_phrase(category: str) -> str:
    """How a category reads after 'the': 'fruit' -> 'piece of fruit', 'toy block' -> 'toy block'."""
    cat = display_name(category)
    return CATEGORY_PHRASES.get(cat, cat)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word, case-insensitive match of `phrase` in `text`, also matching a simple plural."""
    tokens = words(phrase)
    if not tokens:
        return False
    pattern = r"\b" + r"\s+".join(re.escape(t) for t in tokens) + r"(?:s|es)?\b"
    return re.search(pattern, text.lower()) is not None
