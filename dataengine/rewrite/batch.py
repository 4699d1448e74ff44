"""The OpenAI Batch API flow for per-episode rewriting: JSONL requests, upload, create, poll, download, merge.

Requests already in the cache are not sent. The rest go out in chunks (at most 50,000 lines and 190 MB each);
`custom_id` is the episode key. Every step is recorded in a JSON state file (input hash, file id, batch id,
status) right after it happens, so a run that stops while a batch is still running (or crashes) picks the same
batch up again when rerun with the same inputs: nothing is uploaded or created twice. Downloaded replies go into
the response cache, so a finished chunk is never fetched again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from dataengine.errors import DataEngineError, JobStateError
from dataengine.rewrite.llm import ChatResult, ChatRunner, result_from_completion, usage_dict
from dataengine.runtime.atomic import atomic_write_text
from dataengine.runtime.logs import redact

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
MAX_LINES = 50_000
MAX_BYTES = 190 * 1024 * 1024
TERMINAL = ("completed", "failed", "expired", "cancelled")
STATE_VERSION = 1


class BatchPendingError(DataEngineError):
    """A batch is still running when the wait limit is reached; rerunning resumes it."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def _jsonl(requests: list[tuple[str, dict[str, Any]]]) -> bytes:
    lines = [
        json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}, sort_keys=True)
        for cid, body in requests
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def chunk_requests(
    requests: list[tuple[str, dict[str, Any]]], max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES
) -> list[list[tuple[str, dict[str, Any]]]]:
    """Split into chunks that respect the Batch API's line and size limits, keeping order."""
    chunks: list[list[tuple[str, dict[str, Any]]]] = [[]]
    size = 0
    for item in requests:
        line = len(_jsonl([item]))
        if chunks[-1] and (len(chunks[-1]) >= max_lines or size + line > max_bytes):
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += line
    return [c for c in chunks if c]


class BatchState:
    """The JSON state file: one entry per chunk, keyed by the sha256 of the chunk's JSONL."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.chunks: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise JobStateError(f"batch state file {self.path} is not valid JSON ({exc}); delete it") from None
            if data.get("version") != STATE_VERSION:
                raise JobStateError(f"batch state file {self.path} has version {data.get('version')!r}, "
                                    f"expected {STATE_VERSION}; delete it to start over")  # fmt: skip
            self.chunks = data.get("chunks", {})

    def save(self) -> None:
        payload = json.dumps({"version": STATE_VERSION, "chunks": self.chunks}, indent=2, sort_keys=True)
        atomic_write_text(self.path, payload)


class BatchRunner:
    """Runs request bodies through the Batch API, using `runner` for its client, cache and meter."""

    def __init__(
        self,
        runner: ChatRunner,
        state_path: str | os.PathLike[str],
        *,
        poll_s: float = 30.0,
        max_wait_s: float | None = None,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.runner = runner
        self.state = BatchState(state_path)
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        self.max_lines = max_lines
        self.stats: dict[str, int] = {"batches_created": 0, "batches_resumed": 0, "files_uploaded": 0}

    @property
    def client(self) -> Any:
        return self.runner.client

    def run(self, requests: list[tuple[str, dict[str, Any]]]) -> dict[str, ChatResult]:
        """Results by custom_id (cache hits included). Raises BatchPendingError if batches outlive max_wait_s."""
        results: dict[str, ChatResult] = {}
        pending: list[tuple[str, dict[str, Any]]] = []
        for cid, body in requests:
            hit = self.runner.cached(body)
            if hit is not None:
                results[cid] = hit
            else:
                pending.append((cid, body))
        if not pending:
            return results
        chunks = chunk_requests(pending, self.max_lines)
        live = {self._submit(chunk): chunk for chunk in chunks}
        deadline = None if self.max_wait_s is None else time.monotonic() + self.max_wait_s
        while live:
            for digest in list(live):
                entry = self.state.chunks[digest]
                batch = self.client.batches.retrieve(entry["batch_id"])
                entry["status"] = batch.status
                if batch.status in TERMINAL:
                    entry["output_file_id"] = batch.output_file_id
                    entry["error_file_id"] = batch.error_file_id
                    results.update(self._collect(live.pop(digest), entry))
                self.state.save()
            if not live:
                break
            if deadline is not None and time.monotonic() >= deadline:
                ids = ", ".join(self.state.chunks[d]["batch_id"] for d in live)
                raise BatchPendingError(
                    f"batch(es) {ids} still running after {self.max_wait_s:.0f}s; rerun the same command to "
                    f"resume them (state: {self.state.path})"
                )
            time.sleep(self.poll_s)
        return results

    def _submit(self, chunk: list[tuple[str, dict[str, Any]]]) -> str:
        """Upload and create (or find in the state file) the batch for one chunk; returns the chunk's hash."""
        data = _jsonl(chunk)
        digest = hashlib.sha256(data).hexdigest()
        entry = self.state.chunks.setdefault(digest, {"requests": len(chunk)})
        if entry.get("batch_id") and entry.get("status") not in ("failed", "expired", "cancelled", "collected"):
            self.stats["batches_resumed"] += 1
            log.info("resuming batch %s (%d requests)", entry["batch_id"], len(chunk))
            return digest
        if entry.get("status") in ("failed", "expired", "cancelled", "collected"):
            entry.clear()
            entry["requests"] = len(chunk)
        if not entry.get("input_file_id"):
            upload = self.client.files.create(file=(f"rewrite-{digest[:12]}.jsonl", io.BytesIO(data)), purpose="batch")
            entry["input_file_id"] = upload.id
            self.stats["files_uploaded"] += 1
            self.state.save()
        batch = self.client.batches.create(
            input_file_id=entry["input_file_id"],
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={"purpose": "dataengine-rewrite", "chunk_sha256": digest[:16]},
        )
        entry.update({"batch_id": batch.id, "status": batch.status})
        self.stats["batches_created"] += 1
        self.state.save()
        log.info("created batch %s for %d requests", batch.id, len(chunk))
        return digest

    def _download(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        text = self.client.files.content(file_id).text
        rows = []
        for line in text.splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("skipping a malformed line in batch file %s", file_id)
        return rows

    def _collect(self, chunk: list[tuple[str, dict[str, Any]]], entry: dict[str, Any]) -> dict[str, ChatResult]:
        """Merge a finished batch's output and error files; requests with no line get the batch's status."""
        bodies = dict(chunk)
        results: dict[str, ChatResult] = {}
        for row in self._download(entry.get("output_file_id")) + self._download(entry.get("error_file_id")):
            cid = row.get("custom_id")
            if cid not in bodies or cid in results:
                continue
            response = row.get("response") or {}
            if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                result = result_from_completion(response["body"])
                self.runner.meter.add(usage_dict(response["body"].get("usage")), batch=True)
                self.runner.store(bodies[cid], result)
            else:
                error = row.get("error") or (response.get("body") or {}).get("error") or {}
                detail = redact(str(error.get("message", "")))[:200] if isinstance(error, dict) else ""
                results[cid] = ChatResult(None, reason="batch_request_failed", detail=detail)
                continue
            results[cid] = result
        status = entry.get("status", "unknown")
        for cid in bodies:
            results.setdefault(cid, ChatResult(None, reason=f"batch_{status}_no_result"))
        entry["status"] = "collected"
        return results


__all__ = ["BatchPendingError", "BatchRunner", "chunk_requests"]
