"""A small OpenAI-compatible HTTP server on 127.0.0.1 for the rewrite tests (the real `openai` client talks to it).

It serves Chat Completions with structured outputs, file upload / content download and batches create /
retrieve. Tests script it: `server.push(...)` queues behaviours for the next chat requests ("normal",
("status", 429, {"retry-after-ms": "10"}), "malformed_content", "malformed_body", ("sleep", 1.5),
"swapped_roles", "wrong_relation", "unknown_landmark" (a wrong `attr` rewrite),
"wrong_object", "echo_key_401", "invalid_description" (an object description with an unknown colour));
`server.hold_batches = True` keeps batches in progress; `server.counts` counts requests per route.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter, deque
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _answer_rewrites(facts: dict[str, Any], behaviour: str) -> dict[str, str]:
    objects = {o["role"]: o for o in facts["objects"]}
    pick, place = objects["pick"], objects["place"]
    into = "into" if facts["relation"] == "in" else "onto"
    color = f"{pick['color']} " if pick.get("color") else ""
    spatial = next((f for f in facts["spatial_facts"] if f.startswith(f"the {pick['name']}")), f"the {pick['name']}")
    attr = f"Kindly put the {color}{pick['name']} {into} the {place['name']}."
    if behaviour == "wrong_object":
        attr = f"Kindly put the laptop next to the {pick['name']} {into} the {place['name']}."
    hostile = {  # replies that name the right objects but say something else (tests/hostile/test_rewriter.py)
        "swapped_roles": f"Kindly pick up the {place['name']} and put it {into} the {pick['name']}.",
        "wrong_relation": f"Kindly put the {pick['name']} {'onto' if into == 'into' else 'into'} the {place['name']}.",
        "unknown_landmark": f"Kindly put the {pick['name']} next to the giraffe {into} the {place['name']}.",
    }
    attr = hostile.get(behaviour, attr)
    return {
        "attr": attr,
        "semantic": f"Kindly move the {pick['name']}, a {pick['category']} object, {into} the {place['name']}.",
        "spatial": f"Kindly pick up {spatial} and set it {into} the {place['name']}.",
    }


def _answer_description(body: dict[str, Any], behaviour: str) -> dict[str, Any]:
    """An object description (the importer's describer): the request must carry a PNG thumbnail inline."""
    parts = body["messages"][-1]["content"]
    facts = json.loads(next(p["text"] for p in parts if p["type"] == "text"))
    image = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    if not image.startswith("data:image/png;base64,iVBORw0KGgo"):  # the PNG signature, base64
        raise ValueError("no PNG thumbnail in the request")
    reply = {"name": f"small {facts['name'].split()[-1]}", "category": "household item", "color": "purple",
             "attributes": ["plastic", "graspable"]}  # fmt: skip
    if behaviour == "invalid_description":  # a colour outside the allowed names
        reply["color"] = "chartreuse"
    return reply


def _answer_for(body: dict[str, Any], behaviour: str) -> str:
    """The message content a well-behaved model would send for this request."""
    schema_name = body["response_format"]["json_schema"]["name"]
    if schema_name == "object_description":
        return json.dumps(_answer_description(body, behaviour))
    user = json.loads(body["messages"][-1]["content"])
    if schema_name == "rewrites":
        return json.dumps(_answer_rewrites(user, behaviour))
    if schema_name == "template_pool":
        into = "into" if user["relation"] == "in" else "onto"
        templates = [f"Kindly {verb} the {{pick}} {into} the {{place}}." for verb in ("put", "move", "place", "set")]
        templates += [f"Would you {verb} the {{pick}} {into} the {{place}}?" for verb in ("put", "move")]
        templates += ["Put the {pick} somewhere.", "Put the {pick} {into} the {place}."]  # two bad ones
        return json.dumps({"templates": templates})
    if schema_name == "asset_pool":
        name, category = user["name"], user["category"]
        appearance = [f"{{color}} {name}", f"glossy {{color}} {name}", f"the {{size}} {name}", "shiny laptop"]
        return json.dumps({"appearance": appearance, "semantic": [f"{category} {name}", f"everyday {name}"]})
    raise ValueError(f"unknown schema {schema_name}")


def completion(body: dict[str, Any], content: str, n: int) -> dict[str, Any]:
    prompt_tokens = len(json.dumps(body["messages"])) // 4
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": None}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content) // 4,
                  "total_tokens": prompt_tokens + len(content) // 4},
    }  # fmt: skip


