"""Source inputs: checking that they exist, fingerprinting them, and turning each into a converted shard dir.

A source is read from converted shards as they are, or converted first (raw input + converter) into a cache
folder keyed by the converter options and the input fingerprints, so a rerun or `--resume` reuses it; a `fixture`
source is built by the engine's fixture builders into the cache and then converted the same way.

Fingerprints: a file is hashed by content (SHA-1, cached by path, size and mtime in the cache folder); in a
folder, image files count by relative name and size (hashing all of COCO would cost more than the build), a tar
with a sidecar index counts by size and index, other files by content.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from dataengine import __version__
from dataengine.converters.files import DEFAULT_MAX_ANNOTATION_MB, DEFAULT_MAX_IMAGE_MB, InputLimits
from dataengine.corpus.recipe import InputSpec, LoadedRecipe
from dataengine.errors import RecipeError
from dataengine.images import IMAGE_EXTS
from dataengine.recipe_loader import defining_file, loc_text
from dataengine.runtime.atomic import atomic_write_text
from dataengine.shards.reader import list_shards
from dataengine.shards.writer import index_path

log = logging.getLogger(__name__)
HASH_CHUNK = 1 << 22


@dataclass(frozen=True)
class ResolvedInput:
    """A converted shard folder standing for one InputSpec, with the fingerprint of what made it."""

    shard_dir: Path
    fingerprint: dict  # JSON-able: kind, converter, input/images fingerprints, cache key


def converter_registry() -> dict:
    from dataengine.converters import CONVERTERS

    return CONVERTERS


def fixture_registry() -> dict:
    from dataengine.fixtures import FIXTURES

    return FIXTURES


def check_inputs(loaded: LoadedRecipe) -> None:
    """Fail before any work when a converter, fixture or path the recipe names does not exist; each problem
    names the recipe file that sets the key (a base file for `extends:`) and the key path."""
    recipe = loaded.recipe
    problems: list[tuple[tuple, str]] = []
    specs = [(("sources", i, "from"), s.from_) for i, s in enumerate(recipe.sources)]
    specs += [(("holdouts", i, "from"), h.from_) for i, h in enumerate(recipe.holdouts) if h.from_ is not None]
    for loc, spec in specs:
        problems += _check_spec(loc, spec)
    for i, h in enumerate(recipe.holdouts):
        for name in ("coco_image_ids", "image_sha1s"):
            value = getattr(h, name)
            if isinstance(value, str) and not Path(value).is_file():
                problems.append((("holdouts", i, name), f"file {value} does not exist"))
    problems += _check_export(loaded)
    if problems:
        lines = [f"{defining_file(loc, loaded.files)}: {loc_text(loc)}: {msg}" for loc, msg in problems]
        raise RecipeError("recipe names inputs that cannot be used:\n  " + "\n  ".join(lines))


def _check_spec(loc: tuple, spec: InputSpec) -> list[tuple[tuple, str]]:
    problems = []
    if spec.converter is not None:
        try:
            names = sorted(converter_registry())
        except ImportError as exc:
            return [((*loc, "converter"), f"converters are not available ({exc})")]
        if spec.converter not in names:
            problems.append(((*loc, "converter"), f"unknown converter {spec.converter!r}; valid: {names}"))
        else:
            problems += _check_options(loc, spec.converter, spec)
    if spec.kind == "converter":
        if not Path(spec.input).exists():
            problems.append(((*loc, "input"), f"{spec.input} does not exist"))
        if spec.images is not None and not Path(spec.images).is_dir():
            problems.append(((*loc, "images"), f"{spec.images} is not a folder"))
    elif spec.kind == "shards":
        path = Path(spec.shards)
        if not path.exists():
            problems.append(((*loc, "shards"), f"{path} does not exist"))
        elif not list_shards(path):
            problems.append(((*loc, "shards"), f"no .tar shards under {path}"))
    else:
        try:
            names = sorted(fixture_registry())
        except ImportError as exc:
            return [((*loc, "fixture"), f"fixture builders are not available ({exc})")]
        if spec.fixture not in names:
            problems.append(((*loc, "fixture"), f"unknown fixture {spec.fixture!r}; valid: {names}"))
        else:
            options = list(inspect.signature(fixture_registry()[spec.fixture]).parameters)[1:]  # after `out`
            for key in sorted(set(spec.fixture_options or {}) - set(options)):
                problems.append(
                    ((*loc, "fixture_options"), f"unknown option {key!r} of fixture {spec.fixture!r}; valid: {options}")
                )
            if spec.converter is None and spec.options:
                problems += _check_options(loc, spec.fixture, spec)
    return problems


def _check_options(loc: tuple, converter: str, spec: InputSpec) -> list[tuple[tuple, str]]:
    """The converter's own options (`options:` plus the `images`, `split_by`, `keep_text_only` shortcuts)."""
    from dataengine.converters.registry import source_options
    from dataengine.errors import InputError

    try:
        source_options(converter, {**_shortcuts(spec), **(spec.options or {})})
    except InputError as exc:
        return [((*loc, "options"), str(exc))]
    return []


