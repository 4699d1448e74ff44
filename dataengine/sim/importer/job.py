"""The import job: one Ray task per distinct mesh (by content hash), resumable, cached across runs.

`CATALOG_DIR` receives `meshes/<hash16>/` (visual.obj, texture.png, collision_NN.obj, thumbnail.png),
`catalog.yaml` (objects in the generator's catalog format, with each entry's `source` provenance and
`thumbnail`), `quarantine.jsonl` (one line per rejected mesh: path, reason, detail) and `import_report.json`
(counts, reasons and timings). Processed meshes are also kept in `$DATAENGINE_CACHE_DIR/asset_import/` under
(content hash, category, options), so importing the same file again, into any catalog, copies the result instead
of recomputing it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from dataengine.errors import InputError, MissingDependencyError
from dataengine.runtime.atomic import atomic_write_text
from dataengine.runtime.jobs import Task, job_lock, mark_complete, run_tasks
from dataengine.sim.importer.describe import DescribeOptions

CATALOG_NAME = "catalog.yaml"
QUARANTINE_NAME = "quarantine.jsonl"
REPORT_NAME = "import_report.json"
ENTRY_NAME = "entry.json"
THUMBNAIL_NAME = "thumbnail.png"
log = logging.getLogger(__name__)


class ImportOptions(BaseModel):
    """Everything that changes the output of an import (its fingerprint)."""

    model_config = ConfigDict(extra="forbid")

    collision: Literal["coacd", "convex-hull"] = "coacd"
    coacd_threshold: float = Field(default=0.08, gt=0, le=1)
    max_collision_pieces: int = Field(default=16, ge=1)
    max_faces: int = Field(default=500_000, ge=4, description="meshes with more triangles are quarantined")
    max_visual_faces: int = Field(default=20_000, ge=4, description="visual meshes are decimated to this")
    max_size_m: float = Field(default=0.6, gt=0, description="longer objects (after scaling) are quarantined")
    max_texture_px: int = Field(default=1024, ge=16)
    split: Literal["seen", "unseen"] = "seen"
    unseen_categories: list[str] = Field(default_factory=list, description="categories held out as 'unseen'")
    grasp_trials: int = Field(default=3, ge=0, description="scripted pick-and-place trials per object (0: skip)")
    grasp_min: int = Field(default=2, ge=0, description="successful trials an object needs to be kept")
    thumbnail_px: int = Field(default=128, ge=0, le=1024, description="side of the PNG thumbnail (0: none)")
    include: list[str] = Field(
        default_factory=list, description="import only files whose path under SRC matches one of these globs"
    )

    def key(self) -> str:
        """Fingerprint of the whole import (a resumed job must have the same)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]

    def geometry_key(self) -> str:
        """Fingerprint of what shapes the mesh files (the cache key; splits only change the catalog entries)."""
        data = self.model_dump(
            mode="json", exclude={"split", "unseen_categories", "grasp_trials", "grasp_min", "include"}
        )
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def cache_root() -> Path:
    from dataengine.sim.backends.mjcf import mesh_cache_dir

    return mesh_cache_dir().parent / "asset_import"


def _process(source: dict, opts: ImportOptions, folder: Path) -> dict:
    """Load, check, normalize and decompose one mesh into `folder`; the geometry part of its entry."""
    from dataengine.sim.importer.collision import collision_pieces
    from dataengine.sim.importer.load import load_mesh
    from dataengine.sim.importer.normalize import normalize
    from dataengine.sim.importer.sources import parse_meta
    from dataengine.sim.importer.write import color_name, png_bytes, size_label, write_files

    meta = parse_meta(source["meta"])
    loaded = load_mesh(source["path"], opts.max_faces)
    suffix = Path(source["path"]).suffix.lower()
    norm = normalize(
        loaded, meta, suffix, source["category"], max_size_m=opts.max_size_m, max_visual_faces=opts.max_visual_faces
    )
    t0 = time.perf_counter()
    pieces, method = collision_pieces(
        norm.vertices, norm.faces, opts.collision, threshold=opts.coacd_threshold, max_pieces=opts.max_collision_pieces
    )
    collision_s = time.perf_counter() - t0
    png = png_bytes(loaded.texture, opts.max_texture_px) if loaded.texture is not None else None
    mesh_spec = write_files(folder, norm.vertices, norm.faces, norm.uv, png, pieces)
    rgba = display_rgba(meta.color, [round(c, 4) for c in loaded.rgba], png is not None)
    thumbnail = _thumbnail(folder, mesh_spec, rgba, norm.vertices, opts.thumbnail_px)
    extent = norm.vertices.max(axis=0) - norm.vertices.min(axis=0)
    longest = float(extent.max())
    return {
        "mesh": mesh_spec,
        "rgba": [round(c, 4) for c in loaded.rgba],
        "color": color_name(loaded.rgba, loaded.texture),
        "mass_kg": norm.mass_kg,
        "size": size_label(longest),
        "notes": {
            **norm.notes,
            "collision": method,
            "collision_pieces": len(pieces),
            "extent_m": [round(float(v), 5) for v in extent],
            "volume_m3": float(f"{norm.volume_m3:.6g}"),
            "visual_faces": len(norm.faces),
            "textured": png is not None,
        },
        "collision_s": round(collision_s, 4),
        **thumbnail,
    }


