"""MANO-HD (HandAvatar/OHTA): MANO subdivided twice at edge midpoints, smoothed once, with a sealed wrist.

Each level keeps the old vertices in order and appends one vertex per edge, edges numbered by first appearance
over the faces (a→b, b→c, c→a, smaller id first); every face becomes (a, ab, ca), (ab, b, bc), (ca, ab, bc),
(ca, bc, c). New vertices take the mean of their edge's shape and pose blendshapes and skinning weights, and no
joint-regressor weight. After the last level every template vertex becomes the mean of itself and its one-ring
(the release loops three times over the same original positions: one pass). The learned skinning weights
(`lbs_weights.pth`, (12337, 16) for the official MANO) replace the averaged ones when given. This order is the
release's, so official per-vertex files line up (12337 vertices from MANO's 778).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from hands.geometry.mesh import boundary_fan, boundary_loop
from hands.mano.joints import MIDDLE_MCP
from hands.mano.layer import ManoLayer
from hands.mano.model_file import ManoModelData

#: Joint of the MANO kinematic order OHTA centres on (middle MCP) and its unit (decimetres).
OHTA_CENTRE_JOINT = MIDDLE_MCP["mano"]
OHTA_SCALE = 10.0
#: Fingertip vertices OHTA appends to MANO's 16 joints, in its order (index, middle, pinky, ring, thumb).
OHTA_TIP_VERTICES = (333, 444, 672, 555, 744)


def midpoint_subdivision(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (E, 2) in first-appearance order (smaller id first) and the 4 child faces per face (4F, 3), whose new
    vertex ids are V + edge index."""
    num_vertices = int(faces.max()) + 1
    corners = np.stack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], axis=1).reshape(-1, 2)
    ordered = np.sort(corners, axis=1)
    keys = ordered[:, 0] * num_vertices + ordered[:, 1]
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(unique), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(unique))
    edges = ordered[np.sort(first)]
    ab, bc, ca = (num_vertices + rank[inverse]).reshape(-1, 3).T
    a, b, c = faces.T
    children = np.stack([np.stack([a, ab, ca], 1), np.stack([ab, b, bc], 1), np.stack([ca, ab, bc], 1),
                         np.stack([ca, bc, c], 1)], axis=1)
    return edges.astype(np.int64), children.reshape(-1, 3).astype(np.int64)


