"""The tiny dual-system model: the gradient decay really scales the action loss's gradient into the LM, the
gradient-conflict diagnostic's definition, normalization and the byte tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dataengine.train.diagnostics import GradientConflict, principal_angle_cosines  # noqa: E402
from dataengine.train.models.policy import ActionSpace, build_policy  # noqa: E402
from dataengine.train.models.qformer import grad_decay  # noqa: E402
from dataengine.train.normalization import Normalizer  # noqa: E402
from dataengine.train.recipe import TrainRecipe  # noqa: E402
from dataengine.train.tokenizer import IGNORE_INDEX, TinyTokenizer  # noqa: E402
from tests.fixtures.train_data import tiny_recipe  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run much faster on one intra-op thread (restored afterwards for other areas' tests)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_policy(decay: float):
    recipe = TrainRecipe.model_validate(tiny_recipe(**{"model.grad_decay": decay}))
    torch.manual_seed(0)
    return build_policy(recipe.model, ActionSpace(chunk_size=8), image_size=32)


def action_batch(encoder, n: int = 3) -> dict:
    rng = np.random.default_rng(0)
    items = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(n)]
    batch = encoder.encode(items, ["put the red block in the bowl"] * n, [None] * n)
    batch["state"] = torch.from_numpy(rng.uniform(-1, 1, (n, 8)).astype(np.float32))
    batch["actions"] = torch.from_numpy(rng.uniform(-1, 1, (n, 8, 8)).astype(np.float32))
    return batch


def action_grads(decay: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    policy, encoder = tiny_policy(decay)
    # adaLN-zero starts with closed gates (the condition has no effect yet): open them as training would
    gen = torch.Generator().manual_seed(1)
    for block in policy.expert.blocks:
        with torch.no_grad():
            block.modulation[1].weight.copy_(0.05 * torch.randn(block.modulation[1].weight.shape, generator=gen))
    loss = policy.action_loss(action_batch(encoder), torch.Generator().manual_seed(7))
    loss.backward()
    lm = [p.grad.clone() for p in policy.backbone_parameters()]
    heads = [p.grad.clone() for p in policy.head_parameters()]
    return lm, heads


@pytest.mark.parametrize("decay", [0.5, 0.25, 0.3, 0.0])
def test_action_gradient_into_the_lm_is_the_configured_fraction(decay):
    lm_full, heads_full = action_grads(1.0)
    lm_decayed, heads_decayed = action_grads(decay)
    assert any(g.abs().sum() > 0 for g in lm_full)  # the action loss does reach the LM
    for full, decayed in zip(lm_full, lm_decayed, strict=True):
        if decay in (0.5, 0.25, 0.0):  # powers of two: exact in binary floating point
            assert torch.equal(decayed, full * decay)
        else:
            torch.testing.assert_close(decayed, full * decay, rtol=1e-5, atol=1e-9)
    for full, decayed in zip(heads_full, heads_decayed, strict=True):  # the heads are not decayed
        assert torch.equal(full, decayed)


def test_grad_decay_is_identity_forward():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_decay(x, 0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 0.5))
    with pytest.raises(ValueError):
        grad_decay(x, 1.5)


def test_principal_angles_of_known_subspaces():
    e = torch.eye(6)
    assert torch.allclose(principal_angle_cosines([e[0], e[1]], [e[0] + e[1], e[0] - e[1]]), torch.ones(2).double())
    assert torch.allclose(principal_angle_cosines([e[0], e[1]], [e[2], e[3]]), torch.zeros(2).double())
    c = principal_angle_cosines([e[0]], [e[0] + e[1]])
    assert torch.allclose(c, torch.tensor([2**-0.5]).double())


def test_gradient_conflict_metrics():
    p = torch.nn.Parameter(torch.zeros(5))
    diag = GradientConflict([p], window=3)
    out = diag.add(torch.tensor([1.0, 0, 0, 0, 0]), torch.tensor([-1.0, 0, 0, 0, 0]))
    assert out["grad_cos"] == pytest.approx(-1.0) and out["subspace_sim"] == pytest.approx(1.0)
    out = diag.add(torch.tensor([0, 1.0, 0, 0, 0]), torch.tensor([0, 0, 1.0, 0, 0]))
    assert out["grad_cos"] == pytest.approx(0.0)
    # span{e0, e1} vs span{e0, e2}: principal cosines (1, 0) -> similarity 0.5
    assert out["subspace_sim"] == pytest.approx(0.5)
    assert out["subspace_cos_min_angle"] == pytest.approx(1.0) and out["subspace_cos_max_angle"] == pytest.approx(0.0)


def test_sketched_diagnostic_preserves_geometry():
    """Above max_dim the gradients are CountSketched; cosines stay close to the exact ones."""
    p = torch.nn.Parameter(torch.zeros(20_000))
    diag = GradientConflict([p], window=2, max_dim=1000, sketch_dim=4096)
    torch.manual_seed(0)
    a, b = torch.randn(20_000), torch.randn(20_000)
    b = 0.6 * a + 0.8 * b / b.norm() * a.norm()
    sketches = []
    for g in (a, b):
        p.grad = g.clone()
        sketches.append(diag.capture())
    exact = float(a @ b / (a.norm() * b.norm()))
    approx = float(sketches[0] @ sketches[1] / (sketches[0].norm() * sketches[1].norm()))
    assert abs(exact - approx) < 0.05


def test_normalizer_round_trip_and_binary_gripper():
    stats = {
        "arrays": {
            "action_delta_joints": {"min": [-0.1] * 7, "max": [0.1] * 7, "q01": [-0.05] * 7, "q99": [0.05] * 7},
            "action_gripper_close": {"min": [0.0], "max": [1.0], "q01": [0.0], "q99": [1.0]},
            "state_joints": {"min": [-2.0] * 7, "max": [2.0] * 7, "q01": [-1.0] * 7, "q99": [1.0] * 7},
            "state_gripper_opening": {"min": [0.0], "max": [0.08], "q01": [0.0], "q99": [0.08]},
            "action_gripper_opening": {"min": [0.0], "max": [0.08], "q01": [0.0], "q99": [0.08]},
            "state/proprio": {"min": [-2.0] * 7 + [0.0], "max": [2.0] * 7 + [0.08], "mean": [0] * 8, "std": [1] * 8},
        }
    }
    rng = np.random.default_rng(0)
    deltas, close = rng.uniform(-0.1, 0.1, (16, 7)), rng.integers(0, 2, 16).astype(float)
    for mode in ("min_max", "q99"):
        norm = Normalizer(stats, action_mode=mode)
        actions = norm.actions(deltas, close)
        assert actions.shape == (16, 8) and actions.min() >= -1 and actions.max() <= 1
        assert set(np.unique(actions[:, 7])) <= {-1.0, 1.0}
        back, closed = norm.unnormalize_actions(actions)
        assert np.array_equal(closed, close > 0.5)
        if mode == "min_max":
            np.testing.assert_allclose(back, deltas, atol=1e-6)
    assert np.allclose(Normalizer(stats).state(np.r_[np.zeros(7), 0.04]), 0.0)
    assert np.allclose(Normalizer(stats, state_mode="standard").state(np.r_[np.ones(7), 0.0]), [1.0] * 7 + [0.0])
    assert Normalizer(stats).gripper_targets_m() == (0.0, 0.08)


def test_byte_tokenizer_supervises_only_the_answer():
    tok = TinyTokenizer()
    ids, labels, truncated = tok.encode_chat("Where is the cup?", "[1,2,3,4]", max_len=64)
    answer = [i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX]
    assert tok.decode(answer) == "[1,2,3,4]" and answer[-1] == tok.eos_id and not truncated
    ids, labels, truncated = tok.encode_chat("x" * 100, "[1,2]", max_len=32)
    answer = [i for i, lab in zip(ids, labels, strict=True) if lab >= 0]
    assert len(ids) == 32 and truncated and tok.decode(answer) == "[1,2]"


def test_number_tokens_round_trip():
    from dataengine.train.tokenizer import NUMBER_BASE, encode_text

    tok = TinyTokenizer()
    for text in ["[12,40,88,97]", "0.05 x 123456 and 0, 9999, 10000", "[[1,2],[3,4]] é"]:
        assert tok.decode(encode_text(text)) == text
    assert encode_text("[12,40]") == [ord("["), NUMBER_BASE + 12, ord(","), NUMBER_BASE + 40, ord("]")]
    assert NUMBER_BASE + 5 not in encode_text("05")  # a leading zero stays bytes, so "05" is not read as 5


def test_a_byte_tokenizer_checkpoint_gets_a_clear_error(tmp_path):
    from dataengine.errors import InputError
    from dataengine.train.checkpoint import MODEL_FILE, load_model_weights

    policy, _ = tiny_policy(0.5)
    state = policy.state_dict()
    state["backbone.token_embed.weight"] = torch.zeros(260, state["backbone.token_embed.weight"].shape[1])
    torch.save(state, tmp_path / MODEL_FILE)
    with pytest.raises(InputError, match="byte-only tokenizer"):
        load_model_weights(tmp_path, policy, torch.device("cpu"))


def test_constrained_decoding_makes_an_untrained_model_answer_in_the_grammar():
    """Free greedy decoding of an untrained model is gibberish; under the grammar every answer parses with the
    task's number of coordinates, and points/traces close within the token budget."""
    from dataengine.formats import get_style
    from dataengine.train.constrained import allowed_next

    assert allowed_next("box", "[N,N,N,N]", 10) == "E" and allowed_next("point", "[[N,N]", 10) == ",]"
    assert allowed_next("trace", "[[N,N]", 7) == "]" and allowed_next("point", "[[N,N]]", 5) == "E"
    policy, encoder = tiny_policy(0.5)
    policy.eval()
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    batch = encoder.encode(images, ["Where is the cup?"] * 3, [None] * 3, for_generation=True)
    tasks = ["box", "point", "trace"]
    style = get_style("internvla-m1")
    for max_new in (12, 40):
        texts = policy.generate(batch, max_new_tokens=max_new, tasks=tasks)
        for task, text in zip(tasks, texts, strict=True):
            parsed = style.parse(task, text, 320, 240)
            assert parsed and all(len(c) == (4 if task == "box" else 2) for c in parsed), (task, text)
    free = policy.generate(batch, max_new_tokens=40)
    assert free != texts