def _thumbnail(folder: Path, mesh_spec: dict, rgba, vertices, size_px: int) -> dict:
    """{"thumbnail": file} after rendering it into `folder`; {"thumbnail_error": why} when MuJoCo cannot render
    here (no OpenGL): the object is kept, without a thumbnail."""
    if not size_px:
        return {}
    from dataengine.sim.importer.thumbnail import render_thumbnail

    try:
        png = render_thumbnail(folder, mesh_spec, rgba, vertices, size_px)
    except Exception as exc:  # the renderer's errors differ per GL backend
        log.warning("thumbnail not rendered in %s: %s", folder.name, exc)
        return {"thumbnail_error": f"{type(exc).__name__}: {exc}"[:300]}
    (folder / THUMBNAIL_NAME).write_bytes(png)
    return {"thumbnail": THUMBNAIL_NAME}


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary folder into place; a folder already there (another worker) wins."""
    try:
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def import_one(task: Task, out_dir: Path) -> dict:
    """Import one mesh (a Ray task): from the cache when it holds this mesh, else processed. Never raises for a
    bad mesh: the result says `quarantined` with the reason."""
    from dataengine.sim.importer.load import MeshRejected
    from dataengine.sim.importer.sources import MetadataError, parse_meta

    source = task.payload["source"]
    opts = ImportOptions.model_validate(task.payload["options"])
    digest = source["digest"]
    t0 = time.perf_counter()
    if "__error__" in source["meta"]:
        return _quarantined(source, "bad_metadata", source["meta"]["__error__"])
    category_key = hashlib.sha256(source["category"].encode()).hexdigest()[:8]  # priors depend on the category
    cache = cache_root() / opts.geometry_key() / f"{digest}-{category_key}"
    cached = (cache / ENTRY_NAME).is_file()
    if not cached:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.tmp{task.task_id}{time.monotonic_ns()}")
        try:
            geometry = _process(source, opts, tmp)
        except (MeshRejected, MetadataError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            reason = getattr(exc, "reason", "bad_metadata")
            return _quarantined(source, reason, getattr(exc, "detail", str(exc)))
        atomic_write_text(tmp / ENTRY_NAME, json.dumps(geometry, sort_keys=True))
        _publish(tmp, cache)
    geometry = json.loads((cache / ENTRY_NAME).read_text(encoding="utf-8"))
    folder = Path(out_dir) / "meshes" / digest[:16]
    if not (folder / ENTRY_NAME).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f"{folder.name}.tmp{time.monotonic_ns()}")
        shutil.copytree(cache, tmp)
        _publish(tmp, folder)
    meta = parse_meta(source["meta"])
    entry = _entry(source, meta, geometry, opts, f"meshes/{digest[:16]}")
    if opts.grasp_trials:
        grasp = _grasp_result(entry, out_dir, cache, opts.grasp_trials)
        entry["source"]["grasp_trials"] = f"{grasp['successes']}/{grasp['trials']}"
        if grasp["successes"] < opts.grasp_min:
            detail = f"picked and placed in {grasp['successes']} of {grasp['trials']} trials: {grasp['failures']}"
            return _quarantined(source, "not_graspable", detail)
    return {
        "status": "ok",
        "rel": source["rel"],
        "entry": entry,
        "given": sorted(k for k in ("name", "category", "color", "attributes") if source["meta"].get(k)),
        "cached": cached,
        "seconds": round(time.perf_counter() - t0, 4),
        "collision_s": 0.0 if cached else geometry["collision_s"],
        "faces": geometry["notes"]["visual_faces"],
    }


def _grasp_result(entry: dict, out_dir: Path, cache: Path, trials: int) -> dict:
    """The scripted expert's trials on this object, cached beside its files."""
    from dataengine.sim.importer.grasp import grasp_trials

    path = cache / f"grasp-{trials}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    result = grasp_trials(entry, out_dir, trials)
    atomic_write_text(path, json.dumps(result, sort_keys=True))
    return result


