"""The Franka Panda as Isaac Sim ships it (USD), and how its joints relate to the layout's joint convention.

Layout joint angles (`RobotStart.arm_qpos_rad`, `SimBackend.set_joint_targets`) follow the gymnasium-robotics
Panda that the MuJoCo backend loads. That model places the zero of joint 6 a quarter turn and the zero of joint 7
an eighth of a turn away from Franka's official description (the one Isaac Sim's `franka.usd` is converted from):
`q_usd = q_layout + FRANKA_USD_JOINT_OFFSETS_RAD` (the layout's home [0, -0.785, 0, -2.356, 0, 0, 0] is Franka's
"ready" pose [0, -0.785, 0, -2.356, 0, 1.571, 0.785]). With that offset the two models' link-7 frames coincide,
so wrist cameras and the tool frame are placed identically on both (checked against Franka's published DH
parameters in tests/test_usd_franka.py).
"""

from __future__ import annotations

import math
import os

import numpy as np

# Isaac Sim 5.x asset layout. 4.x kept the Panda under /Isaac/Robots/Franka/franka.usd.
ISAAC_ASSETS_ROOT_5_1 = "https://omniverse-content-production.s3-us-west-2.amazonaws.com/Assets/Isaac/5.1"
FRANKA_USD_IN_ASSETS = "/Isaac/Robots/FrankaRobotics/FrankaPanda/franka.usd"
FRANKA_USD_ENV = "DATAENGINE_FRANKA_USD"

ARM_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES = ("panda_finger_joint1", "panda_finger_joint2")
LINK7 = "panda_link7"  # wrist cameras and the tool frame hang off this link (same frame as the MuJoCo model's)
FINGER_LINKS = ("panda_leftfinger", "panda_rightfinger")
FINGER_MAX_M = 0.04  # each finger travels 0..4 cm; the gripper opening is their sum

FRANKA_USD_JOINT_OFFSETS_RAD = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.57, 0.7854])  # the MuJoCo model's own numbers
TOOL_OFFSET_IN_LINK7_M = 0.2254  # same tool point as `backends/mjcf.TOOL_SITE`: between the finger pads
TOOL_YAW_IN_LINK7_RAD = math.pi / 4

# Franka's published kinematics (modified DH, Craig): (a_{i-1}, d_i, alpha_{i-1}) for joints 1..7.
FRANKA_DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)


def default_franka_usd() -> str:
    """The robot asset a stage references: `$DATAENGINE_FRANKA_USD`, else Isaac Sim 5.1's public asset."""
    return os.environ.get(FRANKA_USD_ENV) or ISAAC_ASSETS_ROOT_5_1 + FRANKA_USD_IN_ASSETS


def layout_to_usd_joints(arm_qpos_rad, gripper_opening_m: float) -> np.ndarray:
    """Layout arm angles (7) and gripper opening -> the 9 joint positions of Isaac's Franka (7 arm, 2 fingers)."""
    arm = np.asarray(arm_qpos_rad, dtype=np.float64) + FRANKA_USD_JOINT_OFFSETS_RAD
    finger = float(np.clip(gripper_opening_m, 0.0, 2 * FINGER_MAX_M)) / 2
    return np.concatenate([arm, [finger, finger]])


def usd_to_layout_arm(usd_arm_qpos_rad) -> np.ndarray:
    """Isaac's 7 arm joint angles -> the layout convention."""
    return np.asarray(usd_arm_qpos_rad, dtype=np.float64)[:7] - FRANKA_USD_JOINT_OFFSETS_RAD


def franka_link7_in_base(usd_arm_qpos_rad) -> np.ndarray:
    """4x4 pose of link 7 in the robot base frame from Franka's DH table (official joint convention)."""
    transform = np.eye(4)
    for (a, d, alpha), theta in zip(FRANKA_DH, np.asarray(usd_arm_qpos_rad, dtype=np.float64)[:7], strict=True):
        ca, sa, ct, st = math.cos(alpha), math.sin(alpha), math.cos(theta), math.sin(theta)
        step = np.array(
            [
                [ct, -st, 0.0, a],
                [st * ca, ct * ca, -sa, -d * sa],
                [st * sa, ct * sa, ca, d * ca],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
        transform = transform @ step
    return transform


def tool_in_link7() -> np.ndarray:
    """4x4 pose of the tool frame (x = closing axis, z out of the hand) in the link-7 frame."""
    c, s = math.cos(TOOL_YAW_IN_LINK7_RAD), math.sin(TOOL_YAW_IN_LINK7_RAD)
    transform = np.eye(4)
    transform[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    transform[2, 3] = TOOL_OFFSET_IN_LINK7_M
    return transform
