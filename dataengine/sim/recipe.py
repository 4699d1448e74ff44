"""Typed simulation recipes: a task template (`sim_scenes/tasks/*.yaml`) plus generation settings.

A recipe (`recipes/sim/*.yaml`) names a task template and a camera rig, may override any template field under
`task:`, and sets the episode count, seed, asset split, render preset, cameras and resolution. Everything is
validated before any work starts, and the resolved recipe is saved next to the output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataengine.errors import RecipeError
from dataengine.recipe_loader import apply_overrides, deep_merge, load_yaml_recipe, read_yaml_mapping, validate
from dataengine.records.layout import Rgba
from dataengine.sim.assets import SIM_SCENES_DIR
from dataengine.sim.backends.base import RenderQuality
from dataengine.sim.families import DEFAULT_FAMILY, FAMILIES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableSpec(_Strict):
    top_z_m: float = 0.0
    center_xy_m: tuple[float, float] = (0.4, 0.0)
    half_size_m: tuple[float, float] = (0.55, 0.65)


class LayoutSpec(_Strict):
    object_region_x_m: tuple[float, float]
    object_region_y_m: tuple[float, float]
    container_region_x_m: tuple[float, float]
    container_region_y_m: tuple[float, float]
    distractors: tuple[int, int] = (1, 3)
    min_separation_m: float = Field(default=0.03, ge=0)
    yaw_range_rad: tuple[float, float] = (-3.1416, 3.1416)
    max_layout_tries: int = Field(default=200, ge=1)


class RobotSpec(_Strict):
    home_arm_qpos_rad: tuple[float, float, float, float, float, float, float]
    base_jitter_m: float = Field(default=0.0, ge=0, le=0.1)
    start_joint_jitter_rad: float = Field(default=0.0, ge=0, le=0.3)


class RandomizationSpec(_Strict):
    table_rgbas: list[Rgba] = Field(min_length=1)
    table_textures: list[Literal["none", "checker", "grain", "noise"]] = Field(min_length=1)
    floor_rgbas: list[Rgba] = Field(min_length=1)
    object_palette: dict[str, Rgba] = Field(default_factory=dict, description="colour name -> RGBA for repaints")
    object_recolor_prob: float = Field(default=0.0, ge=0, le=1, description="chance a `recolor` asset is repainted")
    light_diffuse: tuple[float, float] = (0.45, 0.85)
    light_pos_jitter_m: float = 0.3
    camera_pos_jitter_m: float = 0.02
    camera_lookat_jitter_m: float = 0.02


EXPERT_PHASES = ("approach", "descend", "close", "lift", "transport", "lower", "open", "retreat", "settle")


class ExpertSpec(_Strict):
    pregrasp_height_m: float = 0.10
    lift_height_m: float = 0.16
    place_clearance_m: float = 0.025
    max_speed_m_s: float = Field(default=0.3, gt=0)
    slow_speed_m_s: float = Field(default=0.15, gt=0)
    max_rot_speed_rad_s: float = Field(default=1.5, gt=0)
    gripper_close_steps: int = Field(default=6, ge=1)
    gripper_open_steps: int = Field(default=4, ge=1)
    settle_steps: int = Field(default=4, ge=0)


class PerturbSpec(_Strict):
    """Recovery demonstrations (DART style): in a share of the episodes, temporally correlated noise is added to
    the joint targets the robot executes during the named expert phases, while the recorded actions stay the
    expert's targets. The label of every perturbed state (target - measured joints) then points back to the expert's
    path: the demonstrations show how to recover, not only the nominal motion."""

    episode_fraction: float = Field(default=0.5, ge=0, le=1, description="share of the episodes that are perturbed")
    joint_noise_rad: float = Field(default=0.03, gt=0, le=0.3, description="stationary std of the noise per joint")
    correlation_steps: float = Field(
        default=4.0, ge=1, description="time constant of the Ornstein-Uhlenbeck noise, in control steps"
    )
    phases: list[str] = Field(
        default_factory=lambda: ["approach", "descend", "lift", "transport", "lower"],
        min_length=1,
        description="expert phases whose steps are perturbed",
    )

    @model_validator(mode="after")
    def _known_phases(self) -> PerturbSpec:
        unknown = [p for p in self.phases if p not in EXPERT_PHASES]
        if unknown:
            raise ValueError(f"perturb.phases {unknown} are not expert phases; they are {list(EXPERT_PHASES)}")
        return self


class WallsSpec(_Strict):
    """Backdrop walls around the table (visual only). A wall never stands between a world camera and the table:
    it is pushed back behind any camera on its side."""

    prob: float = Field(default=1.0, ge=0, le=1, description="share of the episodes that have walls")
    sides: list[Literal["back", "front", "left", "right"]] = Field(
        default_factory=lambda: ["back", "left", "right"], min_length=1, description="back = behind the robot (-x)"
    )
    distance_m: tuple[float, float] = Field(default=(0.3, 1.0), description="gap between the table edge and a wall")
    height_m: float = Field(default=1.5, gt=0, le=5, description="wall height above the table top")
    rgbas: list[Rgba] = Field(
        default_factory=lambda: [(0.85, 0.85, 0.82, 1.0), (0.55, 0.62, 0.7, 1.0), (0.7, 0.6, 0.5, 1.0)], min_length=1
    )
    textures: list[Literal["none", "checker", "grain", "noise"]] = Field(default_factory=lambda: ["none"], min_length=1)

    @model_validator(mode="after")
    def _distance(self) -> WallsSpec:
        low, high = self.distance_m
        if not 0 <= low <= high <= 5:
            raise ValueError(f"variation.walls.distance_m {self.distance_m} must satisfy 0 <= low <= high <= 5")
        return self


def _check_range(name: str, value: tuple[float, float], low: float, high: float) -> None:
    if not low <= value[0] <= value[1] <= high:
        raise ValueError(f"variation.{name} {list(value)} must satisfy {low} <= low <= high <= {high}")


class VariationSpec(_Strict):
    """Randomization axes beyond the task template's (off when the recipe has no `variation:`). Each is drawn per
    episode after everything else, so setting one never changes the other draws, and each is recorded in the
    episode: light colours and directions and camera fields of view and poses in its look; object scales, table
    height and image texture, light count and walls in its layout."""

    light_color_jitter: float = Field(default=0.0, ge=0, le=0.5, description="per-channel diffuse factor 1 +- this")
    light_dir_jitter_rad: float = Field(default=0.0, ge=0, le=0.8, description="tilt of each light's direction")
    camera_fovy_jitter_deg: float = Field(default=0.0, ge=0, le=15, description="world cameras' fovy +- this")
    object_scale: tuple[float, float] = Field(
        default=(1.0, 1.0), description="uniform scale range of graspable objects (mass scales with its cube)"
    )
    object_scale_by_category: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="scale range per catalog category (others: object_scale)"
    )
    table_height_jitter_m: float = Field(
        default=0.0, ge=0, le=0.15, description="table top (with the robot on it) +- this; cameras stay"
    )
    table_texture_files: list[str] = Field(
        default_factory=list, description="PNG images, one drawn per episode for the table top (replaces textures)"
    )
    light_count: tuple[int, int] | None = Field(
        default=None, description="lights per scene [low, high]: the rig's first ones, or more at random spots"
    )
    camera_pos_jitter_m: float = Field(default=0.0, ge=0, le=0.2, description="world cameras moved by +- this")
    camera_rot_jitter_deg: float = Field(default=0.0, ge=0, le=15, description="world cameras turned by up to this")
    walls: WallsSpec | None = Field(default=None, description="backdrop walls (none when absent)")

    @model_validator(mode="after")
    def _ranges(self) -> VariationSpec:
        _check_range("object_scale", self.object_scale, 0.5, 1.5)
        for category, bounds in self.object_scale_by_category.items():
            _check_range(f"object_scale_by_category.{category}", bounds, 0.5, 1.5)
        if self.light_count is not None:
            _check_range("light_count", self.light_count, 1, 8)
        for path in self.table_texture_files:
            if not path.lower().endswith(".png"):
                raise ValueError(f"variation.table_texture_files: {path} is not a PNG (MuJoCo reads PNG textures)")
        return self

    def scales_objects(self) -> bool:
        return self.object_scale != (1.0, 1.0) or bool(self.object_scale_by_category)

    def scale_range(self, category: str) -> tuple[float, float]:
        return self.object_scale_by_category.get(category, self.object_scale)


LATER_VARIATION_AXES = (
    "object_scale_by_category", "table_height_jitter_m", "table_texture_files", "light_count", "camera_pos_jitter_m",
    "camera_rot_jitter_deg", "walls",
)  # fmt: skip


class TaskSpec(_Strict):
    name: str
    family: str = Field(default=DEFAULT_FAMILY, description="task family (`dataengine.sim.families`)")
    relation_by_container: dict[str, Literal["in", "on"]] = Field(default_factory=dict)
    table: TableSpec = TableSpec()
    layout: LayoutSpec
    robot: RobotSpec
    randomization: RandomizationSpec
    expert: ExpertSpec = ExpertSpec()

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value not in FAMILIES:
            raise ValueError(f"unknown task family {value!r}; known: {', '.join(FAMILIES)}")
        return value


RENDER_PRESETS: dict[str, RenderQuality] = {
    "fast": RenderQuality(name="fast", shadows=False, msaa_samples=0, reflections=False, robot_visual_fraction=0.1),
    "standard": RenderQuality(
        name="standard", shadows=True, shadow_size=1024, msaa_samples=0, reflections=False, robot_visual_fraction=0.25
    ),
    "high": RenderQuality(name="high", shadows=True, shadow_size=2048, msaa_samples=4, reflections=True),
}


class RenderSpec(_Strict):
    preset: Literal["fast", "standard", "high"] = "fast"
    cameras: list[str] = Field(default_factory=lambda: ["front", "wrist"], min_length=1)
    width: int = Field(default=224, ge=16, le=2048)
    height: int = Field(default=224, ge=16, le=2048)
    depth: bool = False
    segmentation: bool = False
    jpeg_quality: int = Field(default=90, ge=50, le=100)
    min_mean_intensity: float = Field(default=60.0, ge=0, le=255, description="re-draw looks darker than this")
    max_redraws: int = Field(default=5, ge=0)

    @property
    def quality(self) -> RenderQuality:
        return RENDER_PRESETS[self.preset]


class SimRecipe(_Strict):
    name: str
    task: TaskSpec
    camera_rig: str = "default"
    catalogs: list[str] = Field(default_factory=list, description="extra catalog YAML files (paths)")
    split: Literal["seen", "unseen", "all"] = "seen"
    seed: int = 0
    episodes: int = Field(default=10, ge=1)
    episodes_per_shard: int = Field(default=16, ge=1)
    control_hz: float = Field(default=10.0, gt=0, le=100)
    max_attempts_per_episode: int = Field(default=30, ge=1)
    trace_horizon: int = Field(default=11, ge=2)
    backend: Literal["mujoco", "isaac"] = "mujoco"
    rewriter: str = "offline"
    render: RenderSpec = RenderSpec()
    perturb: PerturbSpec | None = Field(default=None, description="recovery demonstrations (off when absent)")
    variation: VariationSpec | None = Field(default=None, description="more randomization axes (off when absent)")

    @model_validator(mode="after")
    def _cameras_known(self) -> SimRecipe:
        from dataengine.sim.rig import load_rig

        names = [c["name"] for c in load_rig(self.camera_rig)["cameras"]]
        unknown = [c for c in self.render.cameras if c not in names]
        if unknown:
            raise ValueError(f"cameras {unknown} are not in rig {self.camera_rig!r}; it has {names}")
        return self

    def resolved(self) -> dict:
        """The recipe as JSON data (`recipe.resolved.json`). `task.family` is left out when it is pick_place, the
        family every recipe had before families existed, so their outputs and fingerprints keep their bytes."""
        data = self.model_dump(mode="json")
        if data["task"]["family"] == DEFAULT_FAMILY:
            del data["task"]["family"]
        return data

    def fingerprint(self) -> str:
        """Hash of everything that changes the output (not the episode count: it only extends the work list)."""
        # optional sections only count when set, so recipes without them keep the fingerprints they always had
        data = self.resolved()
        del data["episodes"]
        for name in ("perturb", "variation"):
            if getattr(self, name) is None:
                del data[name]
        if self.variation is not None:  # axes added later count only when set: earlier variation recipes keep theirs
            defaults = VariationSpec().model_dump(mode="json")
            for key in LATER_VARIATION_AXES:
                if data["variation"][key] == defaults[key]:
                    del data["variation"][key]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _task_template(name_or_path: str, recipe_dir: Path) -> dict:
    candidates = [Path(name_or_path), recipe_dir / name_or_path, SIM_SCENES_DIR / "tasks" / f"{name_or_path}.yaml"]
    for path in candidates:
        if path.is_file():
            return read_yaml_mapping(path, "task template")
    raise RecipeError(f"task template {name_or_path!r} not found (looked in {[str(c) for c in candidates]})")


def load_recipe(path: str | Path, **overrides) -> SimRecipe:
    """Read and validate a simulation recipe with the shared loader (`dataengine.recipe_loader`: `extends:`,
    `${VAR}`); the task template it names is the base of its `task:` section; `overrides` replace top-level keys
    (e.g. episodes=4; None values are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} does not exist")
    raw = load_yaml_recipe(path, what="simulation recipe")
    data = raw.data
    template_name = data.pop("task_template", "pick_place")
    data["task"] = deep_merge(_task_template(template_name, raw.path.parent), data.pop("task", {}) or {})
    data["catalogs"] = [str((raw.path.parent / c).resolve()) for c in data.get("catalogs", [])]
    variation = data.get("variation")
    if isinstance(variation, dict) and variation.get("table_texture_files"):
        files = [(raw.path.parent / f).resolve() for f in variation["table_texture_files"]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise RecipeError(f"{raw.path}: variation.table_texture_files not found: {missing}")
        variation["table_texture_files"] = [str(f) for f in files]
    apply_overrides(data, {k: v for k, v in overrides.items() if v is not None})
    return validate(SimRecipe, raw)