def one_ring_average(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Each vertex replaced by the mean of itself and its one-ring neighbours (one uniform Laplacian pass)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    sums, counts = vertices.copy(), np.ones(len(vertices))
    for i, j in ((0, 1), (1, 0)):
        np.add.at(sums, edges[:, i], vertices[edges[:, j]])
        np.add.at(counts, edges[:, i], 1.0)
    return sums / counts[:, None]


def read_skinning_weights(source: str | Path | np.ndarray | torch.Tensor, num_vertices: int) -> np.ndarray:
    """Learned MANO-HD skinning weights (V, 16): a file (`lbs_weights.pth`, a tensor) or an array (e.g. from the
    prior's checkpoint), clamped to [0, 1] and rows normalised as the release does at every forward pass."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"skinning weights not found: {path} (HandAvatar's lbs_weights.pth, which OHTA "
                                    "reads from third_parties/smplx/out/pretrained_lbs_weights/)")
        try:
            weights = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # refused or damaged pickle
            raise ValueError(f"{path}: not a tensor file ({error})") from None
        if isinstance(weights, dict) and len(weights) == 1:
            weights = next(iter(weights.values()))
    else:
        path, weights = "skinning weights", torch.as_tensor(source)
    if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (num_vertices, 16):
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"{path}: expected a ({num_vertices}, 16) tensor for this MANO-HD, got {shape}")
    weights = weights.double().clamp(0, 1).numpy()
    return weights / weights.sum(axis=1, keepdims=True).clip(1e-12)


def mano_hd_model(model: ManoModelData, levels: int = 2, smooth: bool = True,
                  skinning_weights: str | Path | np.ndarray | torch.Tensor | None = None) -> ManoModelData:
    """The MANO-HD model of a MANO-format model (same file layout, more vertices; meters)."""
    vertices, faces = model.v_template, model.faces
    shapedirs, posedirs, weights, regressor = model.shapedirs, model.posedirs, model.weights, model.J_regressor
    for _ in range(levels):
        edges, faces = midpoint_subdivision(faces)
        grow = lambda a: np.concatenate([a, a[edges].mean(axis=1)])  # noqa: E731
        vertices, shapedirs, posedirs, weights = grow(vertices), grow(shapedirs), grow(posedirs), grow(weights)
        regressor = np.concatenate([regressor, np.zeros((regressor.shape[0], len(edges)))], axis=1)
    if smooth and levels:
        vertices = one_ring_average(vertices, faces)
    if skinning_weights is not None:
        weights = read_skinning_weights(skinning_weights, len(vertices))
    return replace(model, v_template=vertices, faces=faces, shapedirs=shapedirs, posedirs=posedirs, weights=weights,
                   J_regressor=regressor, source=f"{model.source} (MANO-HD, {levels} levels)")


@dataclass
class ManoHDOutput:
    """A posed MANO-HD hand. vertices (B, V+1, 3) with the wrist-cap centre last; joints (B, 21, 3): MANO's 16
    kinematic joints, then the tips at `OHTA_TIP_VERTICES`; faces_sealed (F + loop, 3); bone_to_world (B, 16, 4, 4)
    each joint frame's rotation and posed position. All in the layer's output frame."""

    vertices: torch.Tensor
    joints: torch.Tensor
    faces_sealed: torch.Tensor
    bone_to_world: torch.Tensor


class ManoHD(torch.nn.Module):
    """MANO-HD as a layer: a `ManoLayer` over the subdivided model (flat-hand poses) plus the sealed wrist.

    With `ohta_frame`, outputs are centred on the middle MCP and in decimetres (OHTA's frame); otherwise meters
    in the MANO frame."""

    def __init__(self, model: ManoModelData, levels: int = 2, smooth: bool = True,
                 skinning_weights: str | Path | np.ndarray | torch.Tensor | None = None, ohta_frame: bool = True,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.base = model  # the MANO model MANO-HD was made from (the release's reference views use it)
        self.model = hd = mano_hd_model(model, levels, smooth, skinning_weights)
        self.layer = ManoLayer(hd, pose_convention="flat", dtype=dtype)
        self.ohta_frame = ohta_frame
        loop = boundary_loop(hd.faces)
        if len(loop) == 0:
            raise ValueError(f"{model.source}: the hand mesh has no wrist opening to seal")
        fan = boundary_fan(hd.faces, hd.num_vertices)
        self.register_buffer("wrist_loop", torch.as_tensor(loop), persistent=False)
        self.register_buffer("faces_sealed", torch.as_tensor(np.concatenate([hd.faces, fan])), persistent=False)
        self.register_buffer("tip_ids", torch.as_tensor(OHTA_TIP_VERTICES), persistent=False)

    @property
    def num_vertices(self) -> int:
        """Vertices of the sealed mesh (12338 for the official MANO)."""
        return self.layer.num_vertices + 1

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: torch.Tensor | None = None,
                transl: torch.Tensor | None = None, offsets: torch.Tensor | None = None) -> ManoHDOutput:
        """Pose (B,3)+(B,45) axis-angle (flat-hand convention), betas (B,10), transl (B,3) in meters, template
        offsets (B,V,3) in meters (OHTA's shape deformer)."""
        out = self.layer(global_orient, hand_pose, betas, transl, offsets)
        vertices = torch.cat([out.vertices, out.vertices[:, self.wrist_loop].mean(dim=1, keepdim=True)], dim=1)
        joints = torch.cat([out.kinematic_joints, out.vertices[:, self.tip_ids]], dim=1)
        frames = out.joint_transforms.clone()
        if self.ohta_frame:
            centre = joints[:, OHTA_CENTRE_JOINT:OHTA_CENTRE_JOINT + 1]
            vertices, joints = (vertices - centre) * OHTA_SCALE, (joints - centre) * OHTA_SCALE
            frames[..., :3, 3] = (frames[..., :3, 3] - centre) * OHTA_SCALE
        return ManoHDOutput(vertices, joints, self.faces_sealed, frames)
