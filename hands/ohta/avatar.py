"""An OHTA hand avatar: MANO-HD geometry, PairOF occupancy and the anchor texture field, posed together.

OHTA's frame: decimetres, centred on the middle MCP, rotation of the camera (the global orient is given in camera
coordinates), so a point x maps to the camera as x + Th (Th in decimetres, from the annotation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from hands.mano.model_file import ManoModelData
from hands.ohta.deformer import ShapeDeformer
from hands.ohta.manohd import ManoHD
from hands.ohta.pairof import Occupancy, PairOF, PairOFConfig, PoseCode
from hands.ohta.texture import Appearance, AppearanceConfig


@dataclass
class PosedAvatar:
    """One posed batch: sealed vertices (B, V+1, 3) and faces, PairOF's pose code, anchor positions per level and
    the 21 joints of the same pose without global rotation (B, 21, 3); OHTA frame."""

    vertices: torch.Tensor
    faces: torch.Tensor
    code: PoseCode
    anchors: list[torch.Tensor]
    joints_unrotated: torch.Tensor


class HandAvatar(nn.Module):
    """Geometry and appearance of OHTA's hand model (right hand, MANO-HD from any MANO-format model)."""

    def __init__(self, model: ManoModelData, skinning_weights: str | Path | np.ndarray | torch.Tensor | None = None,
                 pairof: PairOFConfig | None = None, appearance: AppearanceConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.mano = ManoHD(model, skinning_weights=skinning_weights)
        hd = self.mano.model
        self.pairof = PairOF(hd.v_template, hd.faces, hd.weights, hd.parents, pairof)
        self.appearance = Appearance(hd.v_template, hd.faces, appearance, seed)
        self.deformer = ShapeDeformer(torch.as_tensor(hd.v_template), torch.as_tensor(hd.J_regressor))

    def pose(self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: torch.Tensor | None = None,
             generator: torch.Generator | None = None, deform_identity: torch.Tensor | None = None) -> PosedAvatar:
        """Pose the avatar: global_orient (B, 3) in camera axes, hand_pose (B, 45) flat-hand axis-angle, betas (B, 10).
        With `deform_identity` (B, 33) the shape comes from the deformer's template offsets instead of betas (prior
        learning, as the release)."""
        offsets = None
        if deform_identity is not None:
            offsets, betas = self.deformer(hand_pose, deform_identity), None
        out = self.mano(global_orient, hand_pose, betas, offsets=offsets)
        unrotated = self.mano(torch.zeros_like(global_orient), hand_pose, betas, offsets=offsets).joints
        code = self.pairof.encode(out.vertices[:, :-1], out.bone_to_world, generator)
        return PosedAvatar(out.vertices, out.faces_sealed, code, self.appearance.anchors.positions(out.vertices),
                           unrotated)

    def occupancy(self, points: torch.Tensor, posed: PosedAvatar) -> Occupancy:
        return self.pairof.query(points, posed.code)

    def shade(self, points: torch.Tensor, posed: PosedAvatar, identity: torch.Tensor, calibrate: bool = False) -> dict:
        """Albedo, shadow and colour of points (B, T, 3) for an identity code (B, 33)."""
        features = self.appearance.anchors.lookup(points, posed.anchors)
        return self.appearance(features, identity, posed.joints_unrotated, calibrate)
