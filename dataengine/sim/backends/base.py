"""The simulator backend interface: everything the expert, validator, renderer and labeler may ask of a simulator.

A backend loads a scene from a backend-neutral `Layout`, drives the robot with joint position targets, steps
physics, reports state, and renders cameras (RGB, depth, segmentation) with their intrinsics and extrinsics. The
generator never imports a simulator: it talks to this protocol only. Implementations: `backends/mujoco.py` (default,
CPU); an Isaac Sim backend can implement the same protocol from the same `Layout`.

Conventions: world frame z up, metres, radians, quaternions (w, x, y, z). Camera extrinsics are OpenCV
(x right, y down, z forward). The robot has 7 arm joints and a parallel gripper described by its opening (metres
between the fingers, 0..0.08).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dataengine.records.layout import Layout, Look


class RenderQuality(BaseModel):
    """A render preset (what `load` takes as `quality`): `fast` = no shadows, no anti-aliasing, no reflections;
    `standard` = shadows on."""

    model_config = ConfigDict(extra="forbid")

    name: str = "fast"
    shadows: bool = False
    shadow_size: int = Field(default=1024, ge=64)
    msaa_samples: int = Field(default=0, ge=0, le=16)
    reflections: bool = False
    robot_visual_fraction: float = Field(
        default=1.0, gt=0, le=1, description="fraction of the robot's visual mesh triangles kept (decimation)"
    )


ARM_DOF = 7
GRIPPER_MAX_OPENING_M = 0.08


@dataclass
class SimState:
    """A complete, restorable physics state. `qpos`/`qvel` are the backend's generalized coordinates (their layout
    is backend-specific but stable for one loaded scene); `time_s` is simulation time."""

    qpos: np.ndarray  # (nq,)
    qvel: np.ndarray  # (nv,)
    act: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (na,) actuator states, if any
    ctrl: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (nu,) current targets
    time_s: float = 0.0

    def copy(self) -> SimState:
        return SimState(self.qpos.copy(), self.qvel.copy(), self.act.copy(), self.ctrl.copy(), self.time_s)


@dataclass
class RobotReading:
    """What proprioception reports: arm joint positions and velocities, gripper opening, tool pose in world."""

    arm_qpos_rad: np.ndarray  # (7,)
    arm_qvel_rad_s: np.ndarray  # (7,)
    gripper_opening_m: float
    tool_pos_m: np.ndarray  # (3,) tool centre point between the finger pads, world frame
    tool_quat_wxyz: np.ndarray  # (4,) tool orientation, world frame (tool z axis points out of the hand)


@dataclass
class CameraParams:
    """Pinhole camera: K (3x3, pixels) and the OpenCV camera->world transform (4x4)."""

    name: str
    width: int
    height: int
    intrinsics_k: np.ndarray  # (3, 3)
    T_cam_to_world_cv: np.ndarray  # (4, 4)

    @property
    def T_world_to_cam_cv(self) -> np.ndarray:
        return np.linalg.inv(self.T_cam_to_world_cv)


@dataclass
class CameraFrame:
    """One render of one camera. `segmentation` holds object ids as indexes into `Layout.objects` (-1 = anything
    else: robot, table, floor, background)."""

    rgb: np.ndarray | None = None  # (H, W, 3) uint8
    depth_m: np.ndarray | None = None  # (H, W) float32, distance along the optical axis
    segmentation: np.ndarray | None = None  # (H, W) int16


@dataclass
class IkResult:
    arm_qpos_rad: np.ndarray  # (7,)
    pos_error_m: float
    rot_error_rad: float
    converged: bool


class PandaIkMixin:
    """`SimBackend.solve_ik` for a backend with the Franka Panda at `layout.robot`: mink IK on the engine's Panda
    model, the same whatever the simulator, built on first use."""

    layout: Layout | None
    _ik = None

    def solve_ik(self, tool_pos_m: np.ndarray, tool_quat_wxyz: np.ndarray, seed_arm_qpos_rad: np.ndarray) -> IkResult:
        from dataengine.sim.ik import PandaIk

        if self._ik is None:
            self._ik = PandaIk()
        robot = self.layout.robot
        return self._ik.solve_world(tool_pos_m, tool_quat_wxyz, seed_arm_qpos_rad, robot.base_pos_m, robot.base_yaw_rad)


@runtime_checkable
class SimBackend(Protocol):
    """A loaded simulator scene. One instance is reused for many layouts (call `load` again)."""

    name: str
    control_dt_s: float  # duration of one control step (set by `load`)

    def load(self, layout: Layout, *, control_hz: float, quality: RenderQuality | None = None) -> None:
        """Build the scene (objects at their layout poses, robot at its start) and reset to it."""
        ...

    def reset(self) -> None:
        """Back to the layout's initial state (robot start, object poses, zero velocities, targets = start)."""
        ...

    def set_object_poses(self, poses: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Place objects (uid -> (pos_m (3,), quat_wxyz (4,))) with zero velocity; updates derived quantities."""
        ...

    def get_state(self) -> SimState: ...

    def set_state(self, state: SimState) -> None:
        """Restore a state exactly (also recomputes positions of bodies, cameras and sites)."""
        ...

    def set_joint_targets(self, arm_qpos_rad: np.ndarray, gripper_opening_m: float) -> None:
        """Position targets for the 7 arm joints and the gripper opening (0 = closed, 0.08 = open)."""
        ...

    def step(self, n_control_steps: int = 1) -> None:
        """Advance physics by whole control steps, holding the current targets."""
        ...

    def robot(self) -> RobotReading: ...

    def object_pose(self, uid: str) -> tuple[np.ndarray, np.ndarray]:
        """(pos_m (3,), quat_wxyz (4,)) of an object's body frame, world frame."""
        ...

    def object_velocity(self, uid: str) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s (3,), angular rad/s (3,)) of an object, world frame."""
        ...

    def contacts_between(self, uid_a: str, uid_b: str) -> bool:
        """Whether two objects (or an object and 'robot' / 'table' / 'fingers') touch."""
        ...

    def solve_ik(self, tool_pos_m: np.ndarray, tool_quat_wxyz: np.ndarray, seed_arm_qpos_rad: np.ndarray) -> IkResult:
        """Arm joint positions that put the tool at a world pose (the robot's base is where the layout puts it)."""
        ...

    def apply_look(self, look: Look) -> None:
        """Change colours, lights and cameras for rendering (physics unaffected)."""
        ...

    def camera_params(self, camera: str) -> CameraParams:
        """Intrinsics and current extrinsics of a camera (wrist cameras move with the hand)."""
        ...

    def render(self, camera: str, *, rgb: bool = True, depth: bool = False, segmentation: bool = False) -> CameraFrame:
        """Render the current state from a camera at the layout's resolution."""
        ...

    def gl_info(self) -> str:
        """The renderer's description (e.g. the GL_RENDERER string), for the logs."""
        ...

    def close(self) -> None: ...
