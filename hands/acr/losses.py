"""ACR training losses: part segmentation, centre heatmaps, and hand parameters read at the ground-truth centres
(3D joints, 2D projections, MANO pose and shape, a shape prior and bone lengths).

Default weights follow the ROMP-style values of the third-party re-implementation (reference/acr.md A4):
centre 80, segmentation 160, 3D joints 200, 2D joints 400, bones 200, pose 80, shape 10; shape prior 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import Tensor

from hands.acr.model import ACRMaps
from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_6d_to_matrix
from hands.mano.joints import CANONICAL_PARENTS, convert_joints
from hands.mano.layer import ManoLayer

SIDES = ("right", "left")
MIDDLE_MCP = 9


@dataclass
class LossWeights:
    """Weight of each ACR loss term."""

    centre: float = 80.0
    segmentation: float = 160.0
    joints_3d: float = 200.0
    joints_2d: float = 400.0
    bones: float = 200.0
    pose: float = 80.0
    shape: float = 10.0
    shape_prior: float = 1.0


def params_at(maps: Tensor, centres: Tensor) -> Tensor:
    """Parameter vectors (B,C) read from maps (B,C,h,w) at normalised centres (B,2) (nearest cell)."""
    h, w = maps.shape[-2:]
    x = ((centres[:, 0] + 1) / 2 * w).long().clamp(0, w - 1)
    y = ((centres[:, 1] + 1) / 2 * h).long().clamp(0, h - 1)
    return maps[torch.arange(len(maps), device=maps.device), :, y, x]


def hand_from_params(vector: Tensor, layer: ManoLayer) -> dict[str, Tensor]:
    """109-vectors (N,109) -> rotations (N,16,3,3), betas, MANO joints (N,21,3) relative to the middle MCP,
    weak-perspective 2D joints (N,21,2) normalised, camera (N,3). Hand poses are mean-relative as in ACR."""
    rotations = rotation_6d_to_matrix(vector[:, 3:99].reshape(-1, 16, 6), "columns")
    betas = vector[:, 99:109]
    out = layer.forward_rotation_matrices(_mean_relative_to_flat(rotations, layer), betas)
    joints = out.joints - out.joints[:, MIDDLE_MCP:MIDDLE_MCP + 1]
    camera = vector[:, :3]
    joints_2d = camera[:, None, :1] * joints[..., :2] + camera[:, None, 1:3]
    return {"rotations": rotations, "betas": betas, "joints": joints, "joints_2d": joints_2d, "camera": camera}


def _mean_relative_to_flat(rotations: Tensor, layer: ManoLayer) -> Tensor:
    """Local rotations whose finger part is relative to hands_mean (as ACR predicts) -> flat-hand rotations.

    Axis-angle offsets add (pose = mean + delta); for rotation matrices that is exp(mean + delta), computed via
    axis-angle to stay exact."""
    delta = matrix_to_axis_angle(rotations[:, 1:])
    fingers = axis_angle_to_matrix(delta + layer.hands_mean.view(15, 3).to(delta))
    return torch.cat([rotations[:, :1], fingers], dim=1)


def bone_lengths(joints: Tensor) -> Tensor:
    """(N,20) lengths of the canonical skeleton's bones of joints (N,21,3)."""
    children = torch.arange(1, 21, device=joints.device)
    parents = torch.tensor(CANONICAL_PARENTS[1:], device=joints.device)
    return (joints[:, children] - joints[:, parents]).norm(dim=-1)


def ground_truth_hand(batch: dict[str, Tensor], side: str) -> dict[str, Tensor]:
    """Ground truth of one side for the samples where it is present, in the canonical joint order: joints
    (N,21,3) relative to the middle MCP, normalised 2D joints (N,21,2) and their validity (N,21)."""
    present = batch["present"][:, SIDES.index(side)]
    hand = slice(0, 21) if side == "right" else slice(21, 42)
    joints = convert_joints(batch["joints_3d"][present][:, hand], "interhand", "canonical")
    valid = convert_joints(batch["joint_valid"][present][:, hand, None].float(), "interhand", "canonical")[..., 0]
    return {"joints": joints - joints[:, MIDDLE_MCP:MIDDLE_MCP + 1], "valid": valid,
            "joints_2d": convert_joints(batch["joints_2d"][present][:, hand], "interhand", "canonical")}


def acr_losses(maps: ACRMaps, batch: dict[str, Tensor], layers: dict[str, ManoLayer], weights: LossWeights) -> dict[str, Tensor]:
    """Weighted loss terms (each a scalar) and their sum under 'total'."""
    parts = batch["parts"]
    logits = maps.part_logits
    if logits.shape[-2:] != parts.shape[-2:]:
        logits = nnf.interpolate(logits, size=parts.shape[-2:], mode="bilinear", align_corners=False)
    terms = {"segmentation": nnf.cross_entropy(logits, parts)}
    centre_pred = torch.cat([maps.centre["right"], maps.centre["left"]], dim=1)
    terms["centre"] = ((centre_pred - batch["centre_maps"]) ** 2).mean()
    zero = logits.sum() * 0
    for name in ("joints_3d", "joints_2d", "bones", "pose", "shape", "shape_prior"):
        terms[name] = zero
    hands = 0
    for s, side in enumerate(SIDES):
        present = batch["present"][:, s]
        if not present.any():
            continue
        hands += int(present.sum())
        vector = params_at(maps.params[side], batch["centre"][:, s])[present]
        pred = hand_from_params(vector, layers[side])
        gt = ground_truth_hand(batch, side)
        gt_3d, gt_2d, valid = gt["joints"], gt["joints_2d"], gt["valid"]
        count = valid.sum().clamp_min(1)
        terms["joints_3d"] = terms["joints_3d"] + ((pred["joints"] - gt_3d).norm(dim=-1) * valid).sum() / count
        terms["joints_2d"] = terms["joints_2d"] + ((pred["joints_2d"] - gt_2d).norm(dim=-1) * valid).sum() / count
        terms["bones"] = terms["bones"] + (bone_lengths(pred["joints"]) - bone_lengths(gt_3d)).abs().mean()
        gt_pose = batch["pose"][present, s].reshape(-1, 16, 3)
        gt_rot = axis_angle_to_matrix(torch.cat([gt_pose[:, :1], gt_pose[:, 1:] - layers[side].hands_mean.view(1, 15, 3).to(gt_pose)], 1))
        terms["pose"] = terms["pose"] + ((pred["rotations"] - gt_rot) ** 2).mean()
        terms["shape"] = terms["shape"] + ((pred["betas"] - batch["betas"][present, s]) ** 2).mean()
        terms["shape_prior"] = terms["shape_prior"] + (pred["betas"] ** 2).mean()
    weighted = {name: value * getattr(weights, name) for name, value in terms.items()}
    weighted["total"] = sum(weighted.values())
    return weighted
