"""The trainer-side configuration every LeRobot export writes beside its data (`OUT/trainer/`), for the GR00T-style
robot-data loader of starVLA and InternVLA-M1 and their co-training with grounding data:

- `data_config.json`: the machine-readable source of the rest: data configs (video, state, action and language
  keys, indices, normalization, the dimensions a model needs), the embodiment tag, the mixture, the loader settings
  (`lerobot_version`, `video_backend`) and the grounding datasets with their `%NN` rates and pixel limits;
- `dataengine_data_config.py`: the registry module (data config classes, `ROBOT_TYPE_CONFIG_MAP`,
  `ROBOT_TYPE_TO_EMBODIMENT_TAG`, `DATASET_NAMED_MIXTURES`); starVLA discovers it as
  `examples/<Name>/train_files/data_registry/data_config.py`;
- `qwen_data_config_dataengine.py`: the registration block of the grounding data (`data_dict` entries) for
  `dataloader/qwenvl_llavajson/qwen_data_config.py`;
- `cotrain.yaml`: the YAML pieces (`framework.action_model` dimensions, `datasets.vla_data`, `datasets.vlm_data`);
- `README.md`: where each piece goes and the command that trains.

`trainer` picks the loader the files are written for: `starvla` (default; any layout) or `internvla-m1` (its loader
reads only the per-episode v2.x layout, keeps `stats_gr00t.json` flat, has no registry discovery and reads neither
`lerobot_version` nor `video_backend`: it decodes with torchvision's PyAV backend).

Two data configs: `dataengine_eef_relative` (the engine's training default: per-step end-effector targets relative
to the measured tool pose, in the robot base frame, plus the gripper command) and `dataengine_delta_joints` (joint
target minus current joints plus the gripper command, InternVLA-M1's `demo_sim_franka_delta_joints` layout). The
mixture uses the first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from dataengine.errors import InputError
from dataengine.export import lerobot_columns as cols
from dataengine.export.llava_json import ANNOTATIONS_NAME

TRAINER_DIR = "trainer"
EMBODIMENT_TAG = "new_embodiment"  # known to every GR00T-style loader; selects the action expert's own projector
ACTION_HORIZON = 16
LANGUAGE_KEY = "annotation.human.action.task_description"
QWEN_MODEL_TYPE = "qwen2.5vl"
DEFAULT_GROUNDING_DIR = "llava"  # `dataengine demo` writes the llava-json export beside the LeRobot one
GROUNDING_STYLE_DEFAULTS = {"min_pixels": 784, "max_pixels": 50176}  # the internvla-m1 style (co-training configs)
VIDEO_BACKENDS = {"h264": "decord", "av1": "pyav"}  # decord cannot decode AV1
TRAINERS = ("starvla", "internvla-m1")
PACKAGES = {"starvla": "starVLA", "internvla-m1": "InternVLA"}
INTERNVLA_M1_VIDEO_BACKEND = "torchvision_av"  # hard-coded in its lerobot_datasets.py; decodes h264 and AV1
DATA_CONFIGS = {
    "dataengine_eef_relative": {
        "state": ["eef_position", "eef_quaternion", "gripper_opening"],
        "action": ["eef_relative_position", "eef_relative_rotation", "gripper_close"],
    },
    "dataengine_delta_joints": {
        "state": ["joints"],
        "action": ["delta_joints", "gripper_close"],
    },
}
BINARY = {"gripper_close"}


@dataclass(frozen=True)
class GroundingSource:
    """A `dataengine export llava-json` output mixed into co-training at `rate` percent."""

    path: Path
    rate: int = 100
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> GroundingSource:
        """`PATH` or `PATH%NN` (NN: sampling rate in percent, 1..100)."""
        path, _, rate = text.rpartition("%") if "%" in text else (text, "", "100")
        if not rate.isdigit() or not 1 <= int(rate) <= 100:
            raise InputError(f"--grounding {text!r}: the rate after % must be a whole percent in 1..100")
        return cls(Path(path), int(rate))

    def resolved(self) -> GroundingSource:
        path = (self.path if self.path.is_absolute() else Path.cwd() / self.path).resolve()
        name = self.name or "dataengine_" + re.sub(r"[^A-Za-z0-9_]+", "_", path.name).strip("_")
        return GroundingSource(path, self.rate, name)


def _slice_dims(group: list[tuple[str, tuple[str, ...]]]) -> dict[str, int]:
    return {name: cols.slice_size(elements) for name, elements in group}


def check_trainer(trainer: str, format: str) -> None:
    """Refuse a trainer name we do not write for, or a layout its loader cannot read."""
    if trainer not in TRAINERS:
        raise InputError(f"unknown trainer {trainer!r}; valid: {list(TRAINERS)}")
    if trainer == "internvla-m1" and format != "v2.1":
        raise InputError("InternVLA-M1's loader reads only the per-episode layout: export with --format v2.1")


def gr00t_stats_envelope(trainer: str) -> bool:
    """Whether `meta/stats_gr00t.json` is starVLA's cache envelope (else InternVLA-M1's flat {column: stats}: it
    validates every top-level value as statistics and recomputes, on every rank at once, when one is not)."""
    return trainer != "internvla-m1"


def data_config(
    views: list[str], format: str, codec: str, dataset: str, data_root: Path, grounding: list, trainer: str = "starvla"
) -> dict:
    """The content of `data_config.json`."""
    state_dims, action_dims = _slice_dims(cols.STATE_SLICES), _slice_dims(cols.ACTION_SLICES)
    configs = {}
    for name, keys in DATA_CONFIGS.items():
        configs[name] = {
            "video_keys": [f"video.{v}" for v in views],
            "state_keys": [f"state.{k}" for k in keys["state"]],
            "action_keys": [f"action.{k}" for k in keys["action"]],
            "language_keys": [LANGUAGE_KEY],
            "observation_indices": [0],
            "action_indices": list(range(ACTION_HORIZON)),
            "normalization": {
                **{f"state.{k}": "min_max" for k in keys["state"]},
                **{f"action.{k}": "binary" if k in BINARY else "min_max" for k in keys["action"]},
            },
            "state_dim": sum(state_dims[k] for k in keys["state"]),
            "action_dim": sum(action_dims[k] for k in keys["action"]),
        }
    default = next(iter(DATA_CONFIGS))
    return {
        "trainer": trainer,
        "package": PACKAGES[trainer],
        "dataset": dataset,
        "data_root_dir": str(data_root),
        "lerobot_version": "v3.0" if format == "v3.0" else "v2.0",  # the loaders call the v2.x layout v2.0
        "video_backend": INTERNVLA_M1_VIDEO_BACKEND if trainer == "internvla-m1" else VIDEO_BACKENDS[codec],
        "embodiment_tag": EMBODIMENT_TAG,
        "data_configs": configs,
        "default_data_config": default,
        "mixture": {f"dataengine_{dataset}": [[dataset, 1.0, default]]},
        "grounding": grounding,
    }


def grounding_entries(sources: list[GroundingSource], root: Path) -> tuple[list[dict], dict]:
    """(`grounding` entries, {min_pixels, max_pixels}) from the llava-json exports (their `export.json`)."""
    sources = [s.resolved() for s in sources] or [GroundingSource(root.parent / DEFAULT_GROUNDING_DIR).resolved()]
    entries, pixels = [], {}
    for source in sources:
        info_path = source.path / "export.json"
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else None
        options = (info or {}).get("style_options", {})
        found = {k: options[k] for k in GROUNDING_STYLE_DEFAULTS if k in options}
        if found and pixels and found != pixels:
            raise InputError(
                f"grounding exports resize images differently ({pixels} vs {found} in {info_path}); a trainer has "
                "one max_pixels/min_pixels: export them with the same style options"
            )
        pixels = pixels or found
        entries.append(
            {
                "name": source.name,
                "dataset_use": f"{source.name}%{source.rate}",
                "annotation_path": str(source.path / ANNOTATIONS_NAME),
                "data_path": str(source.path) + "/",
                "style": (info or {}).get("style"),
                "exists": info is not None,
            }
        )
    return entries, pixels or dict(GROUNDING_STYLE_DEFAULTS)


def write_trainer_config(
    partial: Path,
    root: Path,
    *,
    format: str,
    codec: str,
    views: list[str],
    grounding: list[GroundingSource],
    trainer: str = "starvla",
) -> dict:
    """Write `trainer/` into `partial` (the export being written) for an export that will live at `root`."""
    check_trainer(trainer, format)
    root = root.resolve()
    entries, pixels = grounding_entries(grounding, root)
    config = data_config(views, format, codec, root.name, root.parent, entries, trainer)
    config["vlm"] = {**pixels, "model_type": QWEN_MODEL_TYPE}
    out = partial / TRAINER_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "dataengine_data_config.py").write_text(registry_module(config), encoding="utf-8")
    (out / "qwen_data_config_dataengine.py").write_text(qwen_registration(config), encoding="utf-8")
    (out / "cotrain.yaml").write_text(cotrain_yaml(config), encoding="utf-8")
    (out / "README.md").write_text(readme(config, root), encoding="utf-8")
    return config


def _class_name(config_name: str) -> str:
    return "".join(part.capitalize() for part in config_name.split("_")) + "DataConfig"


INSTALL = {
    "starvla": "starVLA: copy this file to examples/DataEngine/train_files/data_registry/data_config.py (found on\n"
    "import).",
    "internvla-m1": "InternVLA-M1: copy this file to InternVLA/dataloader/gr00t_lerobot/dataengine_data_config.py and\n"
    "add after the imports of InternVLA/dataloader/lerobot_datasets.py (it has no registry discovery):\n\n"
    "    from InternVLA.dataloader.gr00t_lerobot import dataengine_data_config as _dataengine\n\n"
    "    ROBOT_TYPE_CONFIG_MAP.update(_dataengine.ROBOT_TYPE_CONFIG_MAP)\n"
    "    ROBOT_TYPE_TO_EMBODIMENT_TAG.update(_dataengine.ROBOT_TYPE_TO_EMBODIMENT_TAG)\n"
    "    DATASET_NAMED_MIXTURES.update(_dataengine.DATASET_NAMED_MIXTURES)",
}

REGISTRY_HEADER = '''"""Robot-data registry for the dataengine export {dataset!r}, from `dataengine export lerobot`.

