"""Typed training recipes: data, model, the two stages, logging and evaluation. Loaded from YAML, validated before
any work, saved (resolved) beside the run. Importing this module does not import torch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataengine.errors import InputError
from dataengine.recipe_loader import apply_overrides, load_yaml_recipe, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where the shards are (relative paths resolve against `--data`, else the recipe's folder) and how samples
    are made from them."""

    grounding: str | None = Field(default="corpus", description="grounding/v1 shards for the spatial loss")
    episodes: str | None = Field(default="sim", description="episode shards for the action loss")
    eval_grounding: str | None = Field(default=None, description="held-out grounding shards (None: hash holdout)")
    grounding_splits: list[str] | None = Field(default=None, description="record `split` values to train on")
    holdout_fraction: float = Field(default=0.05, ge=0, lt=1, description="keys held out when eval_grounding=None")
    answer_style: str = "internvla-m1"
    style_options: dict[str, Any] = Field(default_factory=dict)
    templates: str | None = Field(default=None, description="question template file (None: built-in)")
    include_vqa: bool = Field(default=False, description="train on vqa items too (first human->gpt turn)")
    spatial_prompt: Literal["upstream", "paper", "none"] = "upstream"
    image_size: int = Field(default=224, gt=0, description="action frames are resized to image_size^2")
    camera: str | None = Field(default=None, description="episode camera to train on (None: the first one)")
    cameras: list[str] | None = Field(
        default=None, description="episode cameras the policy sees, in order (None: [camera]; [] for state policies)"
    )
    actions: Literal["ee_relative", "joint_relative", "joint_absolute", "joint_delta"] = Field(
        default="joint_delta",
        description="action space (dataengine.train.actions): ee_relative = tool targets relative to the tool pose",
    )
    state: Literal["proprio", "proprio_ee", "task"] = Field(
        default="proprio", description="state vector (dataengine.train.observations); task = privileged features"
    )
    chunk_size: int = Field(default=16, gt=0, le=32, description="action steps predicted at once")
    action_norm: Literal["min_max", "q99", "standard"] = "min_max"
    state_norm: Literal["min_max", "q99", "standard", "none"] = "min_max"
    gripper_norm: Literal["binary", "min_max"] = "binary"
    shuffle_buffer: int = Field(default=1000, ge=1)
    num_workers: int = Field(default=0, ge=0)
    eval_episode_fraction: float = Field(default=0.0, ge=0, lt=1, description="episodes held out of training")
    max_episodes: int | None = Field(default=None, ge=1, description="train on the first N episodes only")

    def policy_cameras(self) -> list[str] | None:
        """The cameras of the action samples (None: the episodes' first camera)."""
        if self.cameras is not None:
            return list(self.cameras)
        return [self.camera] if self.camera else None


class TinyBackbone(_Strict):
    patch_size: int = 8
    dim: int = 128
    layers: int = 4
    heads: int = 4
    max_text_len: int = 256
    stem: Literal["patch", "conv"] = Field(default="patch", description="conv: a small CNN (needed for pointing)")
    max_images: int = Field(default=1, ge=1, le=8, description="images (cameras) per action sample")
    pointing: bool = Field(default=False, description="System 2 points at the instruction's objects in each frame")
    point_channels: int = Field(default=64, ge=8)
    token_pool: int = Field(default=1, ge=1, description="average-pool image tokens by this factor per side")


class QwenBackbone(_Strict):
    """Qwen2.5-VL from local weights (`weights`: a folder with config, safetensors, tokenizer and preprocessor
    files), or a small random model built from `random_config` (offline smoke tests; no weights needed)."""

    weights: str | None = None
    random_config: dict[str, Any] | None = None
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    attn_implementation: str | None = Field(default=None, description="e.g. flash_attention_2, sdpa")
    gradient_checkpointing: bool = True
    min_pixels: int = 784
    max_pixels: int = 50176
    system_prompt: str = "You are a helpful assistant."

    @model_validator(mode="after")
    def _one_source(self) -> QwenBackbone:
        if (self.weights is None) == (self.random_config is None):
            raise ValueError("give exactly one of qwen.weights (a local folder) or qwen.random_config")
        return self


class StateMLPConfig(_Strict):
    """The state policy: an MLP from the state vector to a whole action chunk (regression; no camera, no text)."""

    hidden: int = Field(default=512, gt=0)
    layers: int = Field(default=3, ge=1)
    gripper_loss_weight: float = Field(default=0.1, ge=0)


