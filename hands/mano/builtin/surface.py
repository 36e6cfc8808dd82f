"""The built-in hand's surface: an implicit (signed-distance-like) hand, meshed and decimated to MANO's resolution.

The hand is a smooth union of a rounded palm slab, a thenar pad, a wrist stub and tapered, slightly flattened
capsules for the finger segments, cut by a plane at the wrist. Marching cubes gives a fine closed surface; quadric
decimation brings it to ~780 vertices; the flat wrist cap is removed (leaving MANO's wrist opening) and the vertices
are relaxed tangentially and projected back onto the surface for even triangles. Everything is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hands.geometry.mesh import boundary_loop, signed_volume, vertex_neighbours, vertex_normals
from hands.mano.builtin.skeleton import FINGER_CHAINS, FINGER_NAMES, REST_JOINTS, TIP_POSITIONS

WRIST_CUT_X = 0.118  # the wrist opening lies in the plane x = WRIST_CUT_X
FINGER_SQUASH = 0.86  # finger cross-sections are flatter dorsal-palmar (y) than side to side
# (proximal, middle, distal) segment radii at their proximal and distal ends, meters
FINGER_RADII = {
    "thumb": ((0.0128, 0.0108), (0.0106, 0.0096), (0.0094, 0.0084)),
    "index": ((0.0100, 0.0091), (0.0089, 0.0081), (0.0079, 0.0072)),
    "middle": ((0.0102, 0.0093), (0.0091, 0.0083), (0.0081, 0.0074)),
    "ring": ((0.0097, 0.0088), (0.0086, 0.0079), (0.0077, 0.0071)),
    "pinky": ((0.0087, 0.0079), (0.0077, 0.0070), (0.0069, 0.0064)),
}
# Palm slab core outline in the x-z plane (before rounding by PALM_ROUNDING), counter-clockwise.
PALM_CORE = np.array(
    [[0.0130, 0.0235], [0.0065, 0.0010], [0.0195, -0.0245], [0.0335, -0.0395], [0.0700, -0.0335],
     [0.1050, -0.0190], [0.1050, 0.0215], [0.0620, 0.0275]]
)
PALM_ROUNDING = 0.0105
PALM_HALF_THICKNESS = 0.0015


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (blends two distance fields over a band of width k)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def tapered_capsule(p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float, squash: float) -> np.ndarray:
    """Approximate distance from points p (N,3) to a capsule a->b with radius ra->rb, flattened along y by `squash`."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    offset = p - (a + t[:, None] * ab)
    offset[:, 1] /= squash
    return np.linalg.norm(offset, axis=1) - (ra + t * (rb - ra))


