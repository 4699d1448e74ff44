"""Token and cost accounting for model calls: a price table, a pre-run estimate and a thread-safe meter.

Prices are US dollars per million tokens. The built-in table can be replaced or extended with a JSON or YAML file
(`{model: {input: ..., output: ..., cached_input: ...}}`). A dated snapshot name ('gpt-4o-mini-2024-07-18')
uses the longest matching prefix. Batch requests cost `batch_discount` of the list price (OpenAI: half).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataengine.errors import DataEngineError, InputError

# Per 1M tokens, from OpenAI's pricing page (see docs/rewrite.md); check before relying on them.
DEFAULT_PRICES_PER_MTOK: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60},
    "gpt-4o": {"input": 2.50, "cached_input": 1.25, "output": 10.00},
    "gpt-4.1-mini": {"input": 0.40, "cached_input": 0.10, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "cached_input": 0.025, "output": 0.40},
}
BATCH_DISCOUNT = 0.5
CHARS_PER_TOKEN_LOWER_BOUND = 3.0  # English JSON prompts run about 4 chars a token; 3 keeps estimates high
TOKENS_PER_MESSAGE = 8


class CostLimitError(DataEngineError):
    """The estimated or spent cost would pass the --max-cost limit."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cached_input: float | None = None

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, batch: bool = False):
        cached = min(cached_tokens, prompt_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        usd = ((prompt_tokens - cached) * self.input + cached * cached_rate + completion_tokens * self.output) / 1e6
        return usd * (BATCH_DISCOUNT if batch else 1.0)


def load_price_table(path: str | Path | None = None) -> dict[str, Price]:
    """The built-in prices, updated with the models in `path` (JSON or YAML) if given."""
    table = {model: Price(**p) for model, p in DEFAULT_PRICES_PER_MTOK.items()}
    if path is None:
        return table
    text = Path(path).read_text(encoding="utf-8")
    try:
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
        table.update({model: Price(**dict(p)) for model, p in raw.items()})
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(
            f"price table {path} is not a mapping of model -> {{input, output, cached_input}} "
            f"(US dollars per million tokens): {exc}"
        ) from None
    return table


def price_for(model: str, table: dict[str, Price]) -> Price | None:
    """The model's price, by exact name or longest matching prefix; None when unknown."""
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """An upper-leaning estimate of a request's input tokens (messages and response schema), without a tokenizer."""
    chars = sum(len(json.dumps(m.get("content", ""), ensure_ascii=False)) for m in body.get("messages", []))
    chars += len(json.dumps(body.get("response_format", {}), ensure_ascii=False))
    return math.ceil(chars / CHARS_PER_TOKEN_LOWER_BOUND) + TOKENS_PER_MESSAGE * len(body.get("messages", []))


def estimate_cost_usd(bodies: list[dict[str, Any]], price: Price, batch: bool = False) -> float:
    """Upper bound of the cost of sending `bodies`: estimated input tokens plus each request's max_tokens."""
    prompt = sum(estimate_prompt_tokens(b) for b in bodies)
    completion = sum(int(b.get("max_tokens", 0)) for b in bodies)
    return price.cost_usd(prompt, completion, batch=batch)


@dataclass
class UsageMeter:
    """Counts requests, tokens and dollars across threads; can refuse work that would pass a budget."""

    price: Price | None
    max_cost_usd: float | None = None
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    reserved_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reserve(self, estimate_usd: float) -> bool:
        """Book an in-flight request's worst-case cost; False if that would pass the budget."""
        with self._lock:
            if self.max_cost_usd is not None and self.cost_usd + self.reserved_usd + estimate_usd > self.max_cost_usd:
                return False
            self.reserved_usd += estimate_usd
            return True

    def settle(self, estimate_usd: float, usage: dict[str, int] | None, batch: bool = False) -> None:
        """Replace a reservation by the real usage of the reply (None when the request failed)."""
        with self._lock:
            self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
            if usage is not None:
                self.add_locked(usage, batch)

    def add(self, usage: dict[str, int], batch: bool = False) -> None:
        with self._lock:
            self.add_locked(usage, batch)

    def add_locked(self, usage: dict[str, int], batch: bool) -> None:
        prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        cached = int(usage.get("cached_tokens", 0))
        self.requests += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cached_tokens += cached
        if self.price is not None:
            self.cost_usd += self.price.cost_usd(prompt, completion, cached, batch)

    def count_cache_hit(self) -> None:
        with self._lock:
            self.cache_hits += 1

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_tokens,
            "cost_usd": round(self.cost_usd, 6) if self.price is not None else None,
        }