def test_qwen_loads_from_a_local_weights_folder(tmp_path, monkeypatch):
    """The real-run path: `model.qwen.weights` = a folder written by save_pretrained, loaded offline."""
    from dataengine.train.models.qwen import load_qwen_backbone
    from dataengine.train.recipe import QwenBackbone
    from tests.fixtures.train_data import TINY_QWEN

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    random_cfg = QwenBackbone.model_validate(TINY_QWEN["qwen"])
    backbone, encoder = load_qwen_backbone(random_cfg)
    backbone.model.save_pretrained(tmp_path)
    encoder.tokenizer.save_pretrained(tmp_path)
    encoder.image_processor.save_pretrained(tmp_path)
    local = QwenBackbone.model_validate({**TINY_QWEN["qwen"], "random_config": None, "weights": str(tmp_path)})
    loaded, loaded_encoder = load_qwen_backbone(local)
    for (name, a), (_, b) in zip(backbone.model.state_dict().items(), loaded.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    batch = loaded_encoder.encode([image], ["Where is the cup?"], ["[1,2,3,4]"])
    out = loaded(batch)
    assert torch.isfinite(out.lm_loss) and out.hidden.shape[-1] == loaded.hidden_size


def test_missing_local_weights_say_what_is_needed(tmp_path):
    from dataengine.errors import InputError
    from dataengine.train.models.qwen import load_qwen_backbone
    from dataengine.train.recipe import QwenBackbone

    with pytest.raises(InputError, match="nothing is downloaded"):
        load_qwen_backbone(QwenBackbone(weights=str(tmp_path)))


def test_public_names_resolve():
    import dataengine.train as train

    assert all(getattr(train, name) is not None for name in train.__all__)


def pointing_policy(expert: str = "mlp"):
    overrides = {
        "model.tiny": {"stem": "conv", "max_images": 2, "pointing": True, "point_channels": 16, "dim": 32,
                       "layers": 1, "heads": 2, "token_pool": 2, "max_text_len": 64},
        "model.expert": expert,
        "model.qformer_dim": 32,
        "model.qformer_queries": 2,
    }  # fmt: skip
    recipe = TrainRecipe.model_validate(tiny_recipe(**overrides))
    torch.manual_seed(0)
    return build_policy(recipe.model, ActionSpace(action_dim=7, chunk_size=8), image_size=32)


def pointing_batch(encoder, n: int = 3) -> dict:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8) for _ in range(n)]
    batch = encoder.encode(
        images, ["Move the red cube into the bowl."] * n, [None] * n, queries=["Point to the blue mug."] * n
    )
    batch["state"] = torch.from_numpy(rng.uniform(-1, 1, (n, 8)).astype(np.float32))
    batch["actions"] = torch.from_numpy(rng.uniform(-1, 1, (n, 8, 7)).astype(np.float32))
    batch["point_targets"] = torch.from_numpy(rng.uniform(-0.9, 0.9, (n, 2, 2, 2)).astype(np.float32))
    batch["point_visible"] = torch.from_numpy(np.array([[[True, True], [True, False]]] * n))
    batch["grasp_yaw"] = torch.from_numpy(np.array([[1.0, 0.0]] * n, np.float32))
    batch["query_points"] = torch.from_numpy(rng.uniform(-0.9, 0.9, (n, 2, 2)).astype(np.float32))
    batch["query_visible"] = torch.from_numpy(np.array([[True, False]] * n))
    return batch


@pytest.mark.parametrize("expert", ["mlp", "flow"])
def test_pointing_policy_losses_and_prediction(expert):
    """Two cameras per sample, the pointing head's loss (instruction roles and a named object) and the action loss
    both reach the backbone; a few steps on one batch lower the pointing loss; predictions have the chunk shape."""
    policy, encoder = pointing_policy(expert)
    batch = pointing_batch(encoder)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        losses = policy.action_losses(batch, torch.Generator().manual_seed(0))
        assert set(losses) == {"action", "point"} and all(torch.isfinite(v) for v in losses.values())
        optimizer.zero_grad()
        (losses["action"] + losses["point"]).backward()
        assert policy.backbone.pointing.film.weight.grad.abs().sum() > 0
        optimizer.step()
        first = first if first is not None else losses["point"].item()
    assert losses["point"].item() < first
    chunk = policy.predict_actions(batch, torch.Generator().manual_seed(0))
    assert chunk.shape == (3, 8, 7) and torch.isfinite(chunk).all()
