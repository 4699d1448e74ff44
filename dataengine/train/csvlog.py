"""CSV training logs (always) and TensorBoard (when `tensorboard` is installed). On resume, rows after the
checkpoint's step are dropped, so a crashed and resumed run logs every step once."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


class CsvLog:
    def __init__(self, path: Path, columns: list[str], resume_step: int | None = None) -> None:
        self.path, self.columns = path, columns
        path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[dict] = []
        if resume_step is not None and path.exists():
            with open(path, newline="", encoding="utf-8") as fh:
                kept = [r for r in csv.DictReader(fh) if r.get("step") and int(r["step"]) <= resume_step]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)

    def write(self, row: dict) -> None:
        clean = {k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()}
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, self.columns, extrasaction="ignore").writerow(clean)


class NullLog:
    """What ranks other than 0 log to."""

    def write(self, row: dict) -> None:
        pass


class TensorBoard:
    """Scalars to TensorBoard when available; silently off otherwise (CSV is the record). `None`: off."""

    def __init__(self, log_dir: Path | None) -> None:
        self.writer = None
        if log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))
        except Exception:  # tensorboard is optional
            log.debug("tensorboard not installed: CSV logs only")

    def scalars(self, step: int, values: dict) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, int | float) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
