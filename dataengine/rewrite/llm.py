"""Synchronous Chat Completions calls through the official `openai` client: cache, budget, threads, redaction.

The client's own retries (exponential backoff, Retry-After honoured) cover 408 / 409 / 429 / 5xx / timeouts /
connection errors; what is still failing after them becomes a per-request reason and the caller falls back to
offline rewrites. Credential and endpoint errors (401 / 403 / 404) stop the run with a redacted message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dataengine.errors import DataEngineError, InputError
from dataengine.rewrite.cache import ResponseCache, request_key
from dataengine.rewrite.cost import UsageMeter, estimate_cost_usd
from dataengine.rewrite.prompts import PROMPT_SCHEMA_VERSION
from dataengine.runtime.logs import RedactingFilter, redact

log = logging.getLogger(__name__)
THIRD_PARTY_LOGGERS = ("openai", "openai._base_client", "httpx", "httpx2", "httpcore")
LOCAL_SERVER_KEY = "not-needed"  # vLLM / Ollama accept any key when they were started without one


class RewriteServiceError(DataEngineError):
    """The model endpoint refused the run as a whole (bad key, no access, unknown model or URL)."""


@dataclass
class ChatResult:
    """One reply: the message content, or the snake_case reason there is none."""

    content: str | None
    usage: dict[str, int] | None = None
    reason: str | None = None
    detail: str = ""
    from_cache: bool = False


def install_redaction() -> None:
    """Make sure the client libraries' own log records are redacted too."""
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def public_url(url: str | None) -> str | None:
    """A base URL without user info, query or fragment: safe for logs and shard metadata."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return redact(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def make_client(*, api_key: str | None, base_url: str | None, timeout_s: float, max_retries: int):
    """An `openai.OpenAI` client; the key comes from the argument or OPENAI_API_KEY and is never logged."""
    import openai

    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if not base_url:
            raise InputError(
                "the openai rewriter needs an API key: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
                "OpenAI-compatible server such as vLLM or Ollama), or use --rewriter offline"
            )
        key = LOCAL_SERVER_KEY
    install_redaction()
    return openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout_s, max_retries=max_retries)


def usage_dict(usage: Any) -> dict[str, int]:
    """Token counts from a response's usage object or dict."""
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
    get = usage.get if isinstance(usage, dict) else lambda k, d=None: getattr(usage, k, d)
    details = get("prompt_tokens_details")
    cached = (details.get("cached_tokens") if isinstance(details, dict) else getattr(details, "cached_tokens", 0)) or 0
    return {
        "prompt_tokens": int(get("prompt_tokens", 0) or 0),
        "completion_tokens": int(get("completion_tokens", 0) or 0),
        "cached_tokens": int(cached),
    }


def result_from_completion(completion: dict[str, Any]) -> ChatResult:
    """A ChatResult from a Chat Completions response body (dict form, as in batch output files)."""
    choices = completion.get("choices") or []
    if not choices:
        return ChatResult(None, usage_dict(completion.get("usage")), "empty_response")
    choice = choices[0]
    message = choice.get("message") or {}
    usage = usage_dict(completion.get("usage"))
    if message.get("refusal"):
        return ChatResult(None, usage, "refusal", redact(str(message["refusal"]))[:200])
    if choice.get("finish_reason") == "length":
        return ChatResult(None, usage, "length_limit")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return ChatResult(None, usage, "empty_response")
    return ChatResult(content, usage)


def is_json_object(content: str) -> bool:
    try:
        return isinstance(json.loads(content), dict)
    except (json.JSONDecodeError, TypeError):
        return False


def classify_error(exc: Exception) -> tuple[str, RewriteServiceError | None]:
    """A snake_case reason for a failed request, plus a run-level error for bad key / access / model / URL.

    The run-level error is built fresh from a redacted message, so it carries neither the key nor the original
    exception (raise it outside the `except` block that caught `exc`).
    """
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error", None
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError | openai.NotFoundError):
        message = f"the model endpoint refused the request ({type(exc).__name__}): {redact(str(exc))[:300]}"
        return "service_refused", RewriteServiceError(message)
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited", None
    if isinstance(exc, openai.APIStatusError):
        return ("server_error" if exc.status_code >= 500 else "bad_request"), None
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | ValueError):
        return "malformed_response", None
    return "api_error", None


