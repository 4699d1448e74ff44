"""The trainer-side configuration every LeRobot export writes (`OUT/trainer/`): every key it names exists in the
export's `modality.json` and `info.json` with the shape it expects, the registry module, the grounding registration
and the YAML pieces agree with it, and the grounding entries point at a real `dataengine export llava-json` output
whose resize limits the YAML repeats."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from dataengine.errors import InputError
from dataengine.export.lerobot import export_lerobot
from dataengine.export.lerobot_common import ExportOptions
from dataengine.export.trainer_config import GroundingSource
from tests.simout_helpers import simout_episodes

KEY_PREFIXES = ("video.", "state.", "action.", "annotation.")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    src = simout_episodes(tmp_path_factory)
    root = tmp_path_factory.mktemp("trainer")
    for fmt in ("v3.0", "v2.1"):
        export_lerobot(src, root / fmt.replace(".", ""), format=fmt, limit=1)
    export_lerobot(src, root / "v21_m1", format="v2.1", limit=1, options=ExportOptions(trainer="internvla-m1"))
    return src, root


def _slice_width(modality: dict, info: dict, group: str, name: str, original: str) -> int:
    entry = modality[group][name]
    assert entry["original_key"] == original
    size = info["features"][original]["shape"][0]
    assert 0 <= entry["start"] < entry["end"] <= size, (group, name)
    return entry["end"] - entry["start"]


def check_trainer_config(root: Path, lerobot_version: str) -> dict:
    """Every key the emitted configuration names resolves in the export with the expected shape."""
    trainer = root / "trainer"
    config = json.loads((trainer / "data_config.json").read_text())
    modality = json.loads((root / "meta/modality.json").read_text())
    info = json.loads((root / "meta/info.json").read_text())
    starvla = config["trainer"] == "starvla"
    assert config["lerobot_version"] == lerobot_version
    assert config["video_backend"] == ("decord" if starvla else "torchvision_av")
    assert Path(config["data_root_dir"]) / config["dataset"] == root.resolve()
    named = set()
    for name, c in config["data_configs"].items():
        for key in c["video_keys"]:
            original = modality["video"][key.removeprefix("video.")]["original_key"]
            assert info["features"][original]["dtype"] == "video" and len(info["features"][original]["shape"]) == 3
        state = [_slice_width(modality, info, "state", k.removeprefix("state."), "observation.state")
                 for k in c["state_keys"]]  # fmt: skip
        action = [_slice_width(modality, info, "action", k.removeprefix("action."), "action") for k in c["action_keys"]]
        assert (sum(state), sum(action)) == (c["state_dim"], c["action_dim"]), name
        for key in c["language_keys"]:
            assert modality["annotation"][key.removeprefix("annotation.")]["original_key"] == "task_index"
            assert info["features"]["task_index"]["dtype"] == "int64"
        assert set(c["normalization"]) == set(c["state_keys"]) | set(c["action_keys"])
        assert c["action_indices"] == list(range(len(c["action_indices"])))
        named |= set(c["video_keys"] + c["state_keys"] + c["action_keys"] + c["language_keys"])

    # the registry module: valid Python naming exactly these keys, its maps and the mixture
    tree = ast.parse((trainer / "dataengine_data_config.py").read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {s for s in strings if s.startswith(KEY_PREFIXES)} == named
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if hasattr(t, "id")}
    assert ast.literal_eval(assigned["PACKAGE"]) == config["package"] == ("starVLA" if starvla else "InternVLA")
    robot_types = {k.value for k in assigned["ROBOT_TYPE_CONFIG_MAP"].keys}
    assert (
        robot_types == set(config["data_configs"]) == {k.value for k in assigned["ROBOT_TYPE_TO_EMBODIMENT_TAG"].keys}
    )
    mixtures = ast.literal_eval(assigned["DATASET_NAMED_MIXTURES"])
    assert mixtures == {k: [tuple(r) for r in v] for k, v in config["mixture"].items()}
    for rows in mixtures.values():
        assert all(dataset == root.name and robot_type in robot_types for dataset, _, robot_type in rows)

    # the YAML pieces
    pieces = yaml.safe_load((trainer / "cotrain.yaml").read_text())
    vla, vlm = pieces["datasets"]["vla_data"], pieces["datasets"]["vlm_data"]
    assert Path(vla["data_root_dir"]) / config["dataset"] == root.resolve() and vla["data_mix"] in mixtures
    default = config["data_configs"][config["default_data_config"]]
    model = pieces["framework"]["action_model"]
    assert model["action_dim"] == default["action_dim"]
    # the frameworks train on the last future_action_window_size + 1 steps of a chunk: the whole chunk, no history
    chunk = len(default["action_indices"])
    assert model["future_action_window_size"] + 1 == chunk and model["past_action_window_size"] == 0
    if starvla:
        assert vla["lerobot_version"] == lerobot_version and vla["video_backend"] == config["video_backend"]
        assert (model["state_dim"], model["action_horizon"]) == (default["state_dim"], chunk)
    else:  # InternVLA-M1 reads none of these
        assert not {"lerobot_version", "video_backend", "action_mode"} & set(vla) and "state_dim" not in model
    assert vlm["dataset_use"] == ",".join(e["dataset_use"] for e in config["grounding"])
    assert (vlm["max_pixels"], vlm["min_pixels"]) == (config["vlm"]["max_pixels"], config["vlm"]["min_pixels"])

    # the grounding registration block: runs against a data_dict and registers every dataset_use name
    data_dict: dict = {}
    exec(compile((trainer / "qwen_data_config_dataengine.py").read_text(), "qwen", "exec"), {"data_dict": data_dict})
    assert set(data_dict) == {e["dataset_use"].rpartition("%")[0] for e in config["grounding"]}
    return config


def test_both_formats_name_only_keys_they_have(exports):
    _, root = exports
    for folder, version in (("v30", "v3.0"), ("v21", "v2.0")):
        config = check_trainer_config(root / folder, version)
        assert config["grounding"][0]["data_path"] == str(root.resolve() / "llava") + "/"  # default: beside OUT
        assert not config["grounding"][0]["exists"] and (config["vlm"]["max_pixels"], config["vlm"]["min_pixels"]) == (
            50176, 784)  # fmt: skip
        assert "does not exist yet" in (root / folder / "trainer/README.md").read_text()


def test_grounding_entries_point_at_a_llava_json_export(exports, tmp_path):
    from dataengine.converters.runner import run_conversion
    from dataengine.export.llava_json import export_llava_json

    src, _ = exports
    options = {"frames_per_episode": 1}  # what `dataengine sim to-grounding SRC --frames-per-episode 1` runs
    run_conversion("sim-frames", src, tmp_path / "grounding", source_options=options, workers=0, show_progress=False)
    llava = tmp_path / "llava_sim"
    export_llava_json(tmp_path / "grounding", llava, style="internvla-m1", style_options={"max_pixels": 40000})
    sources = [GroundingSource.parse(f"{llava}%30")]
    export_lerobot(src, tmp_path / "ds", format="v3.0", limit=1, options=ExportOptions(grounding=sources))
    config = check_trainer_config(tmp_path / "ds", "v3.0")
    (entry,) = config["grounding"]
    assert entry["dataset_use"] == "dataengine_llava_sim%30" and entry["exists"] and entry["style"] == "internvla-m1"
    assert Path(entry["annotation_path"]).is_file()
    style = json.loads((llava / "export.json").read_text())["style_options"]
    pieces = yaml.safe_load((tmp_path / "ds/trainer/cotrain.yaml").read_text())["datasets"]["vlm_data"]
    assert (pieces["max_pixels"], pieces["min_pixels"]) == (style["max_pixels"], style["min_pixels"]) == (40000, 784)
    with pytest.raises(Exception, match="whole percent"):
        GroundingSource.parse(f"{llava}%0")


def test_internvla_m1_export_gets_flat_statistics_and_its_package(exports):
    """InternVLA-M1 validates every top-level value of stats_gr00t.json as statistics (and recomputes, on every rank,
    when one is not), imports from its own package and reads only the per-episode layout."""
    src, root = exports
    config = check_trainer_config(root / "v21_m1", "v2.0")
    assert config["trainer"] == "internvla-m1"
    flat = json.loads((root / "v21_m1/meta/stats_gr00t.json").read_text())
    envelope = json.loads((root / "v21/meta/stats_gr00t.json").read_text())
    assert flat == envelope["statistics"] and {"observation.state", "action"} <= set(flat)
    for stats in flat.values():
        assert set(stats) == {"mean", "std", "min", "max", "q01", "q99"}
        assert all(isinstance(v, list) and all(isinstance(x, float) for x in v) for v in stats.values())
    readme = (root / "v21_m1/trainer/README.md").read_text()
    assert "InternVLA/dataloader/lerobot_datasets.py" in readme and "lerobot_version" not in readme
    with pytest.raises(InputError, match=r"--format v2\.1"):
        export_lerobot(src, root / "v30_m1", format="v3.0", limit=1, options=ExportOptions(trainer="internvla-m1"))
    assert not (root / "v30_m1").exists() and not (root / "v30_m1.partial").exists()
