"""An LLM reply that names the right objects but says the wrong thing is never stored, and what is stored says
which rewriter really wrote it. The replies come from the local OpenAI-compatible server (tests/fake_openai_server)."""

from __future__ import annotations

import json

import pytest

from dataengine.rewrite import OfflineRewriter
from dataengine.rewrite.validate import check_text
from tests.fixtures.rewrite_env import make_rewriter, server  # noqa: F401
from tests.fixtures.rewrite_scenes import mug_scene, random_scene


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Pick up the blue bowl and put it in the red mug.", "swapped_roles"),
        ("Put the red mug on the blue bowl.", "wrong_relation"),
        ("Put the red mug next to the giraffe in the blue bowl.", "names_unknown_object"),
        ("Put the red mug into the banana.", "drops_place_object"),
        ("Put the red mug next to the blue bowl into the banana.", "wrong_destination"),
        ("Put the red mug in the blue bowl.", None),
        ("Move the red mug to the left of the banana into the blue bowl.", None),
        ("Put the red mug in front of the green mug inside the blue bowl.", None),
        ("Set the red mug down next to the edge of the table, then put it in the blue bowl.", None),
    ],
)
def test_roles_relation_and_landmarks_are_checked(text, reason):
    assert check_text(text, mug_scene()) == reason


def test_offline_rewrites_pass_their_own_checks():
    rewriter = OfflineRewriter(seed=3)
    for i in range(200):
        rewriter.rewrite_one(random_scene(i))
    assert not any(key.startswith("offline_plain") for key in rewriter.stats), rewriter.stats


@pytest.mark.parametrize("behaviour", ["swapped_roles", "wrong_relation", "unknown_landmark"])
def test_a_wrong_reply_is_replaced_and_recorded(server, make_rewriter, behaviour):  # noqa: F811
    server.push(behaviour)
    rewriter = make_rewriter(mode="per-episode")
    scene = mug_scene()
    [out] = rewriter.rewrite([scene])
    assert out.attr == OfflineRewriter().rewrite_one(scene).attr
    expected = "names_unknown_object" if behaviour == "unknown_landmark" else behaviour
    assert rewriter.report()["counts"][f"rejected_{expected}"] == 1
    assert out.provenance("openai") == {
        "rewriter": "offline+openai",
        "produced_by": {"attr": "offline", "semantic": "openai", "spatial": "openai"},
        "fallbacks": {"attr": expected},
    }


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    from tests.fixtures.episode_shards import build_episode_shards

    return build_episode_shards(tmp_path_factory.mktemp("sim") / "episodes", episodes=2, per_shard=1)  # ~10 s


def test_when_every_request_fails_nothing_claims_openai(episodes, server, make_rewriter, tmp_path, capsys):  # noqa: F811
    from dataengine.cli.rewrite_cmds import print_report
    from dataengine.rewrite.episodes import rewrite_episode_shards
    from dataengine.shards import iter_samples, list_shards

    server.push(*[("status", 503, {"retry-after-ms": "1"})] * 40)
    rewriter = make_rewriter(mode="per-episode", max_retries=0)
    report = rewrite_episode_shards(episodes, tmp_path / "out", rewriter)
    assert report["rewrites_by_rewriter"] == {"offline": 6}
    assert report["fallbacks_by_reason"] == {"request_failed_server_error": 6}
    for shard in list_shards(tmp_path / "out"):
        for sample in iter_samples(shard):
            instructions = json.loads(sample["episode.json"])["instructions"]
            assert instructions["rewriter"] == "offline"
            assert set(instructions["fallbacks"].values()) == {"request_failed_server_error"}
    print_report(report)
    out = " ".join(capsys.readouterr().out.split())
    assert "with openai" not in out and "asked openai (gpt-4o-mini, per-episode), rewrites written by offline 6" in out
    assert "request_failed_server_error 6" in out


def test_a_rewrite_killed_half_way_is_refused_until_rerun(episodes, tmp_path):
    from dataengine.rewrite import get_rewriter
    from dataengine.rewrite.episodes import rewrite_episode_shards
    from dataengine.runtime.completion import IncompleteJobError
    from dataengine.shards import list_shards

    def crash(_shard):
        raise KeyboardInterrupt  # what Ctrl-C or a kill leaves: the first shard written, the second not

    with pytest.raises(KeyboardInterrupt):
        rewrite_episode_shards(episodes, tmp_path / "out", get_rewriter("offline"), on_shard=crash)
    with pytest.raises(IncompleteJobError, match="unfinished 'rewrite' job"):
        list_shards(tmp_path / "out")
    rewrite_episode_shards(episodes, tmp_path / "out", get_rewriter("offline"))
    assert len(list_shards(tmp_path / "out")) == 2
