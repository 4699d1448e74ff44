"""Recipes: validation before any work, errors that name file and key path, extends and variables."""

from pathlib import Path

import pytest

from dataengine.corpus import build_corpus, load_recipe
from dataengine.corpus.inputs import check_inputs
from dataengine.errors import RecipeError
from tests.fixtures.corpus_sources import build_corpus_sources, write_recipe

REPO = Path(__file__).resolve().parents[1]
LADDER = ["0.5m", "1m", "2m", "3m"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus_sources")
    build_corpus_sources(root)
    return root


def _write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """\
name: t
version: 1
seed: 1
sources:
  - name: a
    from: {shards: ./shards}
"""


def test_minimal_recipe_defaults_and_relative_paths(tmp_path):
    loaded = load_recipe(_write(tmp_path, MINIMAL))
    recipe = loaded.recipe
    assert recipe.version == "1" and recipe.target_pairs is None and recipe.output_split == "train"
    assert recipe.sources[0].from_.shards == str(tmp_path / "shards")  # relative to the recipe file
    assert recipe.sources[0].effective_weight == 1.0
    assert recipe.export.answer_style == "qwen2.5-vl" and recipe.shards.max_samples == 10_000
    assert len(loaded.sha256) == 64


def test_unknown_key_names_file_key_path_and_valid_keys(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("from: {shards: ./shards}", "from: {shards: ./shards}\n    wieght: 2"))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    msg = str(err.value)
    assert str(path) in msg and "sources[0].wieght" in msg and "unknown key 'wieght'" in msg
    assert "weight" in msg and "splits" in msg  # the valid keys are listed

    path = _write(tmp_path, MINIMAL.replace("from: {shards: ./shards}", "from: {shard: ./shards}"))
    with pytest.raises(RecipeError, match=r"sources\[0\]\.from\.shard: unknown key"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("seed: 1\n", ""), r"seed: required key is missing"),
        (("seed: 1", "seed: one"), r"seed: Input should be a valid integer"),
        (("    from: {shards: ./shards}", "    from: {shards: ./s}\n    weight: 1\n    pairs: 5"), "not both"),
        (("    from: {shards: ./shards}", "    from: {shards: ./s, converter: refcoco}"), "takes no"),
        (("    from: {shards: ./shards}", "    from: {converter: refcoco}"), "needs `input`"),
        (("    from: {shards: ./shards}", "    from: {}"), "give one of shards"),
        (("name: t", "name: 'bad name'"), r"name: String should match pattern"),
        (("    from: {shards: ./shards}", "    from: {shards: ./s}\n    tasks: [boxes]"), r"sources\[0\]\.tasks\[0\]"),
    ],
)
def test_bad_values_fail_with_key_path(tmp_path, change, expected):
    with pytest.raises(RecipeError, match=expected):
        load_recipe(_write(tmp_path, MINIMAL.replace(*change)))


def test_recipe_level_consistency_rules(tmp_path):
    two = MINIMAL + "  - name: a\n    from: {shards: ./other}\n"
    with pytest.raises(RecipeError, match="source names must be unique"):
        load_recipe(_write(tmp_path, two))
    holdout = MINIMAL + "holdouts:\n  - {name: h, sources: [nope]}\n"
    with pytest.raises(RecipeError, match=r"unknown source\(s\) \['nope'\]"):
        load_recipe(_write(tmp_path, holdout))
    both = MINIMAL + "holdouts:\n  - {name: h, sources: [a], coco_image_ids: [1]}\n"
    with pytest.raises(RecipeError, match="exactly one of sources, from"):
        load_recipe(_write(tmp_path, both))
    fixed = MINIMAL.replace("seed: 1", "seed: 1\ntarget_pairs: 10") + "    pairs: 11\n"
    with pytest.raises(RecipeError, match="more than target_pairs"):
        load_recipe(_write(tmp_path, fixed))


