"""The Isaac Sim backend (GPU physics and RTX rendering) behind the same `SimBackend` protocol as MuJoCo.

Pinned to Isaac Sim 5.1 (`isaacsim.core.api`, `isaacsim.core.prims`, `isaacsim.sensors.camera`; see
`isaac_app.py`). `load` writes the layout as a USD stage (`dataengine.sim.usd`, the same stage
`dataengine sim export-usd` writes, with the Franka asset as a payload), opens it, wraps the robot as a
`SingleArticulation`, every object as a `SingleRigidPrim` and every camera as an `isaacsim.sensors.camera.Camera`
with rgb, distance_to_image_plane and instance_id_segmentation annotators. Joint angles cross the interface in
the layout convention and are converted with `usd.franka` offsets. IK uses the shared kinematic solver
(`dataengine.sim.ik`, MuJoCo + mink on the same Panda kinematics), so plans do not depend on the backend.

NOT exercised against a real Isaac Sim in this repository (no RTX GPU and no Isaac Sim install where it was
written); the API calls follow the Isaac Sim 5.x Python API reference. See docs/isaac.md for what is verified.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from dataengine.errors import InputError
from dataengine.geometry import gl_camera_to_cv, matrix_to_quat_wxyz, pose_to_matrix
from dataengine.records.layout import Layout, Look
from dataengine.sim.backends.base import (
    ARM_DOF,
    CameraFrame,
    CameraParams,
    PandaIkMixin,
    RenderQuality,
    RobotReading,
    SimState,
)
from dataengine.sim.backends.isaac_app import require_isaac_sim, simulation_app
from dataengine.sim.usd import franka

log = logging.getLogger(__name__)

PHYSICS_DT_S = 1.0 / 240.0
RENDER_UPDATES = 2  # app updates per render so annotators hold the current state (RTX is one frame behind)
ROBOT_OWNER, FINGERS_OWNER, TABLE_OWNER = "robot", "fingers", "table"


class PrimOwners:
    """Names the interface uses for prims of an exported stage: object uids, 'fingers', 'robot', 'table'."""

    def __init__(self, object_uids: list[str]) -> None:
        from dataengine.sim.usd.stage import ROBOT, TABLE, object_path

        self.object_index = {uid: i for i, uid in enumerate(object_uids)}
        self._prefixes = {object_path(uid): uid for uid in object_uids}
        self._robot, self._table = ROBOT, TABLE

    def __call__(self, path: str) -> str:
        for prefix, uid in self._prefixes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return uid
        if path.startswith(self._robot + "/"):
            return FINGERS_OWNER if path.split("/")[3] in franka.FINGER_LINKS else ROBOT_OWNER
        if path == self._robot:
            return ROBOT_OWNER
        if path == self._table or path.startswith(self._table + "/"):
            return TABLE_OWNER
        return path


def segmentation_from_instance_ids(annotator: dict, owners: PrimOwners) -> np.ndarray:
    """Isaac's instance_id_segmentation output ({"data": (H, W[, 1]) ids of leaf prims, "info": {"idToLabels":
    {"id": prim path}}}) -> (H, W) int16 layout object index, -1 for robot, table, floor and background."""
    ids = np.asarray(annotator["data"]).astype(np.int64)
    if ids.ndim == 3:
        ids = ids[..., 0]
    lookup = np.full(int(ids.max(initial=0)) + 1, -1, dtype=np.int16)
    for key, path in annotator["info"]["idToLabels"].items():
        owner = owners(str(path))
        if owner in owners.object_index and int(key) < lookup.size:
            lookup[int(key)] = owners.object_index[owner]
    return lookup[ids]


def update_touching(touching: set[tuple[str, str]], events) -> None:
    """Fold contact report events ((owner a, owner b, lost?) per pair) into the set of touching pairs."""
    for a, b, lost in events:
        pair = (a, b) if a <= b else (b, a)
        if lost:
            touching.discard(pair)
        else:
            touching.add(pair)


def pairs_touch(touching: set[tuple[str, str]], name_a: str, name_b: str) -> bool:
    """Whether two interface names touch ('robot' includes the fingers)."""

    def matches(owner: str, name: str) -> bool:
        return owner == name or (name == ROBOT_OWNER and owner == FINGERS_OWNER)

    return any(
        (matches(a, name_a) and matches(b, name_b)) or (matches(a, name_b) and matches(b, name_a)) for a, b in touching
    )


class IsaacBackend(PandaIkMixin):
    """One Isaac Sim stage at a time; `load` replaces it. One instance per process (one SimulationApp)."""

    name = "isaac"

    def __init__(
        self,
        catalog_dir=None,
        *,
        robot_usd: str | None = None,
        headless: bool = True,
        physics_dt_s: float = PHYSICS_DT_S,
        work_dir: str | Path | None = None,
    ) -> None:
        self.version = require_isaac_sim()  # fails at once with the install hint when Isaac Sim is missing
        self.catalog_dir = catalog_dir
        self.robot_usd = robot_usd or franka.default_franka_usd()
        self.physics_dt_s = physics_dt_s
        self.app = simulation_app(headless=headless)
        self._tmp = tempfile.TemporaryDirectory(prefix="dataengine-isaac-") if work_dir is None else None
        self.work_dir = Path(work_dir or self._tmp.name)
        self.layout: Layout | None = None
        self.world = None
        self.control_dt_s = 0.1
        self._substeps = 1
        self._targets = np.zeros(ARM_DOF + 2)
        self._look_cameras: dict = {}
        self._touching: set[tuple[str, str]] = set()
        self.quality = RenderQuality()

    # --- scene ------------------------------------------------------------------------------------------------

    def load(self, layout: Layout, *, control_hz: float, quality: RenderQuality | None = None) -> None:
        import isaacsim.core.utils.stage as stage_utils
        from isaacsim.core.api import World
        from isaacsim.core.prims import SingleArticulation, SingleRigidPrim
        from isaacsim.sensors.camera import Camera

        from dataengine.sim.usd.export import stage_text, write_text_atomic
        from dataengine.sim.usd.stage import build_stage, camera_path, object_path

        self.close_world()
        self.layout = layout
        self._look_cameras = {}
        self.quality = quality or RenderQuality()
        stage = build_stage(layout, robot_usd=self.robot_usd, catalog_dir=self.catalog_dir)
        path = self.work_dir / "scene.usda"
        write_text_atomic(path, stage_text(stage))
        if not stage_utils.open_stage(str(path)):
            raise InputError(f"Isaac Sim could not open the exported stage {path}")
        self._apply_quality(self.quality)
        World.clear_instance()
        self._substeps = max(1, round(1.0 / control_hz / self.physics_dt_s))
        self.control_dt_s = self._substeps * self.physics_dt_s
        self.world = World(
            stage_units_in_meters=1.0,
            physics_dt=self.physics_dt_s,
            rendering_dt=self.control_dt_s,
            physics_prim_path="/World/PhysicsScene",
            backend="numpy",
        )
        self._enable_contact_reports([object_path(o.uid) for o in layout.objects])
        self.robot_prim = self.world.scene.add(SingleArticulation("/World/Robot", name="robot"))
        self.link7 = self.world.scene.add(SingleRigidPrim(f"/World/Robot/{franka.LINK7}", name="link7"))
        self.objects = {
            o.uid: self.world.scene.add(SingleRigidPrim(object_path(o.uid), name=f"obj_{i}"))
            for i, o in enumerate(layout.objects)
        }
        self.cameras = {
            c.name: Camera(prim_path=camera_path(c), name=f"cam_{c.name}", resolution=(c.width, c.height))
            for c in layout.cameras
        }
        self.world.reset()
        for camera in self.cameras.values():
            camera.initialize()
            camera.add_distance_to_image_plane_to_frame()
            camera.add_instance_id_segmentation_to_frame()
        names = list(self.robot_prim.dof_names)
        wanted = [*franka.ARM_JOINT_NAMES, *franka.FINGER_JOINT_NAMES]
        missing = [j for j in wanted if j not in names]
        if missing:
            raise InputError(f"robot asset {self.robot_usd} lacks joints {missing}; it has {names}")
        self._dof = np.array([names.index(j) for j in wanted])
        self._owners = PrimOwners([o.uid for o in layout.objects])
        self.reset()

    def _apply_quality(self, quality: RenderQuality) -> None:
        """Render preset -> RTX settings (fast: no shadows, no anti-aliasing, no reflections)."""
        import carb

        settings = carb.settings.get_settings()
        settings.set("/rtx/shadows/enabled", bool(quality.shadows))
        settings.set("/rtx/reflections/enabled", bool(quality.reflections))
        settings.set("/rtx/post/aa/op", 3 if quality.msaa_samples else 0)  # 0 none, 3 DLSS

    def _enable_contact_reports(self, body_paths: list[str]) -> None:
        from pxr import PhysxSchema

        stage = self.world.stage
        for path in body_paths:
            PhysxSchema.PhysxContactReportAPI.Apply(stage.GetPrimAtPath(path)).CreateThresholdAttr().Set(0.0)

    def reset(self) -> None:
        layout = self.layout
        for uid, prim in self.objects.items():
            obj = layout.object(uid)
            prim.set_world_pose(np.asarray(obj.pose.pos_m), np.asarray(obj.pose.quat_wxyz))
            prim.set_linear_velocity(np.zeros(3))
            prim.set_angular_velocity(np.zeros(3))
        joints = franka.layout_to_usd_joints(layout.robot.arm_qpos_rad, layout.robot.gripper_opening_m)
        self.robot_prim.set_joint_positions(joints, joint_indices=self._dof)
        self.robot_prim.set_joint_velocities(np.zeros(len(self._dof)), joint_indices=self._dof)
        self.set_joint_targets(np.asarray(layout.robot.arm_qpos_rad), layout.robot.gripper_opening_m)
        self._touching.clear()

    def set_object_poses(self, poses: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        for uid, (pos, quat) in poses.items():
            prim = self.objects[uid]
            prim.set_world_pose(np.asarray(pos, dtype=float), np.asarray(quat, dtype=float))
            prim.set_linear_velocity(np.zeros(3))
            prim.set_angular_velocity(np.zeros(3))

    def get_state(self) -> SimState:
        """qpos = [7 arm (layout convention), 2 fingers, 7 per object (pos, quat wxyz)]; qvel = [9 joints,
        6 per object (linear, angular; world frame)]; ctrl = the 9 joint targets (layout convention)."""
        q = self.robot_prim.get_joint_positions(joint_indices=self._dof)
        dq = self.robot_prim.get_joint_velocities(joint_indices=self._dof)
        qpos, qvel = [franka.usd_to_layout_arm(q[:7]), q[7:9]], [dq]
        for prim in self.objects.values():
            pos, quat = prim.get_world_pose()
            qpos += [pos, quat]
            qvel += [prim.get_linear_velocity(), prim.get_angular_velocity()]
        return SimState(
            np.concatenate(qpos).astype(np.float64),
            np.concatenate(qvel).astype(np.float64),
            np.zeros(0),
            self._targets.copy(),
            float(self.world.current_time),
        )

    def set_state(self, state: SimState) -> None:
        arm, fingers = state.qpos[:7], state.qpos[7:9]
        self.robot_prim.set_joint_positions(
            np.concatenate([arm + franka.FRANKA_USD_JOINT_OFFSETS_RAD, fingers]), joint_indices=self._dof
        )
        self.robot_prim.set_joint_velocities(state.qvel[:9], joint_indices=self._dof)
        for i, prim in enumerate(self.objects.values()):
            pose, vel = state.qpos[9 + 7 * i : 16 + 7 * i], state.qvel[9 + 6 * i : 15 + 6 * i]
            prim.set_world_pose(pose[:3], pose[3:])
            prim.set_linear_velocity(vel[:3])
            prim.set_angular_velocity(vel[3:])
        if state.ctrl.size:
            self.set_joint_targets(state.ctrl[:7], float(state.ctrl[7] + state.ctrl[8]))
        self._touching.clear()

    # --- control ----------------------------------------------------------------------------------------------

    def set_joint_targets(self, arm_qpos_rad: np.ndarray, gripper_opening_m: float) -> None:
        from isaacsim.core.utils.types import ArticulationAction

        usd = franka.layout_to_usd_joints(arm_qpos_rad, gripper_opening_m)
        self._targets = np.concatenate([np.asarray(arm_qpos_rad, dtype=float), usd[7:]])
        self.robot_prim.apply_action(ArticulationAction(joint_positions=usd, joint_indices=self._dof))

    def step(self, n_control_steps: int = 1) -> None:
        for _ in range(self._substeps * n_control_steps):
            self.world.step(render=False)
            self._collect_contacts()

    def _collect_contacts(self) -> None:
        """Track touching pairs from PhysX contact reports (found / persist add a pair, lost removes it)."""
        from omni.physx import get_physx_simulation_interface
        from omni.physx.bindings._physx import ContactEventType
        from pxr import PhysicsSchemaTools

        headers, _ = get_physx_simulation_interface().get_contact_report()
        update_touching(
            self._touching,
            (
                (
                    self._owners(str(PhysicsSchemaTools.intToSdfPath(h.actor0))),
                    self._owners(str(PhysicsSchemaTools.intToSdfPath(h.actor1))),
                    h.type == ContactEventType.CONTACT_LOST,
                )
                for h in headers
            ),
        )

    # --- readings ---------------------------------------------------------------------------------------------

    def robot(self) -> RobotReading:
        q = self.robot_prim.get_joint_positions(joint_indices=self._dof)
        dq = self.robot_prim.get_joint_velocities(joint_indices=self._dof)
        pos, quat = self.link7.get_world_pose()
        tool = pose_to_matrix(pos, quat) @ franka.tool_in_link7()
        return RobotReading(
            arm_qpos_rad=franka.usd_to_layout_arm(q[:7]),
            arm_qvel_rad_s=np.asarray(dq[:7], dtype=np.float64),
            gripper_opening_m=float(q[7] + q[8]),
            tool_pos_m=tool[:3, 3].copy(),
            tool_quat_wxyz=matrix_to_quat_wxyz(tool[:3, :3]),
        )

    def object_pose(self, uid: str) -> tuple[np.ndarray, np.ndarray]:
        pos, quat = self.objects[uid].get_world_pose()
        return np.asarray(pos, dtype=np.float64), np.asarray(quat, dtype=np.float64)

    def object_velocity(self, uid: str) -> tuple[np.ndarray, np.ndarray]:
        prim = self.objects[uid]
        return np.asarray(prim.get_linear_velocity(), float), np.asarray(prim.get_angular_velocity(), float)

    def contacts_between(self, uid_a: str, uid_b: str) -> bool:
        return pairs_touch(self._touching, uid_a, uid_b)

    # --- rendering --------------------------------------------------------------------------------------------

    def apply_look(self, look: Look) -> None:
        """Table / floor colours, lights and camera poses and fields of view on the open stage (table textures
        are not reproduced: the USD scene carries no texture files)."""
        from dataengine.sim.usd.geoms import preview_material
        from dataengine.sim.usd.stage import LIGHTS, LOOKS, author_camera, author_light, prim_name

        stage = self.world.stage
        preview_material(stage, f"{LOOKS}/table", look.table_rgba)
        preview_material(stage, f"{LOOKS}/floor", look.floor_rgba)
        for light in look.lights:
            if not stage.GetPrimAtPath(f"{LIGHTS}/{prim_name(light.name)}"):
                raise InputError(f"a look names light {light.name!r}, which the layout does not have")
            author_light(stage, light)
        cameras = {c.name: c for c in self.layout.cameras}
        for cam in look.cameras:
            self.layout.camera(cam.name)  # raises for an unknown camera
            author_camera(stage, cam)  # re-authors pose, lens and resolution of the existing prim
            cameras[cam.name] = cam
        self._look_cameras = cameras

    def camera_params(self, camera: str) -> CameraParams:
        """K from the Isaac camera; extrinsics of world cameras from Isaac, of wrist cameras from the physics
        pose of link 7 composed with the camera's pose on it (USD link transforms can lag the physics)."""
        cam = self._look_cameras.get(camera) or self.layout.camera(camera)
        sensor = self.cameras[camera]
        if cam.mount == "wrist":
            pos, quat = self.link7.get_world_pose()
            T_cv = gl_camera_to_cv(pose_to_matrix(pos, quat) @ pose_to_matrix(cam.pos_m, cam.quat_wxyz))
        else:
            pos, quat_ros = sensor.get_world_pose(camera_axes="ros")  # ROS camera axes = OpenCV axes
            T_cv = pose_to_matrix(pos, quat_ros)
        return CameraParams(
            name=camera,
            width=cam.width,
            height=cam.height,
            intrinsics_k=np.asarray(sensor.get_intrinsics_matrix(), dtype=np.float64),
            T_cam_to_world_cv=T_cv,
        )

    def render(self, camera: str, *, rgb: bool = True, depth: bool = False, segmentation: bool = False) -> CameraFrame:
        sensor = self.cameras[camera]
        for _ in range(RENDER_UPDATES):
            self.world.render()
        frame = CameraFrame()
        if rgb:
            rgba = np.asarray(sensor.get_rgba())
            if rgba.dtype != np.uint8:
                rgba = np.clip(rgba * (255.0 if rgba.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            frame.rgb = np.ascontiguousarray(rgba[..., :3])
        if depth:
            far = np.float32(50.0)
            depth_m = np.asarray(sensor.get_depth(), dtype=np.float32)
            frame.depth_m = np.where(np.isfinite(depth_m), depth_m, far)
        if segmentation:
            annotator = sensor.get_current_frame()["instance_id_segmentation"]
            frame.segmentation = segmentation_from_instance_ids(annotator, self._owners)
        return frame

    def gl_info(self) -> str:
        return f"Isaac Sim {self.version} RTX (RayTracedLighting)"

    def close_world(self) -> None:
        if self.world is not None:
            for camera in getattr(self, "cameras", {}).values():
                camera.destroy()
            self.world.stop()
            self.world.clear_instance()
            self.world = None

    def close(self) -> None:
        self.close_world()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