class ModelConfig(_Strict):
    policy: Literal["dual_system", "state_mlp"] = Field(
        default="dual_system", description="dual_system: VLM + action expert; state_mlp: the state policy (probe)"
    )
    state_mlp: StateMLPConfig = Field(default_factory=StateMLPConfig)
    backbone: Literal["tiny", "qwen2.5-vl"] = "tiny"
    tiny: TinyBackbone = Field(default_factory=TinyBackbone)
    qwen: QwenBackbone | None = None
    qformer_layer: int = Field(default=-1, description="LM layer whose hidden states the queries read")
    qformer_dim: int = 128
    qformer_queries: int = 16
    qformer_layers: int = 2
    qformer_heads: int = 4
    expert: Literal["flow", "mlp"] = Field(default="flow", description="flow matching DiT, or a regression MLP")
    expert_dim: int = 128
    expert_layers: int = 3
    expert_heads: int = 4
    expert_hidden: int = Field(default=512, description="width of the mlp expert")
    diffusion_repeats: int = Field(default=4, ge=1, description="upstream repeated_diffusion_steps")
    sample_steps: int = Field(default=10, ge=1, description="Euler steps when sampling actions")
    grad_decay: float = Field(default=0.5, ge=0, le=1, description="scale of action gradients entering the LM")

    @model_validator(mode="after")
    def _qwen_present(self) -> ModelConfig:
        if self.backbone == "qwen2.5-vl" and self.qwen is None:
            raise ValueError("backbone qwen2.5-vl needs a `qwen:` section (weights or random_config)")
        return self


class StageConfig(_Strict):
    steps: int = Field(default=0, ge=0)
    grounding_batch: int = Field(default=4, ge=1)
    action_batch: int = Field(default=16, ge=1)
    action_loss_weight: float = Field(default=1.0, ge=0)
    spatial_loss_weight: float = Field(default=0.1, ge=0, description="ST4VLA: 0.1 (spatial:action = 1:10)")
    point_loss_weight: float = Field(
        default=0.0, ge=0, description="pointing loss on the action frames' 2-D labels (a pointing backbone)"
    )
    lr_backbone: float = Field(default=1e-5, gt=0)
    lr_heads: float = Field(default=1e-4, gt=0)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1)
    warmup_steps: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)


class DiagnosticsConfig(_Strict):
    every: int = Field(default=10, ge=0, description="gradient-conflict diagnostic every N co-training steps (0 off)")
    window: int = Field(default=8, ge=1, description="recent gradients spanning each subspace")
    max_dim: int = Field(default=1 << 22, gt=0, description="above this many LM parameters, use a CountSketch")
    sketch_dim: int = Field(default=1 << 16, gt=0)


class EvalConfig(_Strict):
    grounding_samples: int = Field(default=64, ge=0, description="held-out grounding samples per evaluation")
    max_new_tokens: int = 48
    constrained_decoding: bool = Field(
        default=False, description="decode grounding answers under the answer style's grammar (tiny model)"
    )
    point_radius: float = Field(default=0.05, gt=0, description="point hit: within this fraction of the diagonal")
    trace_tolerance: float = Field(default=0.1, gt=0, description="trace hit: mean error below this x diagonal")
    sim_recipe: str | None = Field(default=None, description="sim task recipe for closed-loop evaluation")
    sim_episodes: int = Field(default=0, ge=0)
    sim_split: Literal["seen", "unseen", "all"] | None = Field(
        default=None, description="object/container split of the evaluation layouts (None: the sim recipe's)"
    )
    sim_seed_offset: int = Field(default=1_000_000, description="evaluation layouts use seeds from here on")
    sim_max_steps: int = Field(default=200, gt=0, description="control steps before an episode counts as failed")
    execute_steps: int = Field(default=8, ge=1, description="actions executed per predicted chunk")


class JointTuningConfig(_Strict):
    """Fine-tune the first-frame network and the state policy together on the demonstrations (docs/training.md,
    "the ST4VLA ablation"): each demo's first frame -> the network -> its points back-projected (differentiably)
    into the task state -> the state policy -> the action loss on that demo's chunks. The action loss's gradient
    reaches the network scaled by `grad_decay`; with `grounding_weight` > 0 the network keeps training on its
    grounding labels (the rendered first frames' 2-D points) at the same time (spatial-grounding co-training)."""

    steps: int = Field(default=400, ge=1)
    episode_batch: int = Field(default=32, ge=1, description="demo first frames per step")
    steps_per_episode: int = Field(default=8, ge=1, description="control steps drawn per first frame and step")
    grounding_batch: int = Field(default=32, ge=1, description="grounding frames per step (when co-training)")
    grounding_weight: float = Field(default=1.0, ge=0, description="0: no spatial-grounding co-training")
    grad_decay: float = Field(default=1.0, ge=0, le=1, description="scale of the action gradient into the network")
    lr: float = Field(default=3e-4, gt=0)
    perception_lr: float | None = Field(
        default=None, gt=0, description="the first-frame network's learning rate (None: lr); from scratch: higher"
    )
    seed: int = 0