{install}
"""

import importlib

PACKAGE = {package!r}


def _module(name):
    return importlib.import_module(f"{{PACKAGE}}.dataloader.gr00t_lerobot.{{name}}")


ModalityConfig = _module("datasets").ModalityConfig
EmbodimentTag = _module("embodiment_tags").EmbodimentTag
ComposedModalityTransform = _module("transform.base").ComposedModalityTransform
StateActionToTensor = _module("transform.state_action").StateActionToTensor
StateActionTransform = _module("transform.state_action").StateActionTransform


class _DataengineConfig:
    video_keys: list = []
    state_keys: list = []
    action_keys: list = []
    language_keys: list = []
    observation_indices: list = [0]
    action_indices: list = []
    normalization_modes: dict = {{}}

    def modality_config(self):
        def config(indices, keys):
            return ModalityConfig(delta_indices=indices, modality_keys=keys)

        return {{
            "video": config(self.observation_indices, self.video_keys),
            "state": config(self.observation_indices, self.state_keys),
            "action": config(self.action_indices, self.action_keys),
            "language": config(self.observation_indices, self.language_keys),
        }}

    def transform(self):
        modes = self.normalization_modes
        return ComposedModalityTransform(
            transforms=[
                StateActionToTensor(apply_to=self.state_keys),
                StateActionTransform(
                    apply_to=self.state_keys, normalization_modes={{k: modes[k] for k in self.state_keys}}
                ),
                StateActionToTensor(apply_to=self.action_keys),
                StateActionTransform(
                    apply_to=self.action_keys, normalization_modes={{k: modes[k] for k in self.action_keys}}
                ),
            ]
        )
'''


def registry_module(config: dict) -> str:
    """`dataengine_data_config.py`."""
    install = INSTALL[config["trainer"]]
    parts = [REGISTRY_HEADER.format(dataset=config["dataset"], install=install, package=config["package"])]
    for name, c in config["data_configs"].items():
        parts.append(
            f"\n\nclass {_class_name(name)}(_DataengineConfig):\n"
            f"    # state_dim {c['state_dim']}, action_dim {c['action_dim']} (framework.action_model)\n"
            f"    video_keys = {c['video_keys']!r}\n"
            f"    state_keys = {c['state_keys']!r}\n"
            f"    action_keys = {c['action_keys']!r}\n"
            f"    language_keys = {c['language_keys']!r}\n"
            f"    observation_indices = {c['observation_indices']!r}\n"
            f"    action_indices = list(range({len(c['action_indices'])}))\n"
            f"    normalization_modes = {c['normalization']!r}\n"
        )
    names = list(config["data_configs"])
    maps = "\n\nROBOT_TYPE_CONFIG_MAP = {\n" + "".join(f"    {n!r}: {_class_name(n)}(),\n" for n in names) + "}\n"
    tag = config["embodiment_tag"]
    maps += "ROBOT_TYPE_TO_EMBODIMENT_TAG = {\n" + "".join(f"    {n!r}: EmbodimentTag({tag!r}),\n" for n in names)
    maps += "}\nDATASET_NAMED_MIXTURES = {\n"
    for mixture, rows in config["mixture"].items():
        maps += f"    {mixture!r}: [\n" + "".join(f"        {tuple(r)!r},\n" for r in rows) + "    ],\n"
    return "".join(parts) + maps + "}\n"


def qwen_registration(config: dict) -> str:
    """`qwen_data_config_dataengine.py`: paste below `data_dict` in qwen_data_config.py."""
    lines = [
        "# Grounding data for co-training, written by `dataengine export lerobot`: paste below `data_dict` in",
        "# <trainer>/dataloader/qwenvl_llavajson/qwen_data_config.py, then name the entries in",
        f"# datasets.vlm_data.dataset_use (with their sampling rates: {_dataset_use(config)}).",
    ]
    for entry in config["grounding"]:
        if not entry["exists"]:
            lines.append(f"# not written yet: dataengine export llava-json CORPUS --out {entry['data_path'][:-1]}")
        lines += [
            f"{entry['name'].upper()} = {{",
            f'    "annotation_path": {json.dumps(entry["annotation_path"])},',
            f'    "data_path": {json.dumps(entry["data_path"])},',
            "}",
        ]
    updates = "".join(f"    {json.dumps(e['name'])}: {e['name'].upper()},\n" for e in config["grounding"])
    return "\n".join(lines) + "\ndata_dict.update({\n" + updates + "})\n"


def _dataset_use(config: dict) -> str:
    return ",".join(entry["dataset_use"] for entry in config["grounding"])


def cotrain_yaml(config: dict) -> str:
    """`cotrain.yaml`: the pieces to merge into a starVLA / InternVLA-M1 co-training YAML."""
    default = config["data_configs"][config["default_data_config"]]
    horizon = len(default["action_indices"])
    starvla = config["trainer"] == "starvla"
    model = {"action_dim": default["action_dim"]}
    if starvla:  # InternVLA-M1's model has no state input and sizes its chunk by the window alone
        model |= {"state_dim": default["state_dim"], "action_horizon": horizon}
    # the frameworks train on the last future_action_window_size + 1 steps of each chunk: keep it equal to the
    # chunk, or they learn actions t+k.. from the frame at t (the templates say 7)
    model |= {"future_action_window_size": horizon - 1, "past_action_window_size": 0}
    vla = {"dataset_py": "lerobot_datasets", "data_root_dir": config["data_root_dir"]}
    vla["data_mix"] = next(iter(config["mixture"]))
    if starvla:  # settings only starVLA's loader reads
        vla |= {"lerobot_version": config["lerobot_version"], "video_backend": config["video_backend"]}
        vla["action_mode"] = "abs"
    pieces = {
        "framework": {"action_model": model},
        "datasets": {
            "vla_data": vla,
            "vlm_data": {
                "dataset_py": "vlm_datasets",
                "dataformat": "llava_json",
                "dataset_use": _dataset_use(config),
                "max_pixels": config["vlm"]["max_pixels"],
                "min_pixels": config["vlm"]["min_pixels"],
                "model_type": config["vlm"]["model_type"],
            },
        },
    }
    header = (
        f"# Co-training pieces for the dataengine export {config['dataset']!r}: merge into your trainer's YAML.\n"
        "# max_pixels/min_pixels are those the grounding answers were computed for (Qwen2.5-VL answers are in\n"
        "# resized-image pixels): keep them equal to the llava-json export's style options.\n"
    )
    return header + yaml.safe_dump(pieces, sort_keys=False)


README_STEPS = {
    "starvla": (
        "1. `dataengine_data_config.py` -> `examples/DataEngine/train_files/data_registry/data_config.py`.\n"
        "2. `qwen_data_config_dataengine.py` -> paste below `data_dict` in "
        "`starVLA/dataloader/qwenvl_llavajson/qwen_data_config.py`.\n"
        "3. `cotrain.yaml` -> merge into the co-training YAML (e.g. "
        "`examples/CoTrainVLM/train_files/starvla_cotrain_libero.yaml`).\n"
    ),
    "internvla-m1": (
        "1. `dataengine_data_config.py` -> `InternVLA/dataloader/gr00t_lerobot/dataengine_data_config.py`, and the "
        "three `update` lines of its docstring into `InternVLA/dataloader/lerobot_datasets.py`.\n"
        "2. `qwen_data_config_dataengine.py` -> paste below `data_dict` in "
        "`InternVLA/dataloader/qwenvl_llavajson/qwen_data_config.py`.\n"
        "3. `cotrain.yaml` -> merge into the co-training YAML (e.g. `InternVLA/config/training/"
        "internvla_cotrain_*.yaml`).\n"
    ),
}


def readme(config: dict, root: Path) -> str:
    """`README.md`: where each file goes."""
    missing = [e for e in config["grounding"] if not e["exists"]]
    todo = "".join(
        f"- `{e['data_path'][:-1]}` does not exist yet: `dataengine export llava-json CORPUS --out "
        f"{e['data_path'][:-1]} --style internvla-m1` (or pass `--grounding DIR%NN` to `export lerobot`).\n"
        for e in missing
    )
    trainer = config["trainer"]
    if trainer == "starvla":
        settings = f"`lerobot_version: {config['lerobot_version']}`, `video_backend: {config['video_backend']}`, "
    else:
        settings = f"none to set (its loader reads the v2.x layout and decodes with `{config['video_backend']}`), "
    return (
        f"# Training on `{root}` in {config['package']} ({trainer})\n\n"
        + README_STEPS[trainer]
        + f"\nLoader settings: {settings}mixture `{next(iter(config['mixture']))}`, embodiment tag "
        f"`{config['embodiment_tag']}`, grounding `dataset_use: {_dataset_use(config)}`.\n"
        + (f"\n{todo}" if todo else "")
        + "\nThe full walk-through from `dataengine sim generate` is in the dataengine docs (docs/training.md).\n"
    )