class LazyClient:
    """Stands in front of a client (`make_client`'s) and builds it on first attribute access, so a run answered
    wholly from the cache needs no key and opens no connection."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
        return getattr(self._client, name)


class ChatRunner:
    """Sends request bodies with bounded concurrency; answers from the cache first; keeps the meter.

    A reply is cached under `request_key(body, PROMPT_SCHEMA_VERSION)` unless the caller passes its own key
    (the object describer keys by mesh hash, model and its prompt version, not by the thumbnail's bytes).
    """

    def __init__(self, client: Any, *, cache: ResponseCache | None, meter: UsageMeter, concurrency: int = 8):
        self.client = client
        self.cache = cache
        self.meter = meter
        self.concurrency = max(1, int(concurrency))
        self.stopped = False

    def cached(self, body: dict[str, Any], key: str | None = None) -> ChatResult | None:
        if self.cache is None:
            return None
        entry = self.cache.get(key or request_key(body, PROMPT_SCHEMA_VERSION))
        if entry is None:
            return None
        self.meter.count_cache_hit()
        return ChatResult(entry["content"], entry.get("usage"), from_cache=True)

    def store(self, body: dict[str, Any], result: ChatResult, key: str | None = None) -> None:
        if self.cache is not None and result.content is not None and is_json_object(result.content):
            entry = {"content": result.content, "usage": result.usage, "model": body.get("model")}
            self.cache.put(key or request_key(body, PROMPT_SCHEMA_VERSION), entry)

    def send(self, body: dict[str, Any], key: str | None = None) -> ChatResult:
        """One request (cache first, under `key` when given); never raises for per-request failures."""
        hit = self.cached(body, key)
        if hit is not None:
            return hit
        if self.stopped:
            return ChatResult(None, reason="run_stopped")
        estimate = estimate_cost_usd([body], self.meter.price) if self.meter.price else 0.0
        if not self.meter.reserve(estimate):
            return ChatResult(None, reason="budget_exhausted")
        usage, fatal = None, None
        try:
            completion = self.client.chat.completions.create(**body)
            raw = completion.model_dump() if hasattr(completion, "model_dump") else completion
            if not isinstance(raw, dict):
                result = ChatResult(None, reason="malformed_response")
            else:
                result = result_from_completion(raw)
                usage = result.usage
        except DataEngineError:  # no key or no client: the whole run cannot work
            self.stopped = True
            raise
        except Exception as exc:
            reason, fatal = classify_error(exc)
            detail = redact(str(exc))[:200]
            log.warning("request failed (%s): %s", reason, detail)
            result = ChatResult(None, reason=reason, detail=detail)
        finally:
            self.meter.settle(estimate, usage)
        if fatal is not None:
            self.stopped = True
            raise fatal
        self.store(body, result, key)
        return result

    def send_all(self, bodies: list[dict[str, Any]], keys: list[str] | None = None) -> list[ChatResult]:
        """All requests, in order, with at most `concurrency` in flight; identical bodies (or equal `keys`, when
        given: the cache keys) are sent once.

        A run-level error (bad key, unknown model) cancels the requests not yet started and is raised.
        """
        own_keys = keys is not None
        keys = keys if keys is not None else [request_key(b, PROMPT_SCHEMA_VERSION) for b in bodies]
        unique = {k: b for k, b in zip(keys, bodies, strict=True)}

        def one(k: str) -> ChatResult:
            return self.send(unique[k], k if own_keys else None)

        if self.concurrency == 1 or len(unique) <= 1:
            done = {k: one(k) for k in unique}
        else:
            pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="rewrite")
            try:
                futures = {k: pool.submit(one, k) for k in unique}
                done = {k: f.result() for k, f in futures.items()}
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return [done[k] for k in keys]
