"""The OpenAI rewriter through the real `openai` client against a local OpenAI-compatible server."""

from __future__ import annotations

import logging

import pytest

from dataengine.rewrite import OfflineRewriter, get_rewriter
from dataengine.rewrite.cost import CostLimitError, Price, UsageMeter
from dataengine.rewrite.llm import RewriteServiceError
from dataengine.rewrite.validate import check_rewrites
from tests.fixtures.rewrite_env import FAKE_KEY, make_rewriter, server  # noqa: F401
from tests.fixtures.rewrite_scenes import mug_scene, random_scene


def scenes(n: int = 6):
    return [random_scene(i) for i in range(n)]


def test_normal_structured_answers(server, make_rewriter):  # noqa: F811
    rewriter = make_rewriter(mode="per-episode")
    out = rewriter.rewrite(scenes())
    assert all(r.attr.startswith("Kindly") and r.spatial.startswith("Kindly") for r in out)
    report = rewriter.report()
    assert report["requests"] == 6 and report["counts"]["accepted"] == 18
    assert report["prompt_tokens"] > 0 and report["cost_usd"] > 0
    body = server.chat_bodies[0]
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    # the key came from OPENAI_API_KEY and the endpoint from OPENAI_BASE_URL
    assert server.headers_seen[0]["authorization"] == f"Bearer {FAKE_KEY}"


def test_factory_builds_openai_rewriter(server, tmp_path):  # noqa: F811
    rewriter = get_rewriter("openai", mode="per-episode", model="my-local-model", cache_dir=tmp_path)
    rewriter.rewrite([mug_scene()])
    assert server.chat_bodies[0]["model"] == "my-local-model"
    assert rewriter.report()["cost_usd"] is None  # no price known for a local model: tokens only


def test_429_then_success(server, make_rewriter):  # noqa: F811
    server.push(("status", 429, {"retry-after-ms": "10"}))
    rewriter = make_rewriter(mode="per-episode", concurrency=1)
    [out] = rewriter.rewrite([mug_scene()])
    assert out.attr.startswith("Kindly")
    assert server.chat_requests == 2
    assert "fallback_offline_episode" not in rewriter.report()["counts"]


def test_server_errors_beyond_retries_fall_back_offline(server, make_rewriter):  # noqa: F811
    server.push(("status", 503, {"retry-after-ms": "5"}), ("status", 503, {"retry-after-ms": "5"}))
    rewriter = make_rewriter(mode="per-episode", max_retries=1)
    scene = mug_scene()
    [out] = rewriter.rewrite([scene])
    assert out == OfflineRewriter().rewrite([scene])[0]
    counts = rewriter.report()["counts"]
    assert counts["request_failed_server_error"] == 1 and counts["fallback_offline_episode"] == 1


def test_malformed_json_content_is_rejected_and_not_cached(server, make_rewriter):  # noqa: F811
    server.push("malformed_content")
    rewriter = make_rewriter(mode="per-episode")
    scene = mug_scene()
    [out] = rewriter.rewrite([scene])
    assert out == OfflineRewriter().rewrite([scene])[0]
    assert rewriter.report()["counts"]["rejected_malformed_json"] == 1
    # a rerun asks again (a broken reply is not cached) and now gets a good one
    [again] = make_rewriter(mode="per-episode").rewrite([scene])
    assert again.attr.startswith("Kindly") and server.chat_requests == 2


def test_malformed_http_body_falls_back(server, make_rewriter):  # noqa: F811
    server.push("malformed_body", "malformed_body")
    rewriter = make_rewriter(mode="per-episode")
    [out] = rewriter.rewrite([mug_scene()])
    assert out == OfflineRewriter().rewrite([mug_scene()])[0]
    counts = rewriter.report()["counts"]
    assert counts["fallback_offline_episode"] == 1
    assert any(k.startswith("request_failed_malformed") for k in counts), counts


def test_timeout_falls_back_and_timeout_then_success_recovers(server, make_rewriter):  # noqa: F811
    server.push(("sleep", 1.0))
    rewriter = make_rewriter(mode="per-episode", timeout_s=0.2, max_retries=0)
    [out] = rewriter.rewrite([mug_scene()])
    assert out == OfflineRewriter().rewrite([mug_scene()])[0]
    assert rewriter.report()["counts"]["request_failed_timeout"] == 1

    server.push(("sleep", 1.0))
    retrying = make_rewriter(mode="per-episode", timeout_s=0.2, max_retries=1)
    [out] = retrying.rewrite([mug_scene("other")])
    assert out.attr.startswith("Kindly")


def test_rewrite_naming_a_wrong_object_is_replaced(server, make_rewriter):  # noqa: F811
    server.push("wrong_object")
    rewriter = make_rewriter(mode="per-episode")
    scene = mug_scene()
    [out] = rewriter.rewrite([scene])
    offline = OfflineRewriter().rewrite([scene])[0]
    assert "laptop" not in out.attr and out.attr == offline.attr
    assert out.semantic.startswith("Kindly") and out.spatial.startswith("Kindly")
    counts = rewriter.report()["counts"]
    assert counts["rejected_names_unknown_object"] == 1 and counts["fallback_offline_attr"] == 1
    assert check_rewrites(out, scene) == {}


