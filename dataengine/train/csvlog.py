"""CSV training logs (always), TensorBoard (when `tensorboard` is installed) and the step meter. On resume, rows
after the checkpoint's step are dropped, so a crashed and resumed run logs every step once."""

from __future__ import annotations

import csv
import logging
import math
import time
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


class StepMeter:
    """Averages losses and gradient norms between log rows and measures samples per second."""

    def __init__(self) -> None:
        self.t_start = self.t_window = time.perf_counter()
        self._reset()

    def _reset(self) -> None:
        self.values: dict[str, list[float]] = {
            "loss": [], "loss_action": [], "loss_spatial": [], "loss_point": [], "grad_norm": []
        }  # fmt: skip
        self.samples = 0

    def add(self, total: float, grad_norm: float, parts: dict) -> None:
        self.values["loss"].append(total)
        self.values["grad_norm"].append(grad_norm)
        for key in ("loss_action", "loss_spatial", "loss_point"):
            if key in parts:
                self.values[key].append(parts[key])
        self.samples += int(parts.get("samples", 0))

    def flush(self) -> dict:
        now = time.perf_counter()
        row = {k: sum(v) / len(v) for k, v in self.values.items() if v}
        row.update(samples_per_s=self.samples / max(now - self.t_window, 1e-9), elapsed_s=now - self.t_start)
        self.t_window = now
        self._reset()
        return row


def log_row(logger: logging.Logger, row: dict, steps: int) -> None:
    """One console line per log row."""
    logger.info(
        "stage %d step %d/%d  loss %.4f%s%s%s  %.1f samples/s", row["stage"], row["stage_step"], steps, row["loss"],
        f"  action {row['loss_action']:.4f}" if "loss_action" in row else "",
        f"  spatial {row['loss_spatial']:.4f}" if "loss_spatial" in row else "",
        f"  point {row['loss_point']:.4f}" if "loss_point" in row else "",
        row["samples_per_s"],
    )  # fmt: skip
