"""Execute a plan in physics (no rendering), record every control step, and judge the attempt.

Checks along the way give the failure reason of an attempt: `grasp_missed` (object not lifted with the fingers
on it after the lift), `dropped_in_transit` (object left the gripper before the release), `physics_unstable`
(non-finite state), `object_fell_off_table`, then the success predicate's reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataengine.records.layout import Layout
from dataengine.sim.backends.base import SimBackend, SimState
from dataengine.sim.expert import Plan
from dataengine.sim.predicates import check_success
from dataengine.sim.sampler import AttemptFailed

LIFT_MIN_RISE_M = 0.03
HOLD_MAX_OFFSET_M = 0.05


@dataclass
class Trajectory:
    """Everything recorded at each control step t (before action t is applied), plus the final state."""

    qpos: np.ndarray  # (T, nq)
    qvel: np.ndarray  # (T, nv)
    ctrl: np.ndarray  # (T, nu) targets in force when the state was read
    time_s: np.ndarray  # (T,)
    arm_qpos_rad: np.ndarray  # (T, 7)
    gripper_opening_m: np.ndarray  # (T,)
    tool_pose: np.ndarray  # (T, 7) position + quaternion wxyz, world
    object_poses: np.ndarray  # (T, n_objects, 7) in Layout.objects order
    action_arm_rad: np.ndarray  # (T, 7) joint position targets (the expert's: the labels)
    action_gripper_m: np.ndarray  # (T,) gripper opening target
    final_state: SimState
    final_object_poses: np.ndarray  # (n_objects, 7)
    final_tool_pose: np.ndarray  # (7,)
    executed_arm_rad: np.ndarray | None = None  # (T, 7) targets actually sent, when noise was added (recovery demos)

    @property
    def steps(self) -> int:
        return int(self.action_arm_rad.shape[0])

    def state(self, t: int) -> SimState:
        return SimState(self.qpos[t], self.qvel[t], np.zeros(0), self.ctrl[t], float(self.time_s[t]))


def _object_poses(backend: SimBackend, layout: Layout) -> np.ndarray:
    return np.array([np.concatenate(backend.object_pose(o.uid)) for o in layout.objects])


def execute(
    backend: SimBackend, layout: Layout, plan: Plan, *, check: bool = True, noise: np.ndarray | None = None
) -> Trajectory:
    """Run the plan from the backend's current state. With `check`, raises AttemptFailed on the first failure.
    `noise` (T, 7) is added to the joint targets sent to the robot (recovery demonstrations); the recorded actions
    stay the plan's targets."""
    rec: dict[str, list] = {k: [] for k in ("qpos", "qvel", "ctrl", "time", "arm", "grip", "tool", "objs")}
    pick = layout.pick
    start_z = backend.object_pose(pick.uid)[0][2]
    phase_end = {name: end for name, _, end in plan.phases}
    for t in range(len(plan.arm_targets_rad)):
        state = backend.get_state()
        reading = backend.robot()
        rec["qpos"].append(state.qpos)
        rec["qvel"].append(state.qvel)
        rec["ctrl"].append(state.ctrl)
        rec["time"].append(state.time_s)
        rec["arm"].append(reading.arm_qpos_rad)
        rec["grip"].append(reading.gripper_opening_m)
        rec["tool"].append(np.concatenate([reading.tool_pos_m, reading.tool_quat_wxyz]))
        rec["objs"].append(_object_poses(backend, layout))
        target = plan.arm_targets_rad[t] if noise is None else plan.arm_targets_rad[t] + noise[t]
        backend.set_joint_targets(target, float(plan.gripper_targets_m[t]))
        backend.step(1)
        if check:
            _check_step(backend, layout, plan, t + 1, phase_end, start_z)
    final = backend.get_state()
    if check:
        reason = check_success(backend, layout)
        if reason:
            raise AttemptFailed(reason)
    final_reading = backend.robot()
    return Trajectory(
        qpos=np.array(rec["qpos"]),
        qvel=np.array(rec["qvel"]),
        ctrl=np.array(rec["ctrl"]),
        time_s=np.array(rec["time"]),
        arm_qpos_rad=np.array(rec["arm"]),
        gripper_opening_m=np.array(rec["grip"]),
        tool_pose=np.array(rec["tool"]),
        object_poses=np.array(rec["objs"]),
        action_arm_rad=plan.arm_targets_rad.copy(),
        action_gripper_m=plan.gripper_targets_m.copy(),
        final_state=final,
        final_object_poses=_object_poses(backend, layout),
        final_tool_pose=np.concatenate([final_reading.tool_pos_m, final_reading.tool_quat_wxyz]),
        executed_arm_rad=None if noise is None else plan.arm_targets_rad + noise,
    )


def _check_step(backend: SimBackend, layout: Layout, plan: Plan, steps_done: int, phase_end: dict, start_z: float):
    pick = layout.pick
    state = backend.get_state()
    if not (np.all(np.isfinite(state.qpos)) and np.all(np.isfinite(state.qvel))):
        raise AttemptFailed("physics_unstable")
    if steps_done == phase_end["lift"]:
        rise = backend.object_pose(pick.uid)[0][2] - start_z
        if rise < LIFT_MIN_RISE_M or not backend.contacts_between(pick.uid, "fingers"):
            raise AttemptFailed("grasp_missed", f"rise {rise:.3f} m")
    if steps_done in (phase_end["transport"], phase_end["lower"]):
        pos = backend.object_pose(pick.uid)[0]
        tool = backend.robot().tool_pos_m
        if np.linalg.norm(pos + np.array([0, 0, pick.grasp_height_m]) - tool) > HOLD_MAX_OFFSET_M:
            raise AttemptFailed("dropped_in_transit")
    if steps_done == phase_end["settle"]:
        table_z = layout.table.top_center_m[2]
        for obj in layout.objects:
            if backend.object_pose(obj.uid)[0][2] < table_z - 0.05:
                raise AttemptFailed("object_fell_off_table", obj.uid)