def polygon_distance_2d(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance from 2D points q (N,2) to a simple polygon (negative inside)."""
    d = np.sum((q - poly[0]) ** 2, axis=1)
    sign = np.ones(len(q))
    n = len(poly)
    for i in range(n):
        vi, vj = poly[i], poly[i - 1]
        e = vj - vi
        w = q - vi
        proj = np.clip((w @ e) / (e @ e), 0.0, 1.0)
        b = w - proj[:, None] * e
        d = np.minimum(d, np.sum(b * b, axis=1))
        c1 = q[:, 1] >= vi[1]
        c2 = q[:, 1] < vj[1]
        c3 = e[0] * w[:, 1] > e[1] * w[:, 0]
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        sign = np.where(flip, -sign, sign)
    return sign * np.sqrt(d)


def hand_sdf(p: np.ndarray, with_wrist_cut: bool = True) -> np.ndarray:
    """Signed distance-like field of the built-in right hand at points p (N,3), meters; negative inside."""
    palm_mid_y = -0.0025 + 0.12 * p[:, 2]
    d2 = polygon_distance_2d(p[:, [0, 2]], PALM_CORE)
    dy = np.abs(p[:, 1] - palm_mid_y) - PALM_HALF_THICKNESS
    outside = np.sqrt(np.maximum(d2, 0) ** 2 + np.maximum(dy, 0) ** 2)
    palm = outside + np.minimum(np.maximum(d2, dy), 0.0) - PALM_ROUNDING
    wrist = tapered_capsule(p, np.array([0.094, 0.0005, 0.0015]), np.array([0.150, 0.0005, 0.0015]), 0.0245, 0.0245, 0.68)
    body = smooth_min(palm, wrist, 0.012)
    thenar = tapered_capsule(p, np.array([0.092, -0.0045, 0.0135]), REST_JOINTS[13] + [0.0, 0.002, -0.002], 0.0150, 0.0130, 0.82)
    body = smooth_min(body, thenar, 0.012)
    for name in FINGER_NAMES:
        chain = FINGER_CHAINS[name]
        tip = TIP_POSITIONS[FINGER_NAMES.index(name)]
        radii = FINGER_RADII[name]
        last_dir = (tip - REST_JOINTS[chain[2]]) / np.linalg.norm(tip - REST_JOINTS[chain[2]])
        ends = [REST_JOINTS[j] for j in chain] + [tip - radii[2][1] * last_dir]
        finger = np.full(len(p), np.inf)
        for k in range(3):
            finger = np.minimum(finger, tapered_capsule(p, ends[k], ends[k + 1], radii[k][0], radii[k][1], FINGER_SQUASH))
        body = smooth_min(body, finger, 0.010 if name == "thumb" else 0.0055)
    if with_wrist_cut:
        body = np.maximum(body, p[:, 0] - WRIST_CUT_X)
    return body


def sdf_gradient(p: np.ndarray, eps: float = 1e-5, with_wrist_cut: bool = False) -> np.ndarray:
    """Central-difference gradient of `hand_sdf` at p (N,3)."""
    grads = []
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = eps
        grads.append((hand_sdf(p + step, with_wrist_cut) - hand_sdf(p - step, with_wrist_cut)) / (2 * eps))
    return np.stack(grads, axis=1)


@dataclass
class SurfaceMesh:
    """A triangle mesh: vertices (V,3) meters, faces (F,3) int64 outward-facing."""

    vertices: np.ndarray
    faces: np.ndarray


def marching_cubes_surface(spacing: float = 0.001) -> SurfaceMesh:
    """Fine closed surface of `hand_sdf` by marching cubes (faces oriented outward)."""
    from skimage.measure import marching_cubes

    lo = np.array([-0.100, -0.045, -0.095])
    hi = np.array([WRIST_CUT_X + 0.004, 0.030, 0.115])
    axes = [np.arange(lo[i], hi[i] + spacing, spacing) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    volume = hand_sdf(grid).reshape(len(axes[0]), len(axes[1]), len(axes[2]))
    verts, faces, _, _ = marching_cubes(volume, level=0.0, spacing=(spacing,) * 3)
    verts = verts + lo
    faces = faces.astype(np.int64)
    if signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1].copy()
    return SurfaceMesh(verts, faces)




def remove_wrist_cap(mesh: SurfaceMesh, tol: float = 2e-4) -> SurfaceMesh:
    """Delete the flat faces in the wrist cut plane (and vertices left unused), opening the wrist."""
    on_plane = np.abs(mesh.vertices[:, 0] - WRIST_CUT_X) < tol
    keep = ~on_plane[mesh.faces].all(axis=1)
    faces = mesh.faces[keep]
    used = np.unique(faces)
    remap = -np.ones(len(mesh.vertices), dtype=np.int64)
    remap[used] = np.arange(len(used))
    return SurfaceMesh(mesh.vertices[used], remap[faces])


def decimate(mesh: SurfaceMesh, target_vertices: int) -> SurfaceMesh:
    """Quadric decimation of the closed surface, then cap removal, to exactly `target_vertices` if reachable.

    The face budget is searched deterministically: the closed mesh has ~2V-4 faces; the removed cap changes V a little.
    """
    import fast_simplification

    best: SurfaceMesh | None = None
    for extra in range(0, 40):
        for sign in (1, -1):
            faces_target = 2 * (target_vertices + sign * extra) - 4
            v, f = fast_simplification.simplify(mesh.vertices, mesh.faces.astype(np.int32), target_count=faces_target, agg=3.0)
            opened = remove_wrist_cap(SurfaceMesh(np.asarray(v), np.asarray(f, dtype=np.int64)))
            if best is None or abs(len(opened.vertices) - target_vertices) < abs(len(best.vertices) - target_vertices):
                best = opened
            if len(opened.vertices) == target_vertices:
                return opened
    assert best is not None
    return best








def relax(mesh: SurfaceMesh, pinned: dict[int, np.ndarray] | None = None, iterations: int = 12, step: float = 0.5) -> SurfaceMesh:
    """Even out triangle sizes: tangential Laplacian smoothing, then projection back onto the implicit surface.

    Vertices of the wrist boundary stay in the cut plane and move only along the boundary; `pinned` vertices
    (id -> position) are held at their positions.
    """
    pinned = pinned or {}
    pin_ids = np.asarray(list(pinned), dtype=np.int64)
    pin_pos = np.asarray([pinned[i] for i in pin_ids]).reshape(-1, 3)
    v = mesh.vertices.copy()
    v[pin_ids] = pin_pos
    loop = boundary_loop(mesh.faces)
    on_loop = np.zeros(len(v), dtype=bool)
    on_loop[loop] = True
    neighbours = vertex_neighbours(mesh.faces, len(v))
    loop_prev, loop_next = np.roll(loop, 1), np.roll(loop, -1)
    for _ in range(iterations):
        centroid = np.stack([v[n].mean(axis=0) for n in neighbours])
        centroid[loop] = 0.5 * (v[loop_prev] + v[loop_next])
        normals = vertex_normals(v, mesh.faces)
        delta = centroid - v
        delta -= np.einsum("ij,ij->i", delta, normals)[:, None] * normals
        v = v + step * delta
        for _ in range(2):  # Newton steps onto the zero level set (without the cut plane)
            d = hand_sdf(v, with_wrist_cut=False)
            g = sdf_gradient(v)
            v = v - (d / np.einsum("ij,ij->i", g, g).clip(1e-12))[:, None] * g
        v[on_loop, 0] = WRIST_CUT_X
        v[pin_ids] = pin_pos
    return SurfaceMesh(v, mesh.faces)


def build_surface(target_vertices: int = 778, spacing: float = 0.001) -> SurfaceMesh:
    """The built-in right hand's open surface mesh (wrist opening at x = WRIST_CUT_X).

    The vertex nearest each fingertip point is moved onto it and held there while the mesh relaxes.
    """
    mesh = decimate(marching_cubes_surface(spacing), target_vertices)
    pinned: dict[int, np.ndarray] = {}
    for tip in TIP_POSITIONS:
        pinned[int(np.linalg.norm(mesh.vertices - tip, axis=1).argmin())] = tip
    # MANO's left hand takes its middle tip from the vertex after the right hand's (445 vs 444): pin a second
    # vertex 2.5 mm palmar of the middle tip so both sides get a tip joint.
    near_tip = TIP_POSITIONS[2] + np.array([0.0015, -0.002, 0.0])
    near_tip = near_tip - hand_sdf(near_tip[None], False)[0] * sdf_gradient(near_tip[None])[0]
    order = np.argsort(np.linalg.norm(mesh.vertices - near_tip, axis=1))
    pinned[int(next(i for i in order if int(i) not in pinned))] = near_tip
    return relax(mesh, pinned)