def _entry(source: dict, meta, geometry: dict, opts: ImportOptions, prefix: str) -> dict:
    from dataengine.sim.importer.sources import asset_id, default_name

    category = source["category"]
    split = split_for(category, meta.split, opts)
    mesh = {k: v for k, v in geometry["mesh"].items() if k != "collision"}
    mesh = {k: f"{prefix}/{v}" for k, v in mesh.items()}
    mesh["collision"] = [f"{prefix}/{f}" for f in geometry["mesh"]["collision"]]
    rgba = display_rgba(meta.color, geometry["rgba"], geometry["notes"]["textured"])
    return {
        "id": asset_id(source["rel"]),
        "name": meta.name or default_name(source["rel"]),
        "category": category,
        "color": meta.color or geometry["color"],
        "rgba": rgba,
        "size": geometry["size"],
        "attributes": list(meta.attributes),
        "split": split,
        "mass_kg": geometry["mass_kg"],
        "shape": {"mesh": mesh},
        **({"thumbnail": f"{prefix}/{geometry['thumbnail']}"} if geometry.get("thumbnail") else {}),
        "source": {"path": source["rel"], "sha256": source["digest"], **geometry["notes"],
                   **({"thumbnail_error": geometry["thumbnail_error"]} if "thumbnail_error" in geometry else {})},
    }  # fmt: skip


def display_rgba(color: str | None, rgba: list[float], textured: bool) -> list[float]:
    """The catalog colour: the metadata's named colour paints an untextured mesh (instructions name it)."""
    from dataengine.sim.importer.write import COLOR_NAMES

    return [*COLOR_NAMES[color], 1.0] if color in COLOR_NAMES and not textured else rgba


def split_for(category: str, meta_split: str | None, opts: ImportOptions) -> str:
    """An imported object's split: its sidecar's, else unseen for a held-out category, else the import's."""
    return meta_split or ("unseen" if category in opts.unseen_categories else opts.split)


def check_category_splits(tasks: list[Task], opts: ImportOptions) -> None:
    """Refuse an import whose catalog would have a category with both seen and unseen objects (held-out tracks
    hold out whole categories; `load_catalog` would refuse the result)."""
    from dataengine.sim.assets import describe_leaks, split_category_leaks
    from dataengine.sim.importer.sources import parse_meta

    planned = []
    for task in tasks:
        source = task.payload["source"]
        try:
            meta_split = parse_meta(source["meta"]).split if "__error__" not in source["meta"] else None
        except ValueError:
            meta_split = None  # quarantined as bad_metadata by its task
        planned.append((source["rel"], source["category"], split_for(source["category"], meta_split, opts)))
    leaks = split_category_leaks(planned)
    if leaks:
        raise InputError(
            f"{describe_leaks(leaks)}. Objects are held out by category: hold whole categories out with "
            "--unseen-categories, and drop `split` from sidecars that disagree with their category"
        )


def _quarantined(source: dict, reason: str, detail: str) -> dict:
    return {"status": "quarantined", "rel": source["rel"], "reason": reason, "detail": detail[:500]}


def import_tasks(src: Path, opts: ImportOptions) -> tuple[list[Task], list[dict]]:
    """(one task per distinct mesh content, duplicates skipped: {rel, same_as})."""
    from dataengine.sim.importer.sources import default_category, discover, parse_meta

    tasks, duplicates, first_by_digest = [], [], {}
    for mesh in discover(src):
        if opts.include and not any(fnmatch.fnmatchcase(mesh.rel, pattern) for pattern in opts.include):
            continue
        if mesh.digest in first_by_digest:
            duplicates.append({"rel": mesh.rel, "same_as": first_by_digest[mesh.digest]})
            continue
        first_by_digest[mesh.digest] = mesh.rel
        try:
            category = parse_meta(mesh.meta).category if "__error__" not in mesh.meta else None
        except ValueError:
            category = None  # the worker quarantines the mesh with the metadata error
        source = {
            "path": str(mesh.path),
            "rel": mesh.rel,
            "digest": mesh.digest,
            "meta": mesh.meta,
            "category": category or default_category(mesh.rel),
        }
        tasks.append(Task(task_id=f"mesh-{mesh.digest[:16]}", payload={"source": source, "options": opts.model_dump()}))
    return tasks, duplicates


