"""Grammar-constrained greedy decoding for the tiny model's grounding answers (`eval.constrained_decoding`).

A model trained for a few CPU minutes on a few dozen images memorizes its training answers (it answers them right)
but on a held-out image it often loses the answer's structure: "[56,70,56,70,140,132,..." never closes, so nothing
parses and the evaluation cannot say where it pointed. Constrained decoding (as guided decoding in vLLM or
llama.cpp grammars) only lets the model choose among the tokens the answer's grammar allows next; the coordinates
are still the model's own greedy choices. It applies to answer styles whose answers are bracketed integer lists
(`internvla-m1`: a box `[x1,y1,x2,y2]`, points and traces `[[x,y],[x,y],...]`), over the tiny tokenizer, where a
number is one token. The metrics say which decoding produced them (`grounding_decoding`).
"""

from __future__ import annotations

import torch

from dataengine.errors import InputError
from dataengine.train.tokenizer import EOS, NUMBER_BASE, VOCAB_SIZE

CONSTRAINED_STYLES = ("internvla-m1",)
_CLASS_TOKENS = {"[": [ord("[")], "]": [ord("]")], ",": [ord(",")], "E": [EOS]}
BOX = "[N,N,N,N]E"
PAIR = "[N,N]"


def check_style(style_name: str) -> None:
    if style_name not in CONSTRAINED_STYLES:
        raise InputError(
            f"eval.constrained_decoding supports the answer styles {list(CONSTRAINED_STYLES)} (bracketed integer "
            f"lists), not {style_name!r}: set it to false or use one of them"
        )


def token_class(token: int) -> str:
    """'N' for a number token, the character for '[', ']' and ',', 'E' for EOS, '?' otherwise."""
    if NUMBER_BASE <= token < VOCAB_SIZE:
        return "N"
    if token == EOS:
        return "E"
    return chr(token) if token in (ord("["), ord("]"), ord(",")) else "?"


def allowed_next(task: str, prefix: str, remaining: int) -> str:
    """The token classes the grammar of `task` allows after the classes in `prefix`, with `remaining` tokens left
    (points and traces close early enough to end inside the budget)."""
    if task == "box":
        return BOX[len(prefix)] if len(prefix) < len(BOX) else "E"
    if task not in ("point", "trace"):
        raise InputError(f"no answer grammar for task {task!r}")
    if prefix.endswith("]]"):
        return "E"
    if len(prefix) < 1 + len(PAIR):  # "[" then the first pair
        return ("[" + PAIR)[len(prefix)]
    done = len(prefix) - 1 - len(PAIR)  # tokens after the first pair: ",[N,N]" blocks, or the closing "]"
    position = done % (len(PAIR) + 1)
    if position == 0:
        return "]" if remaining < len(PAIR) + 3 else ",]"
    return ("," + PAIR)[position]


def class_mask(classes: str, vocab_size: int, device: torch.device) -> torch.Tensor:
    """(vocab,) bool: the tokens of the given classes."""
    mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    for c in classes:
        if c == "N":
            mask[NUMBER_BASE:VOCAB_SIZE] = True
        else:
            mask[_CLASS_TOKENS[c]] = True
    return mask


def constrain_logits(
    logits: torch.Tensor, tasks: list[str], generated: list[list[int]], remaining: int
) -> torch.Tensor:
    """Logits (B, vocab) with every token the grammar forbids after each row's generated tokens set to -inf."""
    out = logits.clone()
    for i, (task, tokens) in enumerate(zip(tasks, generated, strict=True)):
        prefix = "".join(token_class(t) for t in tokens)
        allowed = class_mask(allowed_next(task, prefix, remaining), logits.shape[-1], logits.device)
        out[i, ~allowed] = float("-inf")
    return out
