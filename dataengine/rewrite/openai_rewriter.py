"""The OpenAI-compatible rewriter: GPT-4o-mini by default, any Chat Completions server via OPENAI_BASE_URL.

Modes: `templates` (a few requests for template and phrase pools, then offline filling per episode) and
`per-episode` (one structured-output request per episode, synchronously or through the Batch API). Every reply is
validated; a rejected or missing rewrite is replaced by the offline rewrite of the same kind and counted by reason.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from dataengine.errors import RecipeError
from dataengine.rewrite.base import REWRITE_KINDS, Rewrites, SceneFacts
from dataengine.rewrite.batch import BatchRunner
from dataengine.rewrite.cache import ResponseCache, default_cache_dir, request_key
from dataengine.rewrite.cost import CostLimitError, UsageMeter, estimate_cost_usd, load_price_table, price_for
from dataengine.rewrite.llm import ChatResult, ChatRunner, LazyClient, make_client, public_url
from dataengine.rewrite.offline import OfflineRewriter, compose_rewrites
from dataengine.rewrite.pools import ModelPhrases, parse_reply
from dataengine.rewrite.prompts import PROMPT_SCHEMA_VERSION, asset_body, episode_body, family_body
from dataengine.rewrite.validate import check_rewrites

log = logging.getLogger(__name__)
Mode = Literal["templates", "per-episode"]
MODES: tuple[str, ...] = ("templates", "per-episode")
DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIRewriter:
    """Rewrites through an OpenAI-compatible Chat Completions endpoint, with cache, budget and offline fallback.

    Defaults can come from the environment, for callers that pass no options (e.g. `sim generate --rewriter
    openai`): OPENAI_API_KEY, OPENAI_BASE_URL, DATAENGINE_REWRITE_MODEL, DATAENGINE_REWRITE_MODE,
    DATAENGINE_CACHE_DIR.
    """

    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        mode: Mode | None = None,
        *,
        batch: bool = False,
        api_key: str | None = None,
        base_url: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        max_cost_usd: float | None = None,
        price_table: str | os.PathLike[str] | None = None,
        seed: int = 0,
        vocabulary: Iterable[str] = (),
        unseen_fraction: float = 0.25,
        temperature: float = 0.7,
        max_tokens: int = 256,
        n_templates: int = 24,
        n_phrases: int = 8,
        batch_state_path: str | os.PathLike[str] | None = None,
        batch_poll_s: float = 30.0,
        batch_max_wait_s: float | None = None,
        batch_max_lines: int = 50_000,
    ) -> None:
        mode = mode or os.environ.get("DATAENGINE_REWRITE_MODE") or "templates"  # type: ignore[assignment]
        if mode not in MODES:
            raise RecipeError(f"unknown rewrite mode {mode!r}; valid: {', '.join(MODES)}")
        if batch and mode != "per-episode":
            raise RecipeError("--batch applies to --mode per-episode (templates mode makes only a few requests)")
        self.model = model or os.environ.get("DATAENGINE_REWRITE_MODEL") or DEFAULT_MODEL
        self.mode: Mode = mode
        self.batch = batch
        self._api_key = api_key  # kept only to build the client; never logged or reported
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.timeout_s, self.max_retries = timeout_s, max_retries
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache = ResponseCache(self.cache_dir) if use_cache else None
        self.max_cost_usd = max_cost_usd
        self.price = price_for(self.model, load_price_table(price_table))
        self.meter = UsageMeter(self.price, max_cost_usd)
        self.concurrency = concurrency
        self.seed, self.temperature, self.max_tokens = seed, temperature, max_tokens
        self.n_templates, self.n_phrases = n_templates, n_phrases
        self.offline = OfflineRewriter(seed=seed, vocabulary=vocabulary, unseen_fraction=unseen_fraction)
        self.vocabulary = self.offline.vocabulary
        self.unseen_fraction = unseen_fraction
        self.batch_options = {"poll_s": batch_poll_s, "max_wait_s": batch_max_wait_s, "max_lines": batch_max_lines}
        self.batch_state_path = Path(batch_state_path) if batch_state_path else None
        self.stats: Counter[str] = Counter()
        self.estimated_cost_usd = 0.0
        self.pools = ModelPhrases()
        self._runner: ChatRunner | None = None
        self._batch_runner: BatchRunner | None = None

    # -- plumbing -------------------------------------------------------------------------------------------
    @property
    def runner(self) -> ChatRunner:
        """The request runner; the HTTP client is created on first use (a fully cached run needs none)."""
        if self._runner is None:
            client = LazyClient(
                lambda: make_client(api_key=self._api_key, base_url=self.base_url, timeout_s=self.timeout_s,
                                    max_retries=self.max_retries)
            )  # fmt: skip
            self._runner = ChatRunner(client, cache=self.cache, meter=self.meter, concurrency=self.concurrency)
        return self._runner

    def _is_cached(self, body: dict[str, Any]) -> bool:
        return self.cache is not None and self.cache.get(request_key(body, PROMPT_SCHEMA_VERSION)) is not None

    def check_budget(self, bodies: list[dict[str, Any]]) -> float:
        """Estimate the cost of the uncached requests; raise CostLimitError if it would pass max_cost_usd."""
        uncached = [b for b in bodies if not self._is_cached(b)]
        if not uncached:
            return 0.0
        if self.price is None:
            if self.max_cost_usd is not None:
                raise CostLimitError(
                    f"--max-cost was given but no price is known for model {self.model!r}; add it with "
                    "--price-table FILE ({model: {input: USD, output: USD}} per million tokens)"
                )
            return 0.0
        estimate = estimate_cost_usd(uncached, self.price, batch=self.batch)
        self.estimated_cost_usd += estimate
        if self.max_cost_usd is not None and self.meter.cost_usd + estimate > self.max_cost_usd:
            raise CostLimitError(
                f"estimated cost ${estimate:.6f} for {len(uncached)} uncached requests to {self.model} "
                f"(upper bound: input tokens estimated from prompt length, output at max_tokens) would pass "
                f"--max-cost ${self.max_cost_usd:.6f} (already spent ${self.meter.cost_usd:.6f}); "
                "raise the limit, use --mode templates, or --batch (half price)"
            )
        return estimate

    # -- the Rewriter protocol -------------------------------------------------------------------------------
    def rewrite(self, scenes: Sequence[SceneFacts]) -> list[Rewrites]:
        scenes = list(scenes)
        if not scenes:
            return []
        if self.mode == "templates":
            return self._rewrite_from_pools(scenes)
        return self._rewrite_per_episode(scenes)

    def _rewrite_from_pools(self, scenes: list[SceneFacts]) -> list[Rewrites]:
        families = self.pools.missing_families(scenes)
        assets = self.pools.missing_assets(scenes)
        opts = {"temperature": self.temperature}
        bodies = [family_body(f, r, self.model, n=self.n_templates, **opts) for f, r in families]
        bodies += [asset_body(obj, self.model, n=self.n_phrases, **opts) for obj in assets.values()]
        if bodies:
            self.check_budget(bodies)
            results = self.runner.send_all(bodies)
            for key, result in zip(families, results[: len(families)], strict=True):
                self._count_result(result)
                self.pools.add_family(key, result.content, result.reason, self.stats)
            for (signature, obj), result in zip(assets.items(), results[len(families) :], strict=True):
                self._count_result(result)
                self.pools.add_asset(signature, obj, result.content, result.reason, self.vocabulary, self.stats)
        out = []
        for scene in scenes:
            out.append(compose_rewrites(scene, self.pools, seed=self.seed, vocabulary=self.vocabulary,
                                        unseen_fraction=self.unseen_fraction, stats=self.stats))  # fmt: skip
        self.stats["episodes"] += len(scenes)
        return out

    def _rewrite_per_episode(self, scenes: list[SceneFacts]) -> list[Rewrites]:
        bodies = [self._episode_body(s) for s in scenes]
        self.check_budget(bodies)
        if self.batch:
            by_key = self._batch().run([(s.episode_key, b) for s, b in zip(scenes, bodies, strict=True)])
            results = [by_key[s.episode_key] for s in scenes]
        else:
            results = self.runner.send_all(bodies)
        return [self._merge(s, r) for s, r in zip(scenes, results, strict=True)]

    def _episode_body(self, scene: SceneFacts) -> dict[str, Any]:
        body = episode_body(scene, self.model, temperature=self.temperature, max_tokens=self.max_tokens)
        body["seed"] = self.seed
        return body

    def _batch(self) -> BatchRunner:
        if self._batch_runner is None:
            state = self.batch_state_path or (self.cache_dir / "batches" / "state.json")
            self._batch_runner = BatchRunner(self.runner, state, **self.batch_options)
        return self._batch_runner

    def _count_result(self, result: ChatResult) -> None:
        if result.reason is not None:
            self.stats[f"request_failed_{result.reason}"] += 1

    def _merge(self, scene: SceneFacts, result: ChatResult) -> Rewrites:
        """The model's rewrites where valid, the offline ones elsewhere; every rejection counted by reason."""
        self.stats["episodes"] += 1
        self._count_result(result)
        candidate, problem = parse_reply(result.content, Rewrites) if result.reason is None else (None, None)
        if problem is not None:
            self.stats[f"rejected_{problem}"] += 1
        if candidate is None:
            self.stats["fallback_offline_episode"] += 1
            reason = f"request_failed_{result.reason}" if result.reason is not None else problem
            fallback = self.offline.rewrite_one(scene)
            for kind in REWRITE_KINDS:
                fallback.mark(kind, "offline", reason)
            return fallback
        problems = check_rewrites(candidate, scene, self.vocabulary)
        fallback = self.offline.rewrite_one(scene) if problems else None
        merged, marks = {}, {}
        for kind in REWRITE_KINDS:
            if fallback is not None and kind in problems:
                self.stats[f"rejected_{problems[kind]}"] += 1
                self.stats[f"fallback_offline_{kind}"] += 1
                merged[kind], marks[kind] = getattr(fallback, kind), ("offline", problems[kind])
            else:
                self.stats["accepted"] += 1
                merged[kind], marks[kind] = " ".join(getattr(candidate, kind).split()), ("openai", None)
        rewrites = Rewrites(**merged)
        for kind, (producer, reason) in marks.items():
            rewrites.mark(kind, producer, reason)
        return rewrites

    # -- reporting --------------------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """What this rewriter did so far: requests, cache hits, tokens, cost, rejections by reason (no secrets)."""
        return {
            "rewriter": self.name,
            "model": self.model,
            "base_url": public_url(self.base_url),
            "mode": self.mode,
            "batch": self.batch,
            "estimated_cost_usd": round(self.estimated_cost_usd, 6) if self.price else None,
            "max_cost_usd": self.max_cost_usd,
            **self.meter.summary(),
            "counts": dict(sorted((self.stats + self.offline.stats).items())),
            **({"batch_stats": dict(self._batch_runner.stats)} if self._batch_runner else {}),
        }

    def metadata(self) -> dict[str, Any]:
        """What to record beside rewritten data: rewriter, model, endpoint, mode, prompt schema (no secrets)."""
        return {"rewriter": self.name, "model": self.model, "base_url": public_url(self.base_url),
                "mode": self.mode, "batch": self.batch, "prompt_schema": PROMPT_SCHEMA_VERSION,
                "seed": self.seed}  # fmt: skip