class PerceptionConfig(_Strict):
    """Perceive once, then act (docs/training.md, rung 2b): after the stages, a first-frame network
    (`models.keypoint_net`) is trained on `frames` layouts of the episodes' sim recipe rendered at t = 0 only (no
    physics; seeds from `seed_offset`, disjoint from the episodes' and the evaluator's), and the `task` state's
    per-episode constants then come from what it sees in the first frame of `camera` instead of the expert's plan."""

    camera: str = "front"
    image_size: int = Field(default=128, ge=32, description="first frames are resized to image_size^2")
    frames: int = Field(default=3000, ge=1, description="first frames rendered for training (no physics)")
    per_scene: int = Field(default=12, ge=1, description="frames per loaded scene (objects re-placed, new look)")
    seed_offset: int = Field(default=2_000_000, description="layout seeds: the sim recipe's seed + this")
    steps: int = Field(
        default=1500, ge=0, description="grounding training steps (0: none: joint tuning then trains it from scratch)"
    )
    batch: int = Field(default=32, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    width: int = Field(default=48, ge=8, description="channels of the network's main blocks")
    yaw_bins: int = Field(default=36, ge=2)
    heatmap_weight: float = Field(default=1.0, ge=0)
    crop_rows: tuple[int, int] = Field(
        default=(32, 112), description="rows (of image_size) the network reads: the table"
    )
    seed: int = 0
    joint: JointTuningConfig | None = Field(default=None, description="then fine-tune both networks together")


class TrainRecipe(_Strict):
    name: str = "train"
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    cpu_threads: int | None = Field(default=None, ge=1, description="torch intra-op threads on CPU (None: torch's)")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    stage1: StageConfig = Field(default_factory=lambda: StageConfig(steps=100, grounding_batch=16))
    stage2: StageConfig = Field(default_factory=lambda: StageConfig(steps=100))
    log_every: int = Field(default=10, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    perception: PerceptionConfig | None = Field(default=None, description="perceive once, then act (rung 2b)")
    recipe_dir: str | None = Field(default=None, description="set on load: relative paths resolve against it")

    @model_validator(mode="after")
    def _constrained_decoding_needs_the_tiny_model(self) -> TrainRecipe:
        if self.eval.constrained_decoding and self.model.backbone != "tiny":
            raise ValueError("eval.constrained_decoding works with the tiny model's tokenizer (model.backbone: tiny)")
        return self

    @model_validator(mode="after")
    def _perception_feeds_the_task_state(self) -> TrainRecipe:
        if self.perception is not None and (self.model.policy != "state_mlp" or self.data.state != "task"):
            raise ValueError("perception: needs model.policy: state_mlp and data.state: task (it replaces the task "
                             "state's privileged constants)")  # fmt: skip
        return self

    def fingerprint(self) -> str:
        """Hash of what determines the run (steps, device and paths excluded, so a run can be extended/moved)."""
        data = self.model_dump(mode="json", exclude={"recipe_dir", "device", "cpu_threads"})
        for stage in ("stage1", "stage2"):
            data[stage].pop("steps")
        for key in ("grounding", "episodes", "eval_grounding"):
            data["data"].pop(key)
        data["eval"] = None
        if self.model.backbone == "tiny":  # a checkpoint of another tokenizer cannot be resumed
            from dataengine.train.tokenizer import VOCAB_SIZE

            data["tiny_vocab"] = VOCAB_SIZE
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainRecipe:
    """Read and validate a training recipe with the shared loader (`dataengine.recipe_loader`: `extends:`,
    `${VAR}`, dotted `overrides` such as `{"stage1.steps": 5}`); errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot read training recipe {path}: no such file")
    raw = load_yaml_recipe(path, what="training recipe")
    raw.data.setdefault("recipe_dir", str(raw.path.parent))
    apply_overrides(raw.data, overrides or {})
    return validate(TrainRecipe, raw)


def resolve_data_path(recipe: TrainRecipe, value: str | None, data_root: str | Path | None) -> Path | None:
    """A recipe path made absolute: against `--data` when given, else the recipe's own folder."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    base = Path(data_root) if data_root is not None else Path(recipe.recipe_dir or ".")
    return base / p