class FakeOpenAI:
    """The server and its scriptable state. Use as a context manager; `base_url` ends in /v1."""

    def __init__(self) -> None:
        self.script: deque[Any] = deque()
        self.counts: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.chat_bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.hold_batches = False
        self.batch_line_behaviour: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def push(self, *behaviours: Any) -> None:
        self.script.extend(behaviours)

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids)}"

    @property
    def chat_requests(self) -> int:
        return self.counts["POST /v1/chat/completions"]

    # -- handlers (return status, headers, body bytes) --------------------------------------------------------
    def chat(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.chat_bodies.append(body)
        try:
            return self._chat(body, headers)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _chat(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            behaviour = self.script.popleft() if self.script else "normal"
        if isinstance(behaviour, tuple) and behaviour[0] == "sleep":
            self.stop_event.wait(behaviour[1])
            behaviour = "normal"
        if isinstance(behaviour, tuple) and behaviour[0] == "status":
            code, extra = behaviour[1], (behaviour[2] if len(behaviour) > 2 else {})
            err = {"error": {"message": f"scripted {code}", "type": "scripted", "code": str(code)}}
            return code, extra, json.dumps(err).encode()
        if behaviour == "echo_key_401":
            key = headers.get("authorization", "").removeprefix("Bearer ")
            err = {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error"}}
            return 401, {}, json.dumps(err).encode()
        if behaviour == "malformed_body":
            return 200, {}, b'{"id": "chatcmpl-x", "choices": [ {"message": '
        content = _answer_for(body, behaviour)
        if behaviour == "malformed_content":
            content = content[: len(content) // 2]
        return 200, {}, json.dumps(completion(body, content, int(self.next_id("")))).encode()

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = BytesParser(policy=default_policy).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        filename, data = fields["file"]
        file_id = self.next_id("file-")
        self.files[file_id] = {"data": data, "filename": filename, "purpose": fields["purpose"][1].decode()}
        return self._file_object(file_id)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        f = self.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(f["data"]), "created_at": 0,
                "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}  # fmt: skip

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        lines = [ln for ln in self.files[body["input_file_id"]]["data"].decode().splitlines() if ln.strip()]
        batch_id = self.next_id("batch_")
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": 0,
            "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }  # fmt: skip
        return self.batches[batch_id]

    def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return batch
        if self.hold_batches:
            batch["status"] = "in_progress"
            return batch
        outputs, errors = [], []
        for line in self.files[batch["input_file_id"]]["data"].decode().splitlines():
            if not line.strip():
                continue
            request = json.loads(line)
            cid, behaviour = request["custom_id"], self.batch_line_behaviour.get(request["custom_id"], "normal")
            if behaviour == "error":
                errors.append({"id": f"req_{cid}", "custom_id": cid, "response": {"status_code": 500,
                               "request_id": cid, "body": {"error": {"message": "scripted failure"}}},
                               "error": None})  # fmt: skip
                continue
            content = _answer_for(request["body"], behaviour)
            body = completion(request["body"], content, 0)
            outputs.append({"id": f"req_{cid}", "custom_id": cid, "error": None,
                            "response": {"status_code": 200, "request_id": cid, "body": body}})  # fmt: skip
        for rows, key in ((outputs, "output_file_id"), (errors, "error_file_id")):
            if rows:
                file_id = self.next_id("file-")
                data = "".join(json.dumps(r) + "\n" for r in reversed(rows)).encode()  # order is not guaranteed
                self.files[file_id] = {"data": data, "filename": f"{key}.jsonl", "purpose": "batch_output"}
                batch[key] = file_id
        batch["status"] = "completed"
        batch["request_counts"] = {"total": len(outputs) + len(errors), "completed": len(outputs),
                                   "failed": len(errors)}  # fmt: skip
        return batch


def _make_handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def _read_body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("content-length", 0)))

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:  # fmt: skip
            try:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def _route(self) -> str:
            parts = self.path.split("?")[0].rstrip("/").split("/")
            if len(parts) >= 4 and parts[2] in ("files", "batches"):
                parts[3] = "{id}"
            return f"{self.command} {'/'.join(parts)}"

        def do_POST(self) -> None:
            raw = self._read_body()
            route = self._route()
            with server._lock:
                server.counts[route] += 1
            server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
            if route == "POST /v1/chat/completions":
                status, headers, payload = server.chat(json.loads(raw), server.headers_seen[-1])
                self._send(status, payload, headers)
            elif route == "POST /v1/files":
                self._send(200, json.dumps(server.upload(self.headers["content-type"], raw)).encode())
            elif route == "POST /v1/batches":
                self._send(200, json.dumps(server.create_batch(json.loads(raw))).encode())
            else:
                self._send(404, b'{"error": {"message": "no such route"}}')

        def do_GET(self) -> None:
            route = self._route()
            with server._lock:
                server.counts[route] += 1
            parts = self.path.split("?")[0].rstrip("/").split("/")
            if route == "GET /v1/batches/{id}":
                self._send(200, json.dumps(server.retrieve_batch(parts[3])).encode())
            elif route == "GET /v1/files/{id}/content":
                self._send(200, server.files[parts[3]]["data"], content_type="application/octet-stream")
            elif route == "GET /v1/files/{id}":
                self._send(200, json.dumps(server._file_object(parts[3])).encode())
            else:
                self._send(404, b'{"error": {"message": "no such route"}}')

    return Handler
