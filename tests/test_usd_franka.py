"""The Franka conventions the USD stage and the Isaac backend rely on, checked against the MuJoCo Panda."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from dataengine.sim.backends.mjcf import TOOL_OFFSET_IN_HAND_M, TOOL_SITE, robot_only_mjcf
from dataengine.sim.mujoco_env import import_mujoco
from dataengine.sim.usd import franka

READY_POSE_USD = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])  # Franka's documented "ready" pose


@pytest.fixture(scope="module")
def panda():
    mj = import_mujoco()
    model = mj.MjModel.from_xml_string(robot_only_mjcf())
    return mj, model, mj.MjData(model)


def test_link7_and_tool_from_franka_dh_match_the_mujoco_panda(panda):
    """With q_usd = q_layout + offsets, Franka's published DH chain puts link 7 and the tool where MuJoCo does,
    so wrist cameras and tool poses carry over to Isaac's franka.usd unchanged."""
    mj, model, data = panda
    link7 = mj.mj_name2id(model, mj.mjtObj.mjOBJ_BODY, "panda0_link7")
    tool = mj.mj_name2id(model, mj.mjtObj.mjOBJ_SITE, TOOL_SITE)
    rng = np.random.default_rng(3)
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 0.0, 0.0])
    for _ in range(20):
        q_layout = home + rng.uniform(-0.8, 0.8, size=7)
        data.qpos[:7] = q_layout
        mj.mj_forward(model, data)
        T_link7 = franka.franka_link7_in_base(q_layout + franka.FRANKA_USD_JOINT_OFFSETS_RAD)
        # the MuJoCo model writes 1.57 / 0.7854 for pi/2 / pi/4: sub-millimetre, sub-milliradian agreement
        assert np.abs(T_link7[:3, 3] - data.xpos[link7]).max() < 3e-4
        assert np.abs(T_link7[:3, :3] - data.xmat[link7].reshape(3, 3)).max() < 2e-3
        T_tool = T_link7 @ franka.tool_in_link7()
        assert np.abs(T_tool[:3, 3] - data.site_xpos[tool]).max() < 5e-4
        assert np.abs(T_tool[:3, :3] - data.site_xmat[tool].reshape(3, 3)).max() < 2e-3
    assert franka.TOOL_OFFSET_IN_LINK7_M == TOOL_OFFSET_IN_HAND_M


def test_wrong_offsets_would_be_caught(panda):
    mj, model, data = panda
    link7 = mj.mj_name2id(model, mj.mjtObj.mjOBJ_BODY, "panda0_link7")
    data.qpos[:7] = [0.1, -0.6, 0.2, -2.0, 0.3, 0.4, 0.5]
    mj.mj_forward(model, data)
    T_no_offset = franka.franka_link7_in_base(data.qpos[:7])
    assert np.abs(T_no_offset[:3, :3] - data.xmat[link7].reshape(3, 3)).max() > 0.1


def test_layout_home_is_frankas_ready_pose_and_conversions_round_trip():
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 0.0, 0.0])
    usd = franka.layout_to_usd_joints(home, 0.08)
    assert np.allclose(usd[:7], READY_POSE_USD, atol=1e-3)
    assert np.allclose(usd[7:], [0.04, 0.04])
    assert np.allclose(franka.usd_to_layout_arm(usd), home)
    assert np.allclose(franka.layout_to_usd_joints(home, 0.5)[7:], [franka.FINGER_MAX_M] * 2)
