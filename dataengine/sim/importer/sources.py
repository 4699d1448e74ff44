"""Find the meshes under a source folder, hash them with their companion files, and read their metadata.

MuJoCo object MJCF files (`.xml` with a `<mujoco>` root, see `mjcf`) are sources too: one object each, their digest
covering the mesh and texture files they name; those mesh files, and files of the same stem beside them (other
formats of the same mesh, as robosuite ships them), are not imported on their own.

Metadata for `chair.obj` comes from a sidecar `chair.yaml` or `chair.json` (see `SourceMeta`) and, where that is
silent, from the path: the parent folder names the category unless it is the source root, the file stem the name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataengine.sim.importer.mjcf import MJCF_SUFFIX, is_mjcf, mjcf_files

MESH_SUFFIXES = (".obj", ".stl", ".glb", ".gltf", ".ply")
UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}


class SourceMeta(BaseModel):
    """What a sidecar file may say about one mesh (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    category: str | None = None
    color: str | None = None
    attributes: list[str] = Field(default_factory=list)
    split: Literal["seen", "unseen"] | None = None
    unit: Literal["m", "cm", "mm", "in"] | None = Field(default=None, description="the unit of the file's numbers")
    size_m: float | None = Field(default=None, gt=0, description="longest side of the real object, metres")
    up: Literal["y", "z"] | None = Field(default=None, description="the file's up axis (glTF: y, others: z)")
    density_kg_m3: float | None = Field(default=None, gt=0)
    mass_kg: float | None = Field(default=None, gt=0)


class MetadataError(ValueError):
    """A sidecar that cannot be read or does not follow `SourceMeta`."""


@dataclass(frozen=True)
class SourceMesh:
    path: Path
    rel: str  # path relative to the source root, '/'-separated
    digest: str  # sha256 over the mesh, its companion files and its sidecar
    meta: dict  # the sidecar's fields (validated later, in the worker, so a bad one quarantines one mesh)


def _companions(path: Path) -> list[Path]:
    """Files a mesh reads besides itself: an OBJ's material libraries and their textures, a glTF's buffers/images,
    an MJCF file's meshes and textures."""
    found: list[Path] = []
    if path.suffix.lower() == MJCF_SUFFIX:
        return mjcf_files(path)
    try:
        if path.suffix.lower() == ".obj":
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("mtllib "):
                    mtl = path.parent / line.split(None, 1)[1].strip()
                    found.append(mtl)
                    if mtl.is_file():
                        for mline in mtl.read_text(encoding="utf-8", errors="replace").splitlines():
                            if mline.strip().lower().startswith("map_"):
                                found.append(mtl.parent / mline.split()[-1])
        elif path.suffix.lower() == ".gltf":
            doc = json.loads(path.read_text(encoding="utf-8"))
            for item in doc.get("buffers", []) + doc.get("images", []):
                uri = item.get("uri", "")
                if uri and not uri.startswith("data:"):
                    found.append(path.parent / uri)
    except (OSError, ValueError):
        pass  # the loader reports an unreadable mesh with its reason
    return sorted({p for p in found if p.is_file()})


def sidecar_path(path: Path) -> Path | None:
    for suffix in (".yaml", ".yml", ".json"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> dict:
    """The raw sidecar mapping of a mesh ({} when it has none)."""
    side = sidecar_path(path)
    if side is None:
        return {}
    try:
        data = yaml.safe_load(side.read_text(encoding="utf-8"))  # YAML reads JSON too
    except (OSError, yaml.YAMLError) as exc:
        raise MetadataError(f"{side.name}: unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise MetadataError(f"{side.name}: must be a mapping")
    return data


def parse_meta(raw: dict) -> SourceMeta:
    try:
        return SourceMeta.model_validate(raw)
    except ValidationError as exc:
        raise MetadataError(str(exc).replace("\n", "; ")) from exc


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    for extra in [path, *_companions(path), *([sidecar_path(path)] if sidecar_path(path) else [])]:
        hasher.update(extra.name.encode() + b"\0")
        with open(extra, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                hasher.update(block)
    return hasher.hexdigest()


def discover(src: Path) -> list[SourceMesh]:
    """Every mesh file and MJCF object file under `src` (sorted by relative path), with its digest and raw sidecar
    metadata; meshes an MJCF file names (and their same-stem siblings) only as part of it."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in (*MESH_SUFFIXES, MJCF_SUFFIX))
    models = [p for p in files if p.suffix.lower() == MJCF_SUFFIX and is_mjcf(p)]
    named = {f for m in models for f in mjcf_files(m) if f.suffix.lower() in (*MESH_SUFFIXES, ".msh")}
    taken = {(f.parent, f.stem) for f in named}
    found = []
    for path in files:
        if path.suffix.lower() == MJCF_SUFFIX and path not in models:
            continue  # other XML files (a sidecar never is one: sidecars are YAML or JSON)
        if path.suffix.lower() != MJCF_SUFFIX and (path.resolve().parent, path.stem) in taken:
            continue
        try:
            meta = read_sidecar(path)
        except MetadataError as exc:
            meta = {"__error__": str(exc)}
        found.append(SourceMesh(path, path.relative_to(src).as_posix(), file_digest(path), meta))
    return found


def default_name(rel: str) -> str:
    """'kitchen/soup_can_02.obj' -> 'soup can'."""
    stem = Path(rel).stem.lower()
    words = [w for w in re.split(r"[^a-z]+", stem) if w]
    return " ".join(words) or "object"


def default_category(rel: str) -> str:
    """The parent folder ('kitchen/soup_can.obj' -> 'kitchen'), else the name."""
    parent = Path(rel).parent.name
    return " ".join(w for w in re.split(r"[^a-z]+", parent.lower()) if w) or default_name(rel)


def asset_id(rel: str) -> str:
    """A catalog id from the relative path: lowercase letters, digits and underscores."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", str(Path(rel).with_suffix("")).lower())).strip("_") or "mesh"


ROBOSUITE_DIR_ENV = "DATAENGINE_ROBOSUITE_DIR"
ROBOSUITE_TEXTURED = ("bread.xml", "can.xml", "cereal.xml", "lemon.xml", "milk.xml")  # textured household objects


def robosuite_objects_dir() -> Path | None:
    """robosuite's folder of object XMLs (textured household objects), found without importing robosuite (its pins
    clash with ours, so it may live outside this environment: $DATAENGINE_ROBOSUITE_DIR names its package folder,
    e.g. one installed with `pip install --no-deps --target DIR robosuite`); None when absent."""
    import importlib.util
    import os

    root = os.environ.get(ROBOSUITE_DIR_ENV)
    if not root:
        spec = importlib.util.find_spec("robosuite")
        root = str(Path(spec.origin).parent) if spec and spec.origin else None
    objects = Path(root) / "models" / "assets" / "objects" if root else None
    return objects if objects and (objects / "bread.xml").is_file() else None
