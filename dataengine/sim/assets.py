"""The asset catalog: graspable objects and containers built offline from primitives and generated meshes.

The catalog is YAML (`sim_scenes/assets/catalog.yaml`); users add their own assets by listing more entries, in the
same file or in another catalog file passed in the recipe (`catalogs: [...]`). An object entry gives its look
(name, category, colour, size, attributes), its split (`seen` / `unseen`) and one `shape`:
`box: [hx, hy, hz]`, `cylinder: [r, half_h]`, `sphere: [r]`, `ellipsoid: [rx, ry, rz]`,
`capsule_lying: [r, half_len]`, `mesh: {generator|file, params, scale}` or `parts: [...]` (explicit `Part`s with
the body frame at the object's bottom centre). A container entry gives `container: {type, ...}` with a type from
`CONTAINER_BUILDERS` (tray, plate, bowl, basket, box, bin, crate, dish).

Objects are held out by category: every object of a category has the same split, so the unseen-object track tests
categories never seen in training; `load_catalog` refuses a catalog (all its files together) where a category has
both seen and unseen objects (`split_category_leaks`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from dataengine.errors import RecipeError
from dataengine.recipe_loader import read_yaml_mapping
from dataengine.records.layout import Interior, MeshSpec, Part, Pose, Rgba, SceneObject
from dataengine.sim.meshes import mesh_bounds

SIM_SCENES_DIR = Path(__file__).resolve().parents[2] / "sim_scenes"
DEFAULT_CATALOG = SIM_SCENES_DIR / "assets" / "catalog.yaml"
GRIPPER_MAX_GRASP_WIDTH_M = 0.072  # leaves margin inside the 8 cm opening
MIN_GRASP_HEIGHT_M = 0.036  # keeps the fingertips (3.4 cm below the tool point) off the table


class AssetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    category: str
    color: str
    rgba: Rgba
    size: Literal["small", "medium", "large"]
    attributes: list[str] = Field(default_factory=list)
    split: Literal["seen", "unseen"] = "seen"
    recolor: bool = Field(default=False, description="the task may repaint it from its colour palette")
    mass_kg: float = Field(default=0.08, gt=0)
    friction: float = Field(default=1.0, gt=0)
    shape: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    thumbnail: str | None = Field(default=None, description="a PNG of the object alone (imported assets)")
    source: dict[str, Any] | None = Field(
        default=None, description="where an imported asset came from and how it was processed (informational)"
    )

    @property
    def kind(self) -> str:
        return "container" if self.container is not None else "object"


class Catalog(BaseModel):
    objects: list[AssetSpec]
    containers: list[AssetSpec]
    base_dir: str = Field(description="directory that relative mesh files are resolved against")
    _graspable: dict[str, list[AssetSpec]] = PrivateAttr(default_factory=dict)

    def pool(self, kind: str, split: str) -> list[AssetSpec]:
        """Assets of a kind ('object' or 'container') in a split ('seen', 'unseen' or 'all')."""
        items = self.objects if kind == "object" else self.containers
        return [a for a in items if split == "all" or a.split == split]

    def graspable_pool(self, split: str) -> list[AssetSpec]:
        """The split's objects the gripper can hold (`graspable`), worked out once per catalog: the sampler asks
        every attempt, and a catalog of thousands of objects would otherwise cost a tenth of a second each time."""
        if split not in self._graspable:
            self._graspable[split] = [a for a in self.pool("object", split) if graspable(a, self.base_dir)]
        return list(self._graspable[split])

    def get(self, asset_id: str) -> AssetSpec:
        for asset in self.objects + self.containers:
            if asset.id == asset_id:
                return asset
        raise RecipeError(f"unknown asset {asset_id!r} in the catalog")


def load_catalog(paths: list[str | Path] | None = None) -> Catalog:
    """Read one or more catalog YAML files (later files add assets; duplicate ids are an error)."""
    return _load_catalog(tuple(str(Path(p).resolve()) for p in (paths or [DEFAULT_CATALOG])))


@lru_cache(maxsize=8)
def _load_catalog(paths: tuple[str, ...]) -> Catalog:
    objects: list[AssetSpec] = []
    containers: list[AssetSpec] = []
    seen_ids: set[str] = set()
    for path in paths:
        if not Path(path).is_file():
            raise RecipeError(f"asset catalog {path} does not exist")
        data = read_yaml_mapping(path, "asset catalog")
        for section in ("objects", "containers"):
            for entry in data.get(section, []) or []:
                try:
                    asset = AssetSpec.model_validate(entry)
                except ValidationError as exc:
                    raise RecipeError(f"{path}: bad {section} entry {entry.get('id')!r}: {exc}") from exc
                if asset.id in seen_ids:
                    raise RecipeError(f"{path}: duplicate asset id {asset.id!r}")
                if (section == "containers") != (asset.container is not None):
                    raise RecipeError(f"{path}: {asset.id!r}: containers need 'container', objects need 'shape'")
                if path != paths[0]:
                    asset = _rebase_mesh_files(asset, Path(path).parent, Path(paths[0]).parent)
                seen_ids.add(asset.id)
                (containers if section == "containers" else objects).append(asset)
    leaks = split_category_leaks((a.id, a.category, a.split) for a in objects)
    if leaks:
        raise RecipeError(
            f"asset catalog {', '.join(paths)}: {describe_leaks(leaks)}. Objects are held out by category (the "
            "unseen-object track must test categories never seen in training): give every object of a category the "
            "same split, or give the held-out objects a category of their own"
        )
    return Catalog(objects=objects, containers=containers, base_dir=str(Path(paths[0]).parent))


def split_category_leaks(objects: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, list[str]]]:
    """Categories with both seen and unseen objects: {category: {"seen": [ids], "unseen": [ids]}}, from
    (id, category, split) triples ('all' or other splits are not compared)."""
    by_category: dict[str, dict[str, list[str]]] = {}
    for asset_id, category, split in objects:
        by_category.setdefault(category, {"seen": [], "unseen": []}).setdefault(split, []).append(asset_id)
    return {c: {"seen": v["seen"], "unseen": v["unseen"]} for c, v in sorted(by_category.items())
            if v["seen"] and v["unseen"]}  # fmt: skip


def describe_leaks(leaks: dict[str, dict[str, list[str]]], limit: int = 5) -> str:
    """One line naming the leaking categories and a few of their objects."""
    parts = [
        f"{category!r} (seen {', '.join(ids['seen'][:limit])}; unseen {', '.join(ids['unseen'][:limit])})"
        for category, ids in leaks.items()
    ]
    return f"categories with both seen and unseen objects: {'; '.join(parts)}"


def _rebase_mesh_files(asset: AssetSpec, own_dir: Path, base_dir: Path) -> AssetSpec:
    """Relative mesh files of a catalog other than the first, made relative to the first one's directory (the
    catalog's `base_dir`), so every catalog's paths resolve against the file that lists them."""

    def rebase(file: str) -> str:
        return file if Path(file).is_absolute() else os.path.relpath(own_dir / file, base_dir)

    if asset.thumbnail:
        asset = asset.model_copy(update={"thumbnail": rebase(asset.thumbnail)})
    mesh = (asset.shape or {}).get("mesh")
    if not isinstance(mesh, dict):
        return asset

    mesh = dict(mesh)
    for key in ("file", "texture"):
        if mesh.get(key):
            mesh[key] = rebase(mesh[key])
    mesh["collision"] = [rebase(f) for f in mesh.get("collision", [])]
    return asset.model_copy(update={"shape": {"mesh": mesh}})


# --- objects ------------------------------------------------------------------------------------------------


def _object_parts(asset: AssetSpec, base_dir: str) -> tuple[list[Part], tuple[float, float, float]]:
    """Parts in the body frame (bottom centre) and half extents of the bounding box."""
    shape = asset.shape or {}
    if len(shape) != 1:
        raise RecipeError(f"asset {asset.id!r}: 'shape' needs exactly one of box/cylinder/sphere/... got {shape}")
    ((kind, value),) = shape.items()
    if kind == "box":
        hx, hy, hz = value
        return [Part(shape="box", size_m=[hx, hy, hz], pos_m=(0, 0, hz))], (hx, hy, hz)
    if kind == "cylinder":
        r, hh = value
        return [Part(shape="cylinder", size_m=[r, hh], pos_m=(0, 0, hh))], (r, r, hh)
    if kind == "sphere":
        (r,) = value
        return [Part(shape="sphere", size_m=[r], pos_m=(0, 0, r))], (r, r, r)
    if kind == "ellipsoid":
        rx, ry, rz = value
        return [Part(shape="ellipsoid", size_m=[rx, ry, rz], pos_m=(0, 0, rz))], (rx, ry, rz)
    if kind == "capsule_lying":  # long axis along the body's y
        r, half_len = value
        quat = (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0)
        return [Part(shape="capsule", size_m=[r, half_len], pos_m=(0, 0, r), quat_wxyz=quat)], (r, half_len + r, r)
    if kind == "mesh":
        spec = MeshSpec.model_validate(value)
        lo, hi = mesh_bounds(spec, base_dir)
        offset = (-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2])
        half = tuple(float(v) for v in (hi - lo) / 2)
        return [Part(shape="mesh", mesh=spec, pos_m=tuple(float(v) for v in offset))], half
    if kind == "parts":
        parts = [Part.model_validate(p) for p in value]
        half = parts_half_extents(parts)
        return parts, half
    raise RecipeError(f"asset {asset.id!r}: unknown shape {kind!r}")


def scaled_asset(asset: AssetSpec, factor: float) -> AssetSpec:
    """An object asset `factor` times as large in every direction (mass x factor^3), same id and look."""
    if factor == 1.0 or asset.shape is None:
        return asset
    ((kind, value),) = asset.shape.items()
    if kind == "mesh":
        mesh = MeshSpec.model_validate(value)
        value = {**value, "scale": [float(s) * factor for s in mesh.scale]}
    elif kind == "parts":
        value = [
            {**p, "size_m": [v * factor for v in p.get("size_m", [])],
             "pos_m": [v * factor for v in p.get("pos_m", (0, 0, 0))],
             **({"mesh": {**p["mesh"], "scale": [s * factor for s in p["mesh"].get("scale", (1, 1, 1))]}}
                if p.get("mesh") else {})}
            for p in value
        ]  # fmt: skip
    else:
        value = [float(v) * factor for v in value]
    return asset.model_copy(update={"shape": {kind: value}, "mass_kg": asset.mass_kg * factor**3})


def parts_half_extents(parts: list[Part]) -> tuple[float, float, float]:
    """Rough bounding half extents of explicit parts (boxes and spheres exact, others by their largest size)."""
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for part in parts:
        if part.shape == "box":
            ext = np.asarray(part.size_m[:3])
        else:
            ext = np.full(3, max(part.size_m[:2]) if part.size_m else 0.02)
            if part.shape in ("cylinder", "capsule"):
                ext[2] = part.size_m[1] + (part.size_m[0] if part.shape == "capsule" else 0)
        lo = np.minimum(lo, np.asarray(part.pos_m) - ext)
        hi = np.maximum(hi, np.asarray(part.pos_m) + ext)
    half = (hi - lo) / 2
    return (float(max(abs(lo[0]), hi[0])), float(max(abs(lo[1]), hi[1])), float(half[2]))


def _asset_fields(asset: AssetSpec, uid: str, pose: Pose, rgba: Rgba | None, color: str | None = None) -> dict:
    """The SceneObject fields every asset kind copies from its catalog entry."""
    return {
        "uid": uid,
        "asset_id": asset.id,
        "name": asset.name,
        "category": asset.category,
        "color": color or asset.color,
        "rgba": rgba or asset.rgba,
        "size_label": asset.size,
        "attributes": list(asset.attributes),
        "pose": pose,
        "mass_kg": asset.mass_kg,
        "friction": asset.friction,
    }


def make_object(
    asset: AssetSpec,
    uid: str,
    role: str,
    pose: Pose,
    base_dir: str,
    rgba: Rgba | None = None,
    color: str | None = None,
) -> SceneObject:
    """A scene object for an asset. Grasp: close across the narrower horizontal axis, at mid height."""
    if asset.kind == "container":
        return make_container(asset, uid, pose)
    parts, half = _object_parts(asset, base_dir)
    hx, hy, hz = half
    width_x, width_y = 2 * hx, 2 * hy
    grasp_yaw = 0.0 if width_x <= width_y else math.pi / 2
    grasp_width = min(width_x, width_y)
    grasp_height = float(np.clip(hz, MIN_GRASP_HEIGHT_M, max(2 * hz - 0.012, MIN_GRASP_HEIGHT_M)))
    return SceneObject(
        **_asset_fields(asset, uid, pose, rgba, color),
        role=role,
        kind="object",
        parts=parts,
        half_extents_m=(hx, hy, hz),
        grasp_width_m=grasp_width,
        grasp_yaw_rad=grasp_yaw,
        grasp_height_m=grasp_height,
    )


def graspable(asset: AssetSpec, base_dir: str) -> bool:
    _, (hx, hy, hz) = _object_parts(asset, base_dir)
    return 2 * min(hx, hy) <= GRIPPER_MAX_GRASP_WIDTH_M and 2 * hz >= 0.03


# --- containers -----------------------------------------------------------------------------------------------

WALL_M = 0.006


def _rect_container(half_x: float, half_y: float, height: float, floor: float = 0.006) -> tuple[list[Part], Interior]:
    w = WALL_M / 2
    parts = [Part(shape="box", size_m=[half_x, half_y, floor / 2], pos_m=(0, 0, floor / 2))]
    hh = height / 2
    parts += [
        Part(shape="box", size_m=[w, half_y, hh], pos_m=(half_x - w, 0, hh)),
        Part(shape="box", size_m=[w, half_y, hh], pos_m=(-half_x + w, 0, hh)),
        Part(shape="box", size_m=[half_x - 2 * w, w, hh], pos_m=(0, half_y - w, hh)),
        Part(shape="box", size_m=[half_x - 2 * w, w, hh], pos_m=(0, -half_y + w, hh)),
    ]
    interior = Interior(shape="rect", half_xy_m=(half_x - WALL_M, half_y - WALL_M), floor_z_m=floor, rim_z_m=height)
    return parts, interior


def _round_container(
    radius: float, height: float, segments: int = 16, floor: float = 0.006
) -> tuple[list[Part], Interior]:
    parts = [Part(shape="cylinder", size_m=[radius, floor / 2], pos_m=(0, 0, floor / 2))]
    seg_half_len = radius * math.tan(math.pi / segments) + 0.002
    for k in range(segments):
        angle = 2 * math.pi * k / segments
        r = radius - WALL_M / 2
        quat = (math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2))
        parts.append(
            Part(
                shape="box",
                size_m=[WALL_M / 2, seg_half_len, height / 2],
                pos_m=(r * math.cos(angle), r * math.sin(angle), height / 2),
                quat_wxyz=quat,
            )
        )
    interior = Interior(shape="round", half_xy_m=(radius - WALL_M, radius - WALL_M), floor_z_m=floor, rim_z_m=height)
    return parts, interior


def _container_parts(asset: AssetSpec) -> tuple[list[Part], Interior, tuple[float, float, float]]:
    spec = dict(asset.container or {})
    ctype = spec.pop("type", None)
    if ctype in ("tray", "box", "bin", "basket", "crate"):
        hx, hy, height = spec["half_x"], spec["half_y"], spec["height"]
        parts, interior = _rect_container(hx, hy, height)
        return parts, interior, (hx, hy, height / 2)
    if ctype in ("bowl", "dish"):
        r, height = spec["radius"], spec["height"]
        parts, interior = _round_container(r, height, int(spec.get("segments", 16)))
        return parts, interior, (r, r, height / 2)
    if ctype == "plate":
        r, rim = spec["radius"], spec.get("rim", 0.012)
        parts, interior = _round_container(r, rim, int(spec.get("segments", 16)), floor=0.008)
        return parts, interior, (r, r, rim / 2)
    raise RecipeError(
        f"container {asset.id!r}: unknown type {ctype!r}; valid: tray, box, bin, basket, crate, bowl, dish, plate"
    )


def make_container(asset: AssetSpec, uid: str, pose: Pose, rgba: Rgba | None = None) -> SceneObject:
    parts, interior, half = _container_parts(asset)
    return SceneObject(
        **_asset_fields(asset, uid, pose, rgba),
        role="place",
        kind="container",
        parts=parts,
        half_extents_m=half,
        interior=interior,
    )
