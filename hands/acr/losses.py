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
from hands.acr.postprocess import PostprocessConfig, decode_hand
from hands.data.interhand.format import JOINT_SLICE
from hands.geometry.rotations import axis_angle_to_matrix
from hands.mano.joints import CANONICAL_PARENTS, MIDDLE_MCP, convert_joints
from hands.mano.layer import ManoLayer
from hands.mano.model_file import SIDES

CENTRE = MIDDLE_MCP["canonical"]


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


def params_with_prior(maps: ACRMaps, centres: Tensor, present: Tensor,
                      max_distance: float = PostprocessConfig.prior_max_distance) -> dict[str, Tensor]:
    """Each side's parameter vectors (B,109) at its centre (B,2,2 normalised; present (B,2) bool), with the
    cross-hand prior added as `decode` adds it: where both hands are present and their centre cells are at most
    `max_distance` apart, a side's pose and shape (entries 3:) get the prior map read at the other hand's centre."""
    vectors = {side: params_at(maps.params[side], centres[:, s]) for s, side in enumerate(SIDES)}
    h, w = maps.params["right"].shape[-2:]
    cells = (centres + 1) / 2 * torch.tensor([w, h], dtype=centres.dtype, device=centres.device)
    both = present.all(dim=1) & ((cells[:, 0] - cells[:, 1]).norm(dim=-1) <= max_distance)
    for s, side in enumerate(SIDES):
        other = params_at(maps.prior[side], centres[:, 1 - s])
        vectors[side] = torch.cat([vectors[side][:, :3], vectors[side][:, 3:] + other * both[:, None]], dim=1)
    return vectors


def bone_lengths(joints: Tensor) -> Tensor:
    """(N,20) lengths of the canonical skeleton's bones of joints (N,21,3)."""
    children = torch.arange(1, 21, device=joints.device)
    parents = torch.tensor(CANONICAL_PARENTS[1:], device=joints.device)
    return (joints[:, children] - joints[:, parents]).norm(dim=-1)


def ground_truth_hand(batch: dict[str, Tensor], side: str) -> dict[str, Tensor]:
    """Ground truth of one side for the samples where it is present, in the canonical joint order: joints
    (N,21,3) relative to the middle MCP, normalised 2D joints (N,21,2) and their validity (N,21)."""
    present = batch["present"][:, SIDES.index(side)]
    hand = JOINT_SLICE[side]
    joints = convert_joints(batch["joints_3d"][present][:, hand], "interhand", "canonical")
    valid = convert_joints(batch["joint_valid"][present][:, hand, None].float(), "interhand", "canonical")[..., 0]
    return {"joints": joints - joints[:, CENTRE:CENTRE + 1], "valid": valid,
            "joints_2d": convert_joints(batch["joints_2d"][present][:, hand], "interhand", "canonical")}


def acr_losses(maps: ACRMaps, batch: dict[str, Tensor], layers: dict[str, ManoLayer], weights: LossWeights,
               train_prior: bool = False) -> dict[str, Tensor]:
    """Weighted loss terms (each a scalar) and their sum under 'total'. With `train_prior`, two-hand samples read
    their parameters with the cross-hand prior added (`params_with_prior`), which trains the prior heads."""
    parts = batch["parts"]
    logits = maps.part_logits
    if logits.shape[-2:] != parts.shape[-2:]:
        logits = nnf.interpolate(logits, size=parts.shape[-2:], mode="bilinear", align_corners=False)
    terms = {"segmentation": nnf.cross_entropy(logits, parts)}
    centre_pred = torch.cat([maps.centre["right"], maps.centre["left"]], dim=1)
    terms["centre"] = ((centre_pred - batch["centre_maps"]) ** 2).mean()
    # Every head takes part in every loss (the prior heads with weight 0 unless trained, and even then only where
    # two hands are close): DDP needs each parameter in the graph of each step.
    zero = logits.sum() * 0 + sum(prior.sum() for prior in maps.prior.values()) * 0
    for name in ("joints_3d", "joints_2d", "bones", "pose", "shape", "shape_prior"):
        terms[name] = zero
    hands = 0
    sides_present = batch["present"].bool()
    vectors = (params_with_prior(maps, batch["centre"], sides_present) if train_prior else
               {side: params_at(maps.params[side], batch["centre"][:, s]) for s, side in enumerate(SIDES)})
    for s, side in enumerate(SIDES):
        present = batch["present"][:, s]
        if not present.any():
            continue
        hands += int(present.sum())
        vector = vectors[side][present]
        pred = decode_hand(vector, layers[side])
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
