"""Inverse kinematics of the Panda's tool site with `mink` (differential IK on a robot-only MuJoCo model).

The IK model holds the arm alone with its base at the origin, so it is built once per process and serves every
scene: targets are converted from the world into the robot's base frame first. Any backend can use it, since the
robot's kinematics do not depend on the simulator.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dataengine.geometry import matrix_to_quat_wxyz, pose_to_matrix, quat_angle_between_rad
from dataengine.sim.backends.base import ARM_DOF, IkResult
from dataengine.sim.mujoco_env import import_mujoco

POS_TOL_M = 1e-3
ROT_TOL_RAD = 1e-2
MAX_ITERS = 60
STEP_DT_S = 0.5
# A comfortable, elbow-up posture the solver is pulled towards (weakly) to stay away from joint limits.
NOMINAL_ARM_QPOS_RAD = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 0.0, 0.0])  # tool down, fingers closing along y


@lru_cache(maxsize=1)
def _robot_model_xml() -> str:
    from dataengine.sim.backends.mjcf import robot_only_mjcf

    return robot_only_mjcf()


class PandaIk:
    """Solves tool poses for the 7 arm joints. Not thread-safe: one per worker."""

    def __init__(self) -> None:
        mujoco = import_mujoco()
        import mink

        self._mink = mink
        self.model = mujoco.MjModel.from_xml_string(_robot_model_xml())
        self.configuration = mink.Configuration(self.model)
        self.tool_task = mink.FrameTask("tool", "site", position_cost=1.0, orientation_cost=0.5, lm_damping=1e-3)
        self.posture_task = mink.PostureTask(self.model, cost=1e-3)
        self.limits = [mink.ConfigurationLimit(self.model)]
        self._q_nominal = np.zeros(self.model.nq)
        self._q_nominal[:ARM_DOF] = NOMINAL_ARM_QPOS_RAD
        self.posture_task.set_target(self._q_nominal)

    def solve(
        self, T_target_to_base: np.ndarray, seed_arm_qpos_rad: np.ndarray, *, max_iters: int = MAX_ITERS
    ) -> IkResult:
        """Joint positions putting the tool at `T_target_to_base` (4x4, robot base frame), from a seed posture."""
        mink = self._mink
        q = self._q_nominal.copy()
        q[:ARM_DOF] = seed_arm_qpos_rad
        self.configuration.update(q)
        target = mink.SE3.from_matrix(np.asarray(T_target_to_base, dtype=np.float64))
        self.tool_task.set_target(target)
        pos_err, rot_err = np.inf, np.inf
        for _ in range(max_iters):
            pos_err, rot_err = self._errors(T_target_to_base)
            if pos_err < POS_TOL_M and rot_err < ROT_TOL_RAD:
                break
            try:
                velocity = mink.solve_ik(
                    self.configuration,
                    [self.tool_task, self.posture_task],
                    STEP_DT_S,
                    solver="daqp",
                    damping=1e-4,
                    limits=self.limits,
                )
            except mink.exceptions.MinkError:  # infeasible QP (e.g. at a joint limit): report no convergence
                break
            self.configuration.integrate_inplace(velocity, STEP_DT_S)
        pos_err, rot_err = self._errors(T_target_to_base)
        return IkResult(
            arm_qpos_rad=self.configuration.q[:ARM_DOF].copy(),
            pos_error_m=pos_err,
            rot_error_rad=rot_err,
            converged=bool(pos_err < POS_TOL_M * 3 and rot_err < ROT_TOL_RAD * 3),
        )

    def solve_world(
        self, tool_pos_m, tool_quat_wxyz, seed_arm_qpos_rad: np.ndarray, base_pos_m, base_yaw_rad: float
    ) -> IkResult:
        """Like `solve`, for a world-frame tool pose and the robot base at (base_pos_m, base_yaw_rad)."""
        target = world_to_base(pose_to_matrix(tool_pos_m, tool_quat_wxyz), base_pos_m, base_yaw_rad)
        return self.solve(target, seed_arm_qpos_rad)

    def _errors(self, T_target_to_base: np.ndarray) -> tuple[float, float]:
        current = self.configuration.get_transform_frame_to_world("tool", "site").as_matrix()
        pos_err = float(np.linalg.norm(current[:3, 3] - T_target_to_base[:3, 3]))
        rot_err = quat_angle_between_rad(
            matrix_to_quat_wxyz(current[:3, :3]), matrix_to_quat_wxyz(T_target_to_base[:3, :3])
        )
        return pos_err, rot_err

    def forward(self, arm_qpos_rad: np.ndarray) -> np.ndarray:
        """Tool pose (4x4, base frame) for joint positions."""
        q = self._q_nominal.copy()
        q[:ARM_DOF] = arm_qpos_rad
        self.configuration.update(q)
        return self.configuration.get_transform_frame_to_world("tool", "site").as_matrix()


def world_to_base(T_target_to_world: np.ndarray, base_pos_m, base_yaw_rad: float) -> np.ndarray:
    """Express a world pose in the robot base frame."""
    from dataengine.geometry import yaw_to_quat_wxyz

    T_base_to_world = pose_to_matrix(base_pos_m, yaw_to_quat_wxyz(base_yaw_rad))
    return np.linalg.inv(T_base_to_world) @ T_target_to_world