def _shortcuts(spec: InputSpec) -> dict:
    values = {"images_dir": spec.images, "split_by": spec.split_by, "keep_text_only": spec.keep_text_only or None}
    return {k: v for k, v in values.items() if v is not None}


def _check_export(loaded: LoadedRecipe) -> list[tuple[tuple, str]]:
    from dataengine.errors import InputError
    from dataengine.formats.registry import get_style
    from dataengine.formats.templates import load_templates

    export = loaded.recipe.export
    problems = []
    try:
        get_style(export.answer_style, **export.style_options)
    except (InputError, TypeError, ValueError) as exc:
        problems.append((("export", "answer_style"), str(exc)))
    if export.templates is not None:
        try:
            load_templates(export.templates)
        except InputError as exc:
            problems.append((("export", "templates"), str(exc)))
    return problems


# --- fingerprints ----------------------------------------------------------------------------------------------


class HashCache:
    """Content hashes of files keyed by (path, size, mtime), kept in `<cache>/file_hashes.json`."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / "file_hashes.json"
        self.entries: dict[str, list] = {}
        if self.path.exists():
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
        self.dirty = False

    def sha1(self, path: Path) -> str:
        st = path.stat()
        key = str(path.resolve())
        hit = self.entries.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = hashlib.sha1(usedforsecurity=False)
        with open(path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                digest.update(chunk)
        self.entries[key] = [st.st_size, st.st_mtime_ns, digest.hexdigest()]
        self.dirty = True
        return digest.hexdigest()

    def save(self) -> None:
        if self.dirty:
            atomic_write_text(self.path, json.dumps(self.entries, sort_keys=True))
            self.dirty = False


def fingerprint_path(path: Path, hashes: HashCache, listing_only: bool = False) -> dict:
    """A deterministic fingerprint of a file or folder (see the module docstring for the rules)."""
    path = Path(path)
    if path.is_file():
        return {"kind": "file", "sha1": hashes.sha1(path), "files": 1, "bytes": path.stat().st_size}
    digest = hashlib.sha1(usedforsecurity=False)
    files = total = 0
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("_state"))
        for name in sorted(names):
            full = Path(root, name)
            rel = full.relative_to(path).as_posix()
            size = full.stat().st_size
            ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if listing_only or ext in IMAGE_EXTS:
                how = "size"
            elif ext == "tar" and index_path(full).exists():
                how = "index:" + hashes.sha1(index_path(full))
            elif name.endswith(".tmp"):
                continue
            else:
                how = "sha1:" + hashes.sha1(full)
            digest.update(f"{rel}\x1f{size}\x1f{how}\n".encode())
            files += 1
            total += size
    method = "listing" if listing_only else "content+listing"
    return {"kind": "dir", "sha1": digest.hexdigest(), "files": files, "bytes": total, "method": method}


def _key(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# --- materializing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """How conversions run: parallel tasks, Ray address, progress bars."""

    workers: int | None = None
    ray_address: str | None = None
    show_progress: bool = True


def resolve_input(
    spec: InputSpec, label: str, cache_dir: Path, hashes: HashCache, run: RunOptions, dry_run: bool = False
) -> ResolvedInput | None:
    """The converted shard dir for `spec`, converting (or building the fixture) into the cache when needed.

    With `dry_run`, nothing is built or converted: returns None when that has not happened yet.
    """
    if spec.kind == "shards":
        fp = {"kind": "shards", "shards": fingerprint_path(Path(spec.shards), hashes)}
        return ResolvedInput(Path(spec.shards), fp)
    if spec.kind == "fixture":
        built = _fixture_input(spec, cache_dir, dry_run)
        if built is None:
            return None
        fp_in = {"kind": "fixture", "fixture": spec.fixture, "options": spec.fixture_options}
        images = Path(built["images_dir"]) if built.get("images_dir") else None
        converter = spec.converter or built["source"]
        return _converted(converter, Path(built["input_path"]), images, spec, label, fp_in, cache_dir, run, dry_run)
    fp_in = {"kind": "converter", "input": {"path": spec.input, **fingerprint_path(Path(spec.input), hashes)}}
    images = Path(spec.images) if spec.images else None
    if images is not None:
        fp_in["images"] = {"path": spec.images, **fingerprint_path(images, hashes, listing_only=True)}
    return _converted(spec.converter, Path(spec.input), images, spec, label, fp_in, cache_dir, run, dry_run)


def _converted(
    converter: str,
    input_path: Path,
    images: Path | None,
    spec: InputSpec,
    label: str,
    fp_in: dict,
    cache_dir: Path,
    run: RunOptions,
    dry_run: bool,
) -> ResolvedInput | None:
    """Convert into `<cache>/convert/<label>-<key>/` unless a finished conversion with that key is there."""
    options = {"split_by": spec.split_by, "limit": spec.limit, "keep_text_only": spec.keep_text_only}
    limits = InputLimits(spec.follow_symlinks, spec.max_image_mb or DEFAULT_MAX_IMAGE_MB,
                         spec.max_annotation_mb or DEFAULT_MAX_ANNOTATION_MB)  # fmt: skip
    if limits != InputLimits():
        options["limits"] = asdict(limits)  # in the cache key only when set, so existing caches stay valid
    if spec.options:
        options["source_options"] = spec.options  # likewise
    identity = {"converter": converter, "options": options, "inputs": _without_paths(fp_in), "engine": __version__}
    key = _key(identity)
    out = cache_dir / "convert" / f"{_safe(label)}-{key}"
    done = out.with_name(out.name + ".done.json")
    fingerprint = {**fp_in, "converter": converter, "options": options, "cache_key": key}
    if done.exists():
        return ResolvedInput(out, fingerprint)
    if dry_run:
        return None
    from dataengine.converters import run_conversion

    log.info("converting %s with %s into %s", label, converter, out)
    report = run_conversion(
        converter,
        input_path,
        out,
        images_dir=images,
        split_by=spec.split_by,
        limit=spec.limit,
        workers=run.workers,
        ray_address=run.ray_address,
        resume=out.exists(),
        keep_text_only=spec.keep_text_only,
        source_options=spec.options,
        limits=limits,
        show_progress=run.show_progress,
    )
    atomic_write_text(done, json.dumps({"identity": identity, "report": report}, sort_keys=True, default=str))
    return ResolvedInput(out, fingerprint)


def _fixture_input(spec: InputSpec, cache_dir: Path, dry_run: bool) -> dict | None:
    """Build the fixture once into the cache (sources naming the same fixture share it); returns its
    `FixtureInfo` as a dict (source, input_path, images_dir), or None in a dry run before it is built."""
    key = _key({"fixture": spec.fixture, "options": spec.fixture_options, "engine": __version__})
    out = cache_dir / "fixtures" / f"{_safe(spec.fixture)}-{key}"
    done = out.with_name(out.name + ".done.json")
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    if dry_run:
        return None
    if out.exists():
        shutil.rmtree(out)  # a half-built fixture: builders are deterministic, so rebuild it whole
    info = fixture_registry()[spec.fixture](out, **spec.fixture_options)
    conv = {
        "source": info.source,
        "input_path": str(info.input_path),
        "images_dir": str(info.images_dir) if info.images_dir is not None else None,
    }
    atomic_write_text(done, json.dumps(conv, sort_keys=True))
    return conv


def _without_paths(fp: dict) -> dict:
    """Fingerprints without absolute paths: moving the inputs keeps the cache valid."""
    return {k: (_without_paths(v) if isinstance(v, dict) else v) for k, v in fp.items() if k != "path"}


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in label)