def test_variables_environment_defaults_and_unset(tmp_path):
    text = MINIMAL.replace("./shards", "'${ROOT}/s'").replace("seed: 1", "seed: 1\nvars: {ROOT: /from/vars}")
    path = _write(tmp_path, text)
    assert load_recipe(path, env={}).recipe.sources[0].from_.shards == "/from/vars/s"
    assert load_recipe(path, env={"ROOT": "/from/env"}).recipe.sources[0].from_.shards == "/from/env/s"
    path = _write(tmp_path, MINIMAL.replace("./shards", "'${NOPE:-/fallback}/s'"))
    assert load_recipe(path, env={}).recipe.sources[0].from_.shards == "/fallback/s"
    path = _write(tmp_path, MINIMAL.replace("./shards", "'${MISSING_ROOT}/s'"))
    with pytest.raises(RecipeError, match=r"sources\[0\]\.from\.shards: variable \$\{MISSING_ROOT\} is not set"):
        load_recipe(path, env={})


def test_extends_merges_and_blames_the_base_file(tmp_path):
    base = _write(tmp_path, MINIMAL.replace("seed: 1", "seed: 1\ntarget_pairs: 100"), "base.yaml")
    child = _write(tmp_path, "extends: base.yaml\nname: child\ntarget_pairs: 200\n", "child.yaml")
    recipe = load_recipe(child).recipe
    assert (recipe.name, recipe.seed, recipe.target_pairs) == ("child", 1, 200)
    _write(tmp_path, MINIMAL.replace("seed: 1", "seed: 1\nbogus: 3"), "base.yaml")
    with pytest.raises(RecipeError) as err:
        load_recipe(child)
    assert f"{base}: bogus: unknown key" in str(err.value)
    _write(tmp_path, "extends: child.yaml\n", "base.yaml")
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(child)


def test_missing_inputs_fail_before_any_work(tmp_path, sources):
    text = MINIMAL.replace("./shards", str(sources / "refcoco"))
    text += "  - name: b\n    from: {shards: ./does_not_exist}\n"
    text += "  - name: c\n    from: {converter: no_such_converter, input: ./raw}\n"
    text += "holdouts:\n  - {name: h, coco_image_ids: ./ids.txt}\n"
    text += "export: {answer_style: qwen9}\n"
    path = _write(tmp_path, text)
    out = tmp_path / "out"
    with pytest.raises(RecipeError) as err:
        build_corpus(path, out, workers=0, show_progress=False)
    msg = str(err.value)
    for expected in [
        "sources[1].from.shards: " + str(tmp_path / "does_not_exist") + " does not exist",
        "sources[2].from.converter: unknown converter 'no_such_converter'",
        "sources[2].from.input: " + str(tmp_path / "raw") + " does not exist",
        "holdouts[0].coco_image_ids: file",
        "export.answer_style: unknown answer style 'qwen9'",
    ]:
        assert expected in msg, msg
    assert str(path) in msg
    assert not out.exists()  # nothing was written


def test_shipped_ladder_is_one_nested_family():
    loaded = {size: load_recipe(REPO / "recipes" / f"st4vla_spatial_{size}.yaml", env={"DATA_ROOT": "/data"})
              for size in LADDER}  # fmt: skip
    targets = [loaded[s].recipe.target_pairs for s in LADDER]
    assert targets == [500_000, 1_000_000, 2_000_000, 3_000_000]
    first = loaded[LADDER[0]].recipe
    for size in LADDER[1:]:
        other = loaded[size].recipe
        assert other.family == first.family and other.seed == first.seed
        assert other.sources == first.sources and other.holdouts == first.holdouts
    names = [s.name for s in first.sources]
    assert {"refcoco", "refcoco+", "refcocog"} <= set(names)
    assert {h for hold in first.holdouts for h in (hold.sources or [])} >= {"refcoco", "refcoco+", "refcocog"}


def test_shipped_ladder_without_data_names_the_missing_inputs(tmp_path):
    loaded = load_recipe(REPO / "recipes" / "st4vla_spatial_1m.yaml", env={"DATA_ROOT": str(tmp_path)})
    with pytest.raises(RecipeError) as err:
        check_inputs(loaded)
    # The sources live in the base file the ladder extends: the error names that file and the key path.
    assert "st4vla_spatial_base.yaml: sources[0].from.input: " + str(tmp_path) + "/refer does not exist" in str(
        err.value
    )


def test_test_recipe_template_loads(tmp_path, sources):
    loaded = load_recipe(write_recipe(tmp_path / "r.yaml", sources))
    check_inputs(loaded)
    assert [s.name for s in loaded.recipe.sources] == ["refcoco", "refcocog", "llava"]
