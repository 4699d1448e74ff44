"""Model answer styles (render pixel targets as text, parse text back), question templates, spatial prompts."""

from dataengine.formats.base import (
    SPATIAL_TASKS,
    AnswerStyle,
    Target,
    UnsupportedTaskError,
    as_target,
    find_groups,
)
from dataengine.formats.prompts import (
    SPATIAL_PROMPT_PAPER,
    SPATIAL_PROMPT_UPSTREAM,
    SPATIAL_PROMPTS,
    apply_spatial_prompt,
)
from dataengine.formats.qa import render_item, render_record_item
from dataengine.formats.registry import STYLE_NAMES, STYLES, get_style, style_options
from dataengine.formats.templates import (
    TEMPLATES,
    check_templates,
    fill_template,
    load_templates,
    pick_template,
    stable_index,
)

__all__ = [
    "SPATIAL_PROMPTS",
    "SPATIAL_PROMPT_PAPER",
    "SPATIAL_PROMPT_UPSTREAM",
    "SPATIAL_TASKS",
    "STYLES",
    "STYLE_NAMES",
    "TEMPLATES",
    "AnswerStyle",
    "Target",
    "UnsupportedTaskError",
    "apply_spatial_prompt",
    "as_target",
    "check_templates",
    "fill_template",
    "find_groups",
    "get_style",
    "load_templates",
    "pick_template",
    "render_item",
    "render_record_item",
    "stable_index",
    "style_options",
]
