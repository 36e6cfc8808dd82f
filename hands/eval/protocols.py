"""The two InterHand2.6M evaluation protocols (reference/acr.md B4), as accumulators over batches.

InterNet (the dataset's official one): 42 joints in InterHand order, each hand aligned at its wrist, a hand with
an invalid wrist left out, errors averaged per joint index and then over the joint indices, separately for
single-hand and interacting images; MRRPE on interacting images with both wrists valid; handedness accuracy on
images whose hand type is valid.

IntagHand (mesh papers): interacting images with both MANO fits; per hand, subtract the middle MCP (canonical
joint 9), scale the prediction so that wrist-to-middle-MCP length matches the ground truth, then MPJPE over 21
joints and MPVPE over the vertices, averaged over samples, reported per hand and as (left + right) / 2.

Inputs are in meters; summaries are in millimetres.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hands.data.interhand.format import JOINT_SLICE, ROOT_INDEX
from hands.eval.metrics import handedness_correct, mrrpe
from hands.mano.model_file import SIDES


class InterNetEvaluator:
    """Accumulates the official InterHand2.6M joint metrics."""

    def __init__(self) -> None:
        self.sums = {group: np.zeros(42) for group in ("single", "interacting")}
        self.counts = {group: np.zeros(42) for group in ("single", "interacting")}
        self.mrrpe: list[float] = []
        self.handedness: list[bool] = []

    def add(self, pred_joints: Tensor, gt_joints: Tensor, joint_valid: Tensor, hand_types: list[str],
            pred_hand_type: Tensor | None = None, gt_hand_type: Tensor | None = None,
            hand_type_valid: Tensor | None = None) -> None:
        """pred_joints, gt_joints (B,42,3) meters in InterHand order (camera frame); joint_valid (B,42);
        hand_types: per image 'right', 'left' or 'interacting'; optional presence scores [right, left] (B,2)."""
        if pred_joints.shape != gt_joints.shape or pred_joints.shape[1:] != (42, 3):
            raise ValueError(f"InterNet protocol: joints should be (B, 42, 3), got {tuple(pred_joints.shape)} and {tuple(gt_joints.shape)}")
        valid = joint_valid.bool().clone()
        errors = torch.zeros(valid.shape, dtype=pred_joints.dtype, device=pred_joints.device)
        for side in SIDES:
            hand, root = JOINT_SLICE[side], ROOT_INDEX[side]
            valid[:, hand] = valid[:, hand] & valid[:, root:root + 1].clone()
            errors[:, hand] = ((pred_joints[:, hand] - pred_joints[:, root:root + 1])
                               - (gt_joints[:, hand] - gt_joints[:, root:root + 1])).norm(dim=-1)
        errors_mm, valid_np = errors.detach().cpu().double().numpy() * 1000.0, valid.cpu().numpy()
        for b, hand_type in enumerate(hand_types):
            group = "interacting" if hand_type == "interacting" else "single"
            self.sums[group] += np.where(valid_np[b], errors_mm[b], 0.0)
            self.counts[group] += valid_np[b]
            if hand_type == "interacting" and valid_np[b, ROOT_INDEX["right"]] and valid_np[b, ROOT_INDEX["left"]]:
                r, left = ROOT_INDEX["right"], ROOT_INDEX["left"]
                self.mrrpe.append(float(mrrpe(pred_joints[b:b + 1, r], pred_joints[b:b + 1, left],
                                              gt_joints[b:b + 1, r], gt_joints[b:b + 1, left])) * 1000.0)
        if pred_hand_type is not None and gt_hand_type is not None:
            keep = torch.ones(len(hand_types), dtype=torch.bool) if hand_type_valid is None else hand_type_valid.bool().cpu()
            correct = handedness_correct(pred_hand_type.cpu(), gt_hand_type.cpu())
            self.handedness.extend(correct[keep].tolist())

    @staticmethod
    def _mean_of_joint_means(sums: np.ndarray, counts: np.ndarray) -> float:
        seen = counts > 0
        return float((sums[seen] / counts[seen]).mean()) if seen.any() else float("nan")

    def summary(self) -> dict[str, float]:
        """mpjpe_single / mpjpe_interacting / mpjpe_all (mm, mean of per-joint means), mrrpe (mm), handedness."""
        total_sums = self.sums["single"] + self.sums["interacting"]
        total_counts = self.counts["single"] + self.counts["interacting"]
        return {
            "mpjpe_single": self._mean_of_joint_means(self.sums["single"], self.counts["single"]),
            "mpjpe_interacting": self._mean_of_joint_means(self.sums["interacting"], self.counts["interacting"]),
            "mpjpe_all": self._mean_of_joint_means(total_sums, total_counts),
            "mrrpe": float(np.mean(self.mrrpe)) if self.mrrpe else float("nan"),
            "handedness_accuracy": float(np.mean(self.handedness)) if self.handedness else float("nan"),
        }


def scale_and_centre(pred: Tensor, gt: Tensor, pred_joints: Tensor, gt_joints: Tensor) -> tuple[Tensor, Tensor]:
    """IntagHand alignment of points (B,N,3) of one hand: centre on canonical joint 9 (middle MCP) and scale the
    prediction so |J9 - J0| matches the ground truth; joints (B,21,3) canonical order define both."""
    pred_length = (pred_joints[:, 9] - pred_joints[:, 0]).norm(dim=-1).clamp_min(1e-9)
    gt_length = (gt_joints[:, 9] - gt_joints[:, 0]).norm(dim=-1)
    aligned = (pred - pred_joints[:, 9:10]) * (gt_length / pred_length)[:, None, None]
    return aligned, gt - gt_joints[:, 9:10]


class IntagHandEvaluator:
    """Accumulates IntagHand's mesh metrics on interacting hands."""

    def __init__(self) -> None:
        self.errors: dict[str, dict[str, list[Tensor]]] = {side: {"mpjpe": [], "mpvpe": []} for side in SIDES}

    def add(self, pred: dict[str, tuple[Tensor, Tensor]], gt: dict[str, tuple[Tensor, Tensor]]) -> None:
        """pred/gt: side -> (joints (B,21,3) canonical order, vertices (B,778,3)) in meters, both sides present."""
        for side in SIDES:
            (pj, pv), (gj, gv) = pred[side], gt[side]
            aligned_j, gt_j = scale_and_centre(pj, gj, pj, gj)
            aligned_v, gt_v = scale_and_centre(pv, gv, pj, gj)
            self.errors[side]["mpjpe"].append((aligned_j - gt_j).norm(dim=-1).mean(dim=1).detach().cpu() * 1000.0)
            self.errors[side]["mpvpe"].append((aligned_v - gt_v).norm(dim=-1).mean(dim=1).detach().cpu() * 1000.0)

    def summary(self) -> dict[str, float]:
        """mpjpe/mpvpe per side and their (left + right) / 2, in mm, averaged over samples."""
        out = {}
        for metric in ("mpjpe", "mpvpe"):
            for side in SIDES:
                values = self.errors[side][metric]
                out[f"{metric}_{side}"] = float(torch.cat(values).double().mean()) if values else float("nan")
            out[metric] = (out[f"{metric}_right"] + out[f"{metric}_left"]) / 2
        return out
