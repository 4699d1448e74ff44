"""Layout parts as USD geometry with collision, poses as xform ops, and UsdPreviewSurface / physics materials.

Shapes follow the layout's (MuJoCo) size conventions: a box part of half extents h becomes a `Cube` of size 2
scaled by h; cylinders and capsules keep their radius and get `height` = 2 x half height along z (a USD capsule's
height excludes its caps, like MuJoCo's); ellipsoids and meshes become `Mesh`es whose collision is their convex
hull, which is also what MuJoCo collides with.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade

from dataengine.errors import InputError, require
from dataengine.records.layout import Part

PHYSICS_PURPOSE = "physics"  # the material purpose PhysX reads friction from
ELLIPSOID_SUBDIVISIONS = 3  # icosphere of 642 vertices: hull within 0.3 % of the true ellipsoid


def quatd(quat_wxyz) -> Gf.Quatd:
    w, x, y, z = (float(v) for v in quat_wxyz)
    return Gf.Quatd(w, x, y, z)


def set_pose(xformable: UsdGeom.Xformable, pos_m, quat_wxyz=(1.0, 0.0, 0.0, 0.0), scale=None) -> None:
    """Author translate, orient (and scale) ops in double precision; update them when they exist."""
    prim = xformable.GetPrim()
    translate = prim.GetAttribute("xformOp:translate")
    if translate and translate.IsAuthored():
        translate.Set(Gf.Vec3d(*(float(v) for v in pos_m)))
        prim.GetAttribute("xformOp:orient").Set(quatd(quat_wxyz))
        if scale is not None:
            prim.GetAttribute("xformOp:scale").Set(Gf.Vec3d(*(float(v) for v in scale)))
        return
    double = UsdGeom.XformOp.PrecisionDouble
    xformable.AddTranslateOp(double).Set(Gf.Vec3d(*(float(v) for v in pos_m)))
    xformable.AddOrientOp(double).Set(quatd(quat_wxyz))
    if scale is not None:
        xformable.AddScaleOp(double).Set(Gf.Vec3d(*(float(v) for v in scale)))


@lru_cache(maxsize=4)
def _unit_icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    trimesh = require("trimesh", "sim", "Ellipsoid meshes for USD export")
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32)


def part_mesh_arrays(part: Part, catalog_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(vertices in the part frame, triangles) of an ellipsoid or mesh part."""
    if part.shape == "ellipsoid":
        vertices, faces = _unit_icosphere(ELLIPSOID_SUBDIVISIONS)
        return vertices * np.asarray(part.size_m[:3], dtype=np.float64), faces
    if part.mesh is None:
        raise InputError("a mesh part needs a 'mesh' (generator or file)")
    from dataengine.sim.meshes import mesh_arrays

    return mesh_arrays(part.mesh, catalog_dir)


def define_part(
    stage: Usd.Stage, path: str, part: Part, catalog_dir: str | Path | None = None, collision: bool = True
) -> UsdGeom.Gprim:
    """One prim for a layout part (a collider unless told otherwise), posed in its parent (the body frame)."""
    size = [float(v) for v in part.size_m]
    scale = None
    if part.shape == "box":
        gprim = UsdGeom.Cube.Define(stage, path)
        gprim.CreateSizeAttr(2.0)
        scale = size[:3]
    elif part.shape == "cylinder":
        gprim = UsdGeom.Cylinder.Define(stage, path)
        gprim.CreateRadiusAttr(size[0])
        gprim.CreateHeightAttr(2 * size[1])
        gprim.CreateAxisAttr(UsdGeom.Tokens.z)
    elif part.shape == "capsule":
        gprim = UsdGeom.Capsule.Define(stage, path)
        gprim.CreateRadiusAttr(size[0])
        gprim.CreateHeightAttr(2 * size[1])
        gprim.CreateAxisAttr(UsdGeom.Tokens.z)
    elif part.shape == "sphere":
        gprim = UsdGeom.Sphere.Define(stage, path)
        gprim.CreateRadiusAttr(size[0])
    else:  # ellipsoid, mesh
        imported = part.mesh is not None and bool(part.mesh.collision)
        if imported and part.mesh.texture:
            from dataengine.sim.meshes import textured_mesh_arrays

            vertices, faces, uv = textured_mesh_arrays(part.mesh, catalog_dir)
        else:
            (vertices, faces), uv = part_mesh_arrays(part, catalog_dir), None
        gprim = UsdGeom.Mesh.Define(stage, path)
        if uv is not None:
            st = UsdGeom.PrimvarsAPI(gprim).CreatePrimvar(
                "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex
            )
            st.Set([Gf.Vec2f(float(u), float(v)) for u, v in uv])
        gprim.CreatePointsAttr([Gf.Vec3f(*map(float, v)) for v in vertices])
        gprim.CreateFaceVertexCountsAttr([3] * len(faces))
        gprim.CreateFaceVertexIndicesAttr([int(i) for i in faces.ravel()])
        gprim.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        if imported:  # an imported mesh is only seen: its convex pieces collide (as in MuJoCo)
            if collision:
                _define_collision_pieces(stage, path, part, catalog_dir)
            collision = False
        if collision:
            api = UsdPhysics.MeshCollisionAPI.Apply(gprim.GetPrim())
            api.CreateApproximationAttr(UsdPhysics.Tokens.convexHull)
    extent = UsdGeom.Boundable.ComputeExtentFromPlugins(gprim, Usd.TimeCode.Default())
    gprim.CreateExtentAttr(extent)
    set_pose(gprim, part.pos_m, part.quat_wxyz, scale)
    if collision:
        UsdPhysics.CollisionAPI.Apply(gprim.GetPrim())
    return gprim