def _unique_ids(entries: list[dict]) -> list[dict]:
    seen: Counter = Counter(e["id"] for e in entries)
    for e in entries:
        if seen[e["id"]] > 1:  # same file name in two folders: keep both, told apart by content hash
            e["id"] = f"{e['id']}_{e['source']['sha256'][:6]}"
    return entries


def import_assets(
    src: str | Path,
    out_dir: str | Path,
    opts: ImportOptions | None = None,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    show_progress: bool = True,
    describe: DescribeOptions | None = None,
) -> dict:
    """Import every mesh under `src` into the catalog folder `out_dir`; returns the report.

    `describe` (default offline: names from metadata and file names) may have a model describe each object from
    its thumbnail (`importer.describe`); that runs here, in the driver, after the tasks, from its reply cache.
    """
    src, out_dir = Path(src), Path(out_dir)
    opts = opts or ImportOptions()
    if not src.is_dir():
        raise InputError(f"mesh source {src} is not a folder")
    if opts.collision == "coacd" and importlib.util.find_spec("coacd") is None:  # never imported here: see collision
        raise MissingDependencyError("coacd", "sim", "Convex decomposition (or pass --collision convex-hull)")
    tasks, duplicates = import_tasks(src, opts)
    if not tasks:
        raise InputError(f"no meshes (.glb, .gltf, .obj, .ply, .stl or MuJoCo object .xml) under {src}")
    check_category_splits(tasks, opts)
    wall0 = time.perf_counter()
    job_name = "sim assets import"
    with job_lock(out_dir, job_name, resume=resume):
        results = run_tasks(
            import_one, tasks, out_dir, job_name=job_name, fingerprint=opts.key(), workers=workers,
            ray_address=ray_address, resume=resume, show_progress=show_progress,
        )  # fmt: skip
        report = _write_outputs(out_dir, results, duplicates, opts, describe)
        report["wall_s"] = round(time.perf_counter() - wall0, 3)
        atomic_write_text(out_dir / REPORT_NAME, json.dumps(report, indent=1, sort_keys=True))
        mark_complete(out_dir, {"imported": report["imported"], "quarantined": report["quarantined"]})
    return report


def _write_outputs(
    out_dir: Path, results: list[dict], duplicates: list[dict], opts: ImportOptions, describe: DescribeOptions | None
) -> dict:
    from dataengine.sim.importer.describe import describe_results

    ok = [r for r in results if r["status"] == "ok"]
    description = describe_results(sorted(ok, key=lambda r: r["rel"]), out_dir, describe, opts.unseen_categories)
    bad = sorted((r for r in results if r["status"] != "ok"), key=lambda r: r["rel"])
    entries = _unique_ids(sorted((r["entry"] for r in ok), key=lambda e: e["source"]["path"]))
    header = (
        "# Imported by `dataengine sim assets import` (dataengine/sim/importer). List this file under `catalogs:` in\n"
        "# a simulation recipe. Paths are relative to this file; `source` records how each mesh was processed.\n"
    )
    body = yaml.safe_dump({"objects": sorted(entries, key=lambda e: e["id"]), "containers": []}, sort_keys=True)
    atomic_write_text(out_dir / CATALOG_NAME, header + body)
    lines = [json.dumps({k: r[k] for k in ("rel", "reason", "detail")}, sort_keys=True) for r in bad]
    atomic_write_text(out_dir / QUARANTINE_NAME, "".join(line + "\n" for line in lines))
    processed = [r for r in ok if not r["cached"]]
    return {
        "options": opts.model_dump(mode="json"),
        "meshes": len(results) + len(duplicates),
        "imported": len(ok),
        "quarantined": len(bad),
        "quarantine_reasons": dict(sorted(Counter(r["reason"] for r in bad).items())),
        "duplicates": duplicates,
        "from_cache": len(ok) - len(processed),
        "categories": dict(sorted(Counter(e["category"] for e in entries).items())),
        "textured": sum(e["source"]["textured"] for e in entries),
        "thumbnails": sum("thumbnail" in e for e in entries),
        "description": description,
        "task_seconds": round(sum(r["seconds"] for r in processed), 3),
        "collision_seconds": round(sum(r["collision_s"] for r in processed), 3),
    }
