"""Logging set-up with secret redaction: API keys never reach a log line or the console."""

from __future__ import annotations

import logging
import os
import re

from rich.console import Console
from rich.logging import RichHandler

console = Console()
console_err = Console(stderr=True)

SECRET_ENV_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "HF_TOKEN")
_SECRET_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,})")
REDACTED = "***"


def redact(text: str) -> str:
    """Replace every known secret (from the environment, or shaped like an OpenAI key) with ***."""
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return _SECRET_PATTERN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(verbose: bool = False) -> None:
    """Route the package's logs through Rich on stderr, with redaction. Safe to call twice."""
    root = logging.getLogger("dataengine")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=console_err, show_path=False, rich_tracebacks=False)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
