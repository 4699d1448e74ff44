"""The MuJoCo backend (CPU physics, EGL rendering): implements `SimBackend` for a `Layout`."""

from __future__ import annotations

import numpy as np

from dataengine.errors import InputError
from dataengine.geometry import (
    gl_camera_to_cv,
    intrinsics_from_fovy,
    matrix_to_quat_wxyz,
)
from dataengine.records.layout import Layout, Look
from dataengine.sim.backends.base import (
    ARM_DOF,
    GRIPPER_MAX_OPENING_M,
    CameraFrame,
    CameraParams,
    PandaIkMixin,
    RenderQuality,
    RobotReading,
    SimState,
)
from dataengine.sim.backends.mjcf import (
    ARM_JOINTS,
    FINGER_BODIES,
    FINGER_JOINTS,
    TABLE_TEXTURES,
    TOOL_SITE,
    build_mjcf,
)
from dataengine.sim.mujoco_env import import_mujoco, log_gl_renderer_once

TIMESTEP_S = 0.002
ROBOT_OWNER, FINGERS_OWNER, TABLE_OWNER, OTHER_OWNER = -2, -3, -4, -1


class MujocoBackend(PandaIkMixin):
    """One MuJoCo scene at a time; `load` replaces it. Renderers are created lazily and reused per resolution."""

    name = "mujoco"

    def __init__(self, catalog_dir=None) -> None:
        self.mujoco = import_mujoco()
        self.catalog_dir = catalog_dir
        self.model = None
        self.data = None
        self.layout: Layout | None = None
        self.control_dt_s = 0.1
        self._substeps = 50
        self._renderers: dict[tuple[int, int], object] = {}
        self.quality = RenderQuality()

    # --- scene ------------------------------------------------------------------------------------------------

    def load(self, layout: Layout, *, control_hz: float, quality: RenderQuality | None = None) -> None:
        mj = self.mujoco
        self._close_renderers()
        self.layout = layout
        self.quality = quality or RenderQuality()
        xml = build_mjcf(
            layout,
            timestep_s=TIMESTEP_S,
            catalog_dir=self.catalog_dir,
            robot_visual_fraction=self.quality.robot_visual_fraction,
        )
        try:
            self.model = mj.MjModel.from_xml_string(xml)
        except ValueError as exc:
            raise InputError(f"MuJoCo rejected the scene built from the layout: {exc}") from exc
        m = self.model
        m.vis.quality.shadowsize = self.quality.shadow_size
        m.vis.quality.offsamples = self.quality.msaa_samples
        self.data = mj.MjData(m)
        self._substeps = max(1, round(1.0 / control_hz / m.opt.timestep))
        self.control_dt_s = self._substeps * m.opt.timestep
        name2id = mj.mj_name2id
        self._arm_qadr = np.array([m.jnt_qposadr[name2id(m, mj.mjtObj.mjOBJ_JOINT, j)] for j in ARM_JOINTS])
        self._arm_dadr = np.array([m.jnt_dofadr[name2id(m, mj.mjtObj.mjOBJ_JOINT, j)] for j in ARM_JOINTS])
        self._finger_qadr = np.array([m.jnt_qposadr[name2id(m, mj.mjtObj.mjOBJ_JOINT, j)] for j in FINGER_JOINTS])
        self._tool_site = name2id(m, mj.mjtObj.mjOBJ_SITE, TOOL_SITE)
        self._obj_index = {o.uid: i for i, o in enumerate(layout.objects)}
        self._obj_body = [name2id(m, mj.mjtObj.mjOBJ_BODY, o.uid) for o in layout.objects]
        self._obj_qadr = [m.jnt_qposadr[m.body_jntadr[b]] for b in self._obj_body]
        self._obj_dadr = [m.jnt_dofadr[m.body_jntadr[b]] for b in self._obj_body]
        self._table_geom = name2id(m, mj.mjtObj.mjOBJ_GEOM, "table")
        self._floor_geom = name2id(m, mj.mjtObj.mjOBJ_GEOM, "floor")
        self._table_mats = {t: name2id(m, mj.mjtObj.mjOBJ_MATERIAL, f"table_{t}") for t in TABLE_TEXTURES}
        if layout.table.texture_file:  # an image on the table replaces the look's procedural textures
            self._table_mats = dict.fromkeys(TABLE_TEXTURES, name2id(m, mj.mjtObj.mjOBJ_MATERIAL, "table_file"))
        robot_root = name2id(m, mj.mjtObj.mjOBJ_BODY, "robot_base")
        finger_ids = {name2id(m, mj.mjtObj.mjOBJ_BODY, b) for b in FINGER_BODIES}
        robot_bodies = [b for b in range(m.nbody) if self._is_descendant(b, robot_root)]
        body_owner = np.full(m.nbody, OTHER_OWNER, dtype=np.int16)
        body_owner[robot_bodies] = ROBOT_OWNER
        body_owner[list(finger_ids)] = FINGERS_OWNER
        for i, b in enumerate(self._obj_body):
            body_owner[b] = i
        self._geom_owner = body_owner[m.geom_bodyid]
        self._geom_owner[self._table_geom] = TABLE_OWNER
        # segmentation: object index per geom, -1 for the rest
        self._geom_seg = np.where(self._geom_owner >= 0, self._geom_owner, -1).astype(np.int16)
        self._cam_ids = {c.name: name2id(m, mj.mjtObj.mjOBJ_CAMERA, c.name) for c in layout.cameras}
        self._scene_option = mj.MjvOption()
        self.reset()

    def _is_descendant(self, body: int, root: int) -> bool:
        while body > 0:
            if body == root:
                return True
            body = int(self.model.body_parentid[body])
        return False

    def reset(self) -> None:
        mj, m, d, layout = self.mujoco, self.model, self.data, self.layout
        mj.mj_resetData(m, d)
        d.qpos[self._arm_qadr] = layout.robot.arm_qpos_rad
        d.qpos[self._finger_qadr] = layout.robot.gripper_opening_m / 2
        for i, obj in enumerate(layout.objects):
            adr = self._obj_qadr[i]
            d.qpos[adr : adr + 3] = obj.pose.pos_m
            d.qpos[adr + 3 : adr + 7] = obj.pose.quat_wxyz
        self.set_joint_targets(np.asarray(layout.robot.arm_qpos_rad), layout.robot.gripper_opening_m)
        mj.mj_forward(m, d)

    def set_object_poses(self, poses: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        d = self.data
        for uid, (pos, quat) in poses.items():
            i = self._obj_index[uid]
            adr, dadr = self._obj_qadr[i], self._obj_dadr[i]
            d.qpos[adr : adr + 3] = pos
            d.qpos[adr + 3 : adr + 7] = quat
            d.qvel[dadr : dadr + 6] = 0.0
        self.mujoco.mj_forward(self.model, d)

    def get_state(self) -> SimState:
        d = self.data
        return SimState(d.qpos.copy(), d.qvel.copy(), d.act.copy(), d.ctrl.copy(), float(d.time))

    def set_state(self, state: SimState) -> None:
        d = self.data
        d.qpos[:] = state.qpos
        d.qvel[:] = state.qvel
        if state.act.size:
            d.act[:] = state.act
        if state.ctrl.size:
            d.ctrl[:] = state.ctrl
        d.time = state.time_s
        self.mujoco.mj_forward(self.model, d)

    # --- control ----------------------------------------------------------------------------------------------

    def set_joint_targets(self, arm_qpos_rad: np.ndarray, gripper_opening_m: float) -> None:
        opening = float(np.clip(gripper_opening_m, 0.0, GRIPPER_MAX_OPENING_M))
        self.data.ctrl[:ARM_DOF] = arm_qpos_rad
        self.data.ctrl[ARM_DOF : ARM_DOF + 2] = opening / 2

    def step(self, n_control_steps: int = 1) -> None:
        self.mujoco.mj_step(self.model, self.data, nstep=self._substeps * n_control_steps)

    # --- readings ---------------------------------------------------------------------------------------------

    def robot(self) -> RobotReading:
        d = self.data
        return RobotReading(
            arm_qpos_rad=d.qpos[self._arm_qadr].copy(),
            arm_qvel_rad_s=d.qvel[self._arm_dadr].copy(),
            gripper_opening_m=float(d.qpos[self._finger_qadr].sum()),
            tool_pos_m=d.site_xpos[self._tool_site].copy(),
            tool_quat_wxyz=matrix_to_quat_wxyz(d.site_xmat[self._tool_site].reshape(3, 3)),
        )

    def object_pose(self, uid: str) -> tuple[np.ndarray, np.ndarray]:
        adr = self._obj_qadr[self._obj_index[uid]]
        return self.data.qpos[adr : adr + 3].copy(), self.data.qpos[adr + 3 : adr + 7].copy()

    def object_velocity(self, uid: str) -> tuple[np.ndarray, np.ndarray]:
        dadr = self._obj_dadr[self._obj_index[uid]]
        return self.data.qvel[dadr : dadr + 3].copy(), self.data.qvel[dadr + 3 : dadr + 6].copy()

    def _owner(self, name: str) -> int:
        special = {"robot": ROBOT_OWNER, "fingers": FINGERS_OWNER, "table": TABLE_OWNER}
        return special[name] if name in special else self._obj_index[name]

    def contacts_between(self, uid_a: str, uid_b: str) -> bool:
        a, b = self._owner(uid_a), self._owner(uid_b)
        d = self.data
        if d.ncon == 0:
            return False
        owners = self._geom_owner[d.contact.geom[: d.ncon]]
        if a == ROBOT_OWNER or b == ROBOT_OWNER:  # the fingers belong to the robot too
            owners = np.where(owners == FINGERS_OWNER, ROBOT_OWNER, owners)
        return bool(np.any(((owners[:, 0] == a) & (owners[:, 1] == b)) | ((owners[:, 0] == b) & (owners[:, 1] == a))))

    # --- rendering --------------------------------------------------------------------------------------------

    def apply_look(self, look: Look) -> None:
        m, layout = self.model, self.layout
        m.geom_rgba[self._table_geom] = look.table_rgba
        m.geom_matid[self._table_geom] = self._table_mats[look.table_texture]
        m.geom_rgba[self._floor_geom] = look.floor_rgba
        if len(look.lights) != m.nlight:
            raise InputError(f"a look needs {m.nlight} lights (the layout's), got {len(look.lights)}")
        for i, light in enumerate(look.lights):
            m.light_pos[i], m.light_dir[i] = light.pos_m, light.dir
            m.light_diffuse[i], m.light_specular[i] = light.diffuse, light.specular
            m.light_castshadow[i] = light.cast_shadow
        for cam in look.cameras:
            layout.camera(cam.name)  # raises for an unknown camera
            cid = self._cam_ids[cam.name]
            m.cam_pos[cid], m.cam_quat[cid], m.cam_fovy[cid] = cam.pos_m, cam.quat_wxyz, cam.fovy_deg
        self.mujoco.mj_forward(m, self.data)

    def camera_params(self, camera: str) -> CameraParams:
        cam = self.layout.camera(camera)
        cid = self._cam_ids[camera]
        T_gl = np.eye(4)
        T_gl[:3, :3] = self.data.cam_xmat[cid].reshape(3, 3)
        T_gl[:3, 3] = self.data.cam_xpos[cid]
        return CameraParams(
            name=camera,
            width=cam.width,
            height=cam.height,
            intrinsics_k=intrinsics_from_fovy(float(self.model.cam_fovy[cid]), cam.width, cam.height),
            T_cam_to_world_cv=gl_camera_to_cv(T_gl),
        )

    def _renderer(self, width: int, height: int, mode: str):
        """One renderer (own GL context) per resolution and mode: switching a context between RGB, depth and
        segmentation costs llvmpipe about 40 ms each time, so every mode keeps its own."""
        key = (width, height, mode)
        if key not in self._renderers:
            renderer = self.mujoco.Renderer(self.model, height=height, width=width)
            if mode == "depth":
                renderer.enable_depth_rendering()
            elif mode == "seg":
                renderer.enable_segmentation_rendering()
            self._renderers[key] = renderer
            log_gl_renderer_once(self.gl_info())
        return self._renderers[key]

    def _render_mode(self, camera: str, mode: str) -> np.ndarray:
        mj = self.mujoco
        cam = self.layout.camera(camera)
        renderer = self._renderer(cam.width, cam.height, mode)
        renderer.update_scene(self.data, camera=self._cam_ids[camera], scene_option=self._scene_option)
        flags = renderer.scene.flags
        flags[mj.mjtRndFlag.mjRND_SHADOW] = self.quality.shadows and mode == "rgb"
        flags[mj.mjtRndFlag.mjRND_REFLECTION] = self.quality.reflections and mode == "rgb"
        flags[mj.mjtRndFlag.mjRND_SKYBOX] = False
        return renderer.render()

    def render(self, camera: str, *, rgb: bool = True, depth: bool = False, segmentation: bool = False) -> CameraFrame:
        frame = CameraFrame()
        if rgb:
            frame.rgb = self._render_mode(camera, "rgb")
        if depth:
            frame.depth_m = self._render_mode(camera, "depth").astype(np.float32)
        if segmentation:
            seg = self._render_mode(camera, "seg")
            ids, types = seg[..., 0], seg[..., 1]
            out = np.full(ids.shape, -1, dtype=np.int16)
            is_geom = (types == int(self.mujoco.mjtObj.mjOBJ_GEOM)) & (ids >= 0)  # int(): enum compares per element
            out[is_geom] = self._geom_seg[ids[is_geom]]
            frame.segmentation = out
        return frame

    def gl_info(self) -> str:
        try:
            from OpenGL import GL

            renderer = GL.glGetString(GL.GL_RENDERER)
            return renderer.decode() if renderer else "unknown GL renderer"
        except Exception as exc:  # the renderer works even when PyOpenGL cannot report its name
            return f"unknown GL renderer ({exc.__class__.__name__})"

    def _close_renderers(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def close(self) -> None:
        self._close_renderers()
        self.model = self.data = None