def _define_collision_pieces(stage: Usd.Stage, path: str, part: Part, catalog_dir) -> None:
    """The imported mesh's convex pieces as invisible (guide) colliders beside its visual prim."""
    from dataengine.records.layout import MeshSpec
    from dataengine.sim.meshes import mesh_arrays

    for k, file in enumerate(part.mesh.collision):
        vertices, faces = mesh_arrays(MeshSpec(file=file, scale=part.mesh.scale), catalog_dir)
        piece = UsdGeom.Mesh.Define(stage, f"{path}_hull_{k:02d}")
        piece.CreatePointsAttr([Gf.Vec3f(*map(float, v)) for v in vertices])
        piece.CreateFaceVertexCountsAttr([3] * len(faces))
        piece.CreateFaceVertexIndicesAttr([int(i) for i in faces.ravel()])
        piece.CreatePurposeAttr(UsdGeom.Tokens.guide)
        piece.CreateExtentAttr(UsdGeom.Boundable.ComputeExtentFromPlugins(piece, Usd.TimeCode.Default()))
        set_pose(piece, part.pos_m, part.quat_wxyz)
        UsdPhysics.CollisionAPI.Apply(piece.GetPrim())
        UsdPhysics.MeshCollisionAPI.Apply(piece.GetPrim()).CreateApproximationAttr(UsdPhysics.Tokens.convexHull)


def textured_material(stage: Usd.Stage, path: str, texture_file: str, roughness: float = 0.6) -> UsdShade.Material:
    """A UsdPreviewSurface whose diffuse colour is read from a texture through the mesh's `st` primvar."""
    material = UsdShade.Material.Define(stage, path)
    shader = UsdShade.Shader.Define(stage, f"{path}/PreviewSurface")
    shader.CreateIdAttr("UsdPreviewSurface")
    shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(float(roughness))
    shader.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    reader = UsdShade.Shader.Define(stage, f"{path}/StReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
    image = UsdShade.Shader.Define(stage, f"{path}/DiffuseTexture")
    image.CreateIdAttr("UsdUVTexture")
    image.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(texture_file))
    image.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
    image.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    image.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(image.ConnectableAPI(), "rgb")
    material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
    return material


def define_box(stage: Usd.Stage, path: str, center_m, half_extents_m, rgba=None, collision: bool = True):
    """An axis-aligned static box (table top, legs, floor slab)."""
    part = Part(shape="box", size_m=[float(v) for v in half_extents_m], pos_m=tuple(float(v) for v in center_m))
    gprim = define_part(stage, path, part, collision=collision)
    if rgba is not None:
        set_display_color(gprim, rgba)
    return gprim


def set_display_color(gprim: UsdGeom.Gprim, rgba) -> None:
    """Viewport colour for tools that ignore materials."""
    gprim.CreateDisplayColorAttr([Gf.Vec3f(*(float(c) for c in rgba[:3]))])
    gprim.CreateDisplayOpacityAttr([float(rgba[3])])


def preview_material(stage: Usd.Stage, path: str, rgba, roughness: float = 0.6) -> UsdShade.Material:
    """A UsdPreviewSurface material of one colour (alpha -> opacity); re-authoring updates the colour."""
    material = UsdShade.Material.Define(stage, path)
    shader = UsdShade.Shader.Define(stage, f"{path}/PreviewSurface")
    shader.CreateIdAttr("UsdPreviewSurface")
    shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(*(float(c) for c in rgba[:3])))
    shader.CreateInput("opacity", Sdf.ValueTypeNames.Float).Set(float(rgba[3]))
    shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(float(roughness))
    shader.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
    return material


def material_rgba(material: UsdShade.Material) -> tuple[float, float, float, float]:
    """The colour a `preview_material` was authored with."""
    shader = UsdShade.Shader(material.GetPrim().GetChild("PreviewSurface"))
    rgb = shader.GetInput("diffuseColor").Get()
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]), float(shader.GetInput("opacity").Get()))


def physics_material(stage: Usd.Stage, path: str, friction: float, restitution: float = 0.0) -> UsdShade.Material:
    """Friction as MuJoCo applies it: one coefficient, the larger of two touching surfaces wins (PhysX's default
    combine mode is the average, so `PhysxMaterialAPI` asks for max; tools without PhysX ignore it)."""
    material = UsdShade.Material.Define(stage, path)
    api = UsdPhysics.MaterialAPI.Apply(material.GetPrim())
    api.CreateStaticFrictionAttr(float(friction))
    api.CreateDynamicFrictionAttr(float(friction))
    api.CreateRestitutionAttr(float(restitution))
    prim = material.GetPrim()
    prim.AddAppliedSchema("PhysxMaterialAPI")
    prim.CreateAttribute("physxMaterial:frictionCombineMode", Sdf.ValueTypeNames.Token).Set("max")
    return material


def bind(prim: Usd.Prim, material: UsdShade.Material, purpose: str = UsdShade.Tokens.allPurpose) -> None:
    UsdShade.MaterialBindingAPI.Apply(prim).Bind(material, UsdShade.Tokens.fallbackStrength, purpose)