def test_cache_second_run_makes_zero_requests(server, make_rewriter):  # noqa: F811
    first = make_rewriter(mode="per-episode").rewrite(scenes(8))
    pools = make_rewriter(mode="templates").rewrite(scenes(8))
    sent = server.chat_requests
    assert sent > 0
    second = make_rewriter(mode="per-episode")
    assert second.rewrite(scenes(8)) == first
    again = make_rewriter(mode="templates")
    assert again.rewrite(scenes(8)) == pools
    assert server.chat_requests == sent
    assert second.report()["requests"] == 0 and second.report()["cache_hits"] == 8


def test_cached_rerun_needs_no_key(server, make_rewriter, monkeypatch):  # noqa: F811
    first = make_rewriter(mode="per-episode").rewrite(scenes(3))
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert make_rewriter(mode="per-episode").rewrite(scenes(3)) == first
    from dataengine.errors import InputError

    with pytest.raises(InputError, match="needs an API key"):
        make_rewriter(mode="per-episode").rewrite(scenes(4))


def test_templates_mode_makes_no_per_episode_calls(server, make_rewriter):  # noqa: F811
    rewriter = make_rewriter(mode="templates")
    batch = [random_scene(i) for i in range(40)]
    out = rewriter.rewrite(batch)
    families = {(s.task_family, s.relation) for s in batch}
    from dataengine.rewrite.prompts import asset_signature

    assets = {asset_signature(o) for s in batch for o in s.objects}
    assert server.chat_requests == len(families) + len(assets) < len(batch) * 2
    assert all(check_rewrites(r, s) == {} for r, s in zip(out, batch, strict=True))
    counts = rewriter.report()["counts"]
    assert counts["pool_rejected_template_bad_slots"] == 2 * len(families)
    assert counts["pool_rejected_drops_object"] >= len(assets)  # the 'shiny laptop' phrase in every pool
    assert sum(r.attr.startswith(("Kindly", "Would")) for r in out) > len(batch) // 2
    # more episodes of the same assets: no new request
    rewriter.rewrite(batch[:10])
    assert server.chat_requests == len(families) + len(assets)


def test_unseen_episodes_draw_unseen_templates(server, make_rewriter):  # noqa: F811
    rewriter = make_rewriter(mode="templates")
    seen = rewriter.rewrite([mug_scene(f"s{i}", split="seen") for i in range(30)])
    unseen = rewriter.rewrite([mug_scene(f"u{i}", split="unseen") for i in range(30)])

    def openings(rows):
        return {r.attr.split(" the ")[0] for r in rows}

    assert openings(seen) and openings(unseen) and not openings(seen) & openings(unseen)


def test_concurrency_is_bounded(server, make_rewriter):  # noqa: F811
    server.push(*[("sleep", 0.15)] * 8)
    rewriter = make_rewriter(mode="per-episode", concurrency=3)
    rewriter.rewrite(scenes(8))
    assert 2 <= server.max_in_flight <= 3


def test_max_cost_refuses_before_any_request(server, make_rewriter):  # noqa: F811
    rewriter = make_rewriter(mode="per-episode", max_cost_usd=0.0001)
    with pytest.raises(CostLimitError, match=r"would pass --max-cost \$0.000100"):
        rewriter.rewrite(scenes(20))
    assert server.chat_requests == 0
    unknown = make_rewriter(mode="per-episode", model="local-llm", max_cost_usd=1.0)
    with pytest.raises(CostLimitError, match="no price is known for model 'local-llm'"):
        unknown.rewrite(scenes(2))
    assert server.chat_requests == 0
    # a generous limit runs, and the spend stays under the estimate (the estimate is an upper bound)
    ok = make_rewriter(mode="per-episode", max_cost_usd=1.0)
    ok.rewrite(scenes(3))
    report = ok.report()
    assert 0 < report["cost_usd"] <= report["estimated_cost_usd"]


def test_meter_refuses_work_past_the_budget():
    meter = UsageMeter(Price(input=1.0, output=1.0), max_cost_usd=0.01)
    assert meter.reserve(0.006)
    assert not meter.reserve(0.006)  # two in flight would pass the limit
    meter.settle(0.006, {"prompt_tokens": 1000, "completion_tokens": 1000})
    assert meter.cost_usd == pytest.approx(0.002)
    assert meter.reserve(0.006)


def test_bad_key_stops_the_run_with_a_redacted_error(server, make_rewriter, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    server.push("echo_key_401")
    rewriter = make_rewriter(mode="per-episode", concurrency=1)
    with pytest.raises(RewriteServiceError) as info:
        rewriter.rewrite(scenes(3))
    assert "AuthenticationError" in str(info.value)
    assert FAKE_KEY not in str(info.value) and FAKE_KEY not in repr(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert server.chat_requests == 1  # the run stopped at the first refusal
    assert FAKE_KEY not in caplog.text


def test_reported_endpoint_and_metadata_carry_no_credentials(tmp_path):
    from dataengine.rewrite.llm import public_url
    from dataengine.rewrite.openai_rewriter import OpenAIRewriter

    url = "https://user:sk-test-SECRET123456789@example.org:8443/v1?api-key=sk-test-SECRET123456789#x"
    assert public_url(url) == "https://example.org:8443/v1"
    rewriter = OpenAIRewriter(api_key=FAKE_KEY, base_url=url, cache_dir=tmp_path)
    assert FAKE_KEY not in repr(rewriter.metadata()) + repr(rewriter.report()) + repr(vars(rewriter.meter))
