"""Triangle-mesh utilities: topology (boundary loops, neighbours, sealing holes), normals, volume."""

from __future__ import annotations

import numpy as np


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume of a closed mesh (positive when faces point outward)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def boundary_loop(faces: np.ndarray) -> np.ndarray:
    """Vertex ids of the (single) boundary loop of an open mesh, in order; empty if the mesh is closed."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = {tuple(e) for e in edges.tolist()}
    boundary = [e for e in edges.tolist() if (e[1], e[0]) not in key]
    if not boundary:
        return np.zeros(0, dtype=np.int64)
    nxt = {a: b for a, b in boundary}
    start = boundary[0][0]
    loop = [start]
    while nxt[loop[-1]] != start:
        loop.append(nxt[loop[-1]])
        if len(loop) > len(boundary):
            raise ValueError("boundary edges do not form a single loop")
    return np.asarray(loop, dtype=np.int64)


def vertex_neighbours(faces: np.ndarray, num_vertices: int) -> list[np.ndarray]:
    """One-ring neighbour ids of every vertex."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    edges = np.unique(edges, axis=0)
    splits = np.searchsorted(edges[:, 0], np.arange(num_vertices + 1))
    return [edges[splits[i]:splits[i + 1], 1] for i in range(num_vertices)]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V,3)."""
    fn = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    normals = np.zeros_like(vertices)
    for i in range(3):
        np.add.at(normals, faces[:, i], fn)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-12)


def boundary_fan(faces: np.ndarray, centre: int) -> np.ndarray:
    """Faces (n, 3) joining the single boundary loop of `faces` to vertex `centre`, oriented like the rest of the
    mesh; (0, 3) for a closed mesh."""
    loop = boundary_loop(faces)
    # Boundary edges run a->b in the existing faces; the fan uses them reversed to keep orientation consistent.
    return np.stack([np.roll(loop, -1), loop, np.full(len(loop), centre)], axis=1).reshape(-1, 3)


def seal_boundary(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Close the single boundary loop (e.g. MANO's wrist opening) with a fan around its centroid.

    Returns vertices (V+1,3) with the centroid appended and faces (F+n,3) oriented like the rest of the mesh.
    A closed mesh is returned unchanged.
    """
    loop = boundary_loop(faces)
    if len(loop) == 0:
        return vertices, faces
    fan = boundary_fan(faces, len(vertices))
    return np.concatenate([vertices, vertices[loop].mean(axis=0, keepdims=True)]), np.concatenate([faces, fan])
