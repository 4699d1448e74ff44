"""Assemble one episode's record and arrays from what the simulator found, rendered and labelled; the episode codec
(`dataengine.shards.episode`) encodes them into the sample's members."""

from __future__ import annotations

import re

import numpy as np

from dataengine.records.episode import (
    CameraInfo,
    EpisodeRecord,
    Instructions,
    PerturbationInfo,
    PhaseInfo,
    RenderInfo,
    TaskInfo,
    array_specs,
)
from dataengine.rewrite.base import Rewrites
from dataengine.shards.episode import encode_episode, pack_jpegs
from dataengine.sim.labels import MAX_VISIBLE_OCCLUSION, MIN_VISIBLE_PX
from dataengine.sim.recipe import SimRecipe
from dataengine.sim.render import RenderedEpisode
from dataengine.sim.search import FoundEpisode

GRIPPER_CLOSED_BELOW_M = 0.04  # a gripper target below this counts as "close"


def episode_key(recipe_name: str, index: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", recipe_name).strip("_")[:100] or "episode"
    return f"{stem}-{index:07d}"


def episode_arrays(found: FoundEpisode, with_executed: bool = False) -> dict[str, np.ndarray]:
    """State and action arrays (T rows, one per control step) plus the final state. `with_executed` (recipes with
    `perturb`) adds the joint targets actually sent, which differ from the recorded actions in perturbed episodes."""
    traj = found.trajectory
    state_joints = traj.arm_qpos_rad
    action_joints = traj.action_arm_rad
    extra = {}
    if with_executed:
        extra["action_executed_joints"] = action_joints if traj.executed_arm_rad is None else traj.executed_arm_rad
    return {
        **extra,
        "qpos": traj.qpos,
        "qvel": traj.qvel,
        "ctrl": traj.ctrl,
        "time_s": traj.time_s,
        "state_joints": state_joints,
        "state_gripper_opening": traj.gripper_opening_m,
        "ee_pose": traj.tool_pose,
        "object_poses": traj.object_poses,
        "action_joints": action_joints,
        "action_delta_joints": action_joints - state_joints,
        "action_gripper_opening": traj.action_gripper_m,
        "action_gripper_close": (traj.action_gripper_m < GRIPPER_CLOSED_BELOW_M).astype(np.float32),
        "action_tool_target": found.plan.tool_targets,
        "final_qpos": traj.final_state.qpos,
        "final_qvel": traj.final_state.qvel,
        "final_time_s": np.array(traj.final_state.time_s),
        "final_object_poses": traj.final_object_poses,
        "final_ee_pose": traj.final_tool_pose,
    }


def frame_arrays(recipe: SimRecipe, rendered: RenderedEpisode | None, cameras: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in cameras:
        frames = rendered.jpeg[name] if rendered else []
        out[f"{name}.jpeg"], out[f"{name}.offsets"] = pack_jpegs(frames)
        if recipe.render.depth and rendered:
            out[f"{name}.depth_mm"] = np.clip(rendered.depth_m[name] * 1000, 0, 65535).astype(np.uint16)
        if recipe.render.segmentation and rendered:
            out[f"{name}.segmentation"] = rendered.segmentation[name]
    return out


def build_members(
    recipe: SimRecipe,
    key: str,
    found: FoundEpisode,
    rewrites: Rewrites,
    base_instruction: str,
    relation: str,
    rewriter: str,
    rendered: RenderedEpisode | None,
    labels: dict[str, np.ndarray] | None,
    backend_info: dict[str, str],
) -> dict[str, bytes]:
    layout = found.layout
    arrays = episode_arrays(found, with_executed=recipe.perturb is not None)
    cameras = [c.name for c in layout.cameras]
    if rendered is not None:
        arrays["cam_intrinsics"] = np.stack([rendered.intrinsics_k[c] for c in cameras])
        arrays["cam_T_cam_to_world"] = np.stack([rendered.T_cam_to_world_cv[c] for c in cameras], axis=1)
    if labels:
        arrays.update(labels)
    frames = frame_arrays(recipe, rendered, cameras)
    look_cams = {c.name: c for c in (rendered.look.cameras if rendered else layout.cameras)}
    camera_infos = []
    for name in cameras:
        cam = look_cams[name]
        K = rendered.intrinsics_k[name] if rendered else np.full((3, 3), np.nan)
        T0 = rendered.T_cam_to_world_cv[name][0] if rendered else np.full((4, 4), np.nan)
        camera_infos.append(
            CameraInfo(
                name=name,
                mount=cam.mount,
                width=cam.width,
                height=cam.height,
                fovy_deg=cam.fovy_deg,
                intrinsics_k=np.round(K, 9).tolist() if rendered else [],
                T_cam_to_world_cv=np.round(T0, 9).tolist() if rendered else [],
            )
        )
    pick, place = layout.pick, layout.place
    perturbation = None
    if recipe.perturb is not None:
        perturbation = PerturbationInfo(perturbed=found.perturbed, **recipe.perturb.model_dump(mode="json"))
    record = EpisodeRecord(
        key=key,
        recipe=recipe.name,
        recipe_fingerprint=recipe.fingerprint(),
        episode_index=found.index,
        seed=recipe.seed,
        attempt=found.attempt,
        attempts=found.attempt + 1,
        failures=dict(sorted(found.failures.items())),
        success=True,
        task=TaskInfo(
            family=recipe.task.family,
            template=recipe.task.name,
            relation=relation,
            pick_uid=pick.uid,
            place_uid=place.uid,
            pick_asset=pick.asset_id,
            place_asset=place.asset_id,
            distractor_assets=[o.asset_id for o in layout.by_role("distractor")],
            split=recipe.split,
        ),
        instructions=Instructions(
            base=base_instruction,
            attr=rewrites.attr,
            semantic=rewrites.semantic,
            spatial=rewrites.spatial,
            **rewrites.provenance(rewriter),
        ),
        num_steps=found.trajectory.steps,
        control_hz=recipe.control_hz,
        phases=[PhaseInfo(name=n, start=a, end=b) for n, a, b in found.plan.phases],
        cameras=camera_infos,
        render=RenderInfo(
            rendered=rendered is not None,
            preset=recipe.render.preset,
            cameras=cameras,
            jpeg_quality=recipe.render.jpeg_quality,
            redraws=rendered.redraws if rendered else 0,
            mean_intensity=round(rendered.mean_intensity, 3) if rendered else None,
        ),
        layout=layout,
        look=rendered.look if rendered else None,
        arrays=array_specs(arrays),
        frames=array_specs(frames),
        backend=backend_info,
        perturbation=perturbation,
        labels={
            "trace_horizon": recipe.trace_horizon,
            "min_visible_px": MIN_VISIBLE_PX,
            "max_visible_occlusion": MAX_VISIBLE_OCCLUSION,
            "grasp_point_3d": [round(float(v), 6) for v in found.plan.grasp_point_m],
            "place_point_3d": [round(float(v), 6) for v in found.plan.place_point_m],
        },
    )
    return encode_episode(record, arrays, frames)
