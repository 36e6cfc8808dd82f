"""Mesh export: Wavefront OBJ (optionally with per-vertex colours) and binary glTF (.glb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hands.io.atomic import atomic_path, atomic_write_bytes


def save_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray, overwrite: bool = False,
             colors: np.ndarray | None = None) -> Path:
    """Write a triangle mesh (V,3) / (F,3) 0-based as Wavefront OBJ (atomically); `colors` (V,3) in [0, 1] are
    written as the common `v x y z r g b` extension (read by MeshLab, Blender, trimesh)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if colors is None:
        lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    else:
        colors = np.clip(np.asarray(colors, dtype=np.float64), 0, 1)
        if colors.shape != vertices.shape:
            raise ValueError(f"save_obj: colors should have shape {vertices.shape}, got {colors.shape}")
        lines = [f"v {x:.6f} {y:.6f} {z:.6f} {r:.4f} {g:.4f} {b:.4f}" for (x, y, z), (r, g, b) in zip(vertices, colors)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64)]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode(), overwrite)


def save_glb(path: str | Path, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None,
             overwrite: bool = False) -> Path:
    """Write a triangle mesh with optional per-vertex colours (V,3) in [0, 1] as binary glTF (atomically)."""
    return save_glb_scene(path, {"mesh": (vertices, faces, colors)}, overwrite)


#: OpenCV camera axes (x right, y down, z forward) to glTF's (x right, y up, z toward the viewer).
OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0])


def save_glb_scene(path: str | Path, meshes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                   overwrite: bool = False, axes: np.ndarray | None = None) -> Path:
    """Write named meshes {name: (vertices (V,3), faces (F,3), colours (V,3) in [0, 1] or None)} as one binary
    glTF scene (atomically), one glTF mesh per name. `axes` (3,3) multiplies every vertex first (e.g.
    `OPENCV_TO_GLTF` for camera-frame hands, so that viewers show them upright as in the photo)."""
    import trimesh

    scene = trimesh.Scene()
    for name, (vertices, faces, colors) in meshes.items():
        vertices = np.asarray(vertices, dtype=np.float64)
        if axes is not None:
            vertices = vertices @ np.asarray(axes, dtype=np.float64).T
        mesh = trimesh.Trimesh(vertices, np.asarray(faces, dtype=np.int64), process=False)
        if colors is not None:
            rgba = np.concatenate([np.clip(np.asarray(colors), 0, 1), np.ones((len(colors), 1))], axis=1)
            mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=(rgba * 255).round().astype(np.uint8))
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    with atomic_path(path, overwrite) as tmp:
        scene.export(tmp, file_type="glb")
    return Path(path)
