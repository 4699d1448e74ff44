"""The two spatial-prompting sentences appended to robot instructions during action post-training.

`SPATIAL_PROMPT_UPSTREAM` is the `CoT_prompt` of InternVLA-M1's co-training configs (the `{instruction}` slot is
filled in); `SPATIAL_PROMPT_PAPER` is the ST4VLA ablation's sentence, appended after the instruction.
"""

from __future__ import annotations

from typing import Literal

from dataengine.errors import InputError

SPATIAL_PROMPT_UPSTREAM = (
    "Your task is {instruction}. To identify the key objects for your task. "
    "Locate their bounding boxes in [x1,y1,x2,y2] format."
)
SPATIAL_PROMPT_PAPER = "Figure out how to execute it, then locate the key object needed."
SPATIAL_PROMPTS = {"upstream": SPATIAL_PROMPT_UPSTREAM, "paper": SPATIAL_PROMPT_PAPER}


def apply_spatial_prompt(instruction: str, variant: Literal["upstream", "paper"] = "upstream") -> str:
    """The instruction with a spatial prompt: "upstream" fills the config's template, "paper" appends the sentence
    as "<instruction>. <sentence>". Trailing whitespace and full stops of the instruction are dropped first."""
    text = instruction.strip().rstrip(".").rstrip()
    if not text:
        raise InputError("apply_spatial_prompt needs a non-empty instruction")
    if variant == "upstream":
        return SPATIAL_PROMPT_UPSTREAM.format(instruction=text)
    if variant == "paper":
        return f"{text}. {SPATIAL_PROMPT_PAPER}"
    raise InputError(f"unknown spatial prompt variant {variant!r}; valid: {list(SPATIAL_PROMPTS)}")
