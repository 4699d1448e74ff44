"""The thin training module (the `train` extra: torch, transformers): streaming loaders over grounding and episode
shards, the tiny dual-system reference model and a Qwen2.5-VL adapter, the two-stage ST4VLA loop, evaluations and
the gradient-conflict diagnostic. The CLI imports this package lazily."""

from dataengine.errors import require

require("torch", "train", "Training")

from dataengine.train.evaluate import evaluate_checkpoint, load_policy  # noqa: E402
from dataengine.train.loop import Trainer, TrainResult, train  # noqa: E402
from dataengine.train.recipe import TrainRecipe, load_recipe  # noqa: E402

__all__ = ["TrainRecipe", "TrainResult", "Trainer", "evaluate_checkpoint", "load_policy", "load_recipe", "train"]
