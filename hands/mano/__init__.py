"""MANO: model files (official, without chumpy; the built-in open hand), the batched layer, joint orders."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from hands.mano.joints import CANONICAL_JOINT_NAMES, MANO_PARENTS, TIP_VERTEX_IDS, convert_joints
from hands.mano.layer import ManoLayer, ManoOutput, PoseConvention, forward_kinematics
from hands.mano.model_file import ManoFileError, ManoModelData, Side, load_mano_file, resolve_model_path, save_mano_file
from hands.mano.parts import part_labels

__all__ = [
    "BuiltinHandWarning", "CANONICAL_JOINT_NAMES", "MANO_PARENTS", "ManoFileError", "ManoLayer", "ManoModelData",
    "ManoOutput", "TIP_VERTEX_IDS", "build_mano", "convert_joints", "forward_kinematics", "load_mano_file",
    "load_mano_model", "part_labels", "save_mano_file",
]


class BuiltinHandWarning(UserWarning):
    """No official MANO file was configured; the built-in open hand model is used instead."""


def load_mano_model(side: Side = "right", model_path: str | Path | None = None) -> ManoModelData:
    """The hand model for `side`: the official file at `model_path` (file or folder), else $HANDS_MANO_DIR,
    $HANDS_HOME/mano or the checkout's models/mano, else the built-in open hand model with a one-line warning."""
    path = resolve_model_path(side, model_path)
    if path is not None:
        return load_mano_file(path, side=side)
    from hands.mano.builtin import builtin_model

    warnings.warn(
        f"no MANO_{side.upper()}.pkl configured ($HANDS_HOME/mano/ or $HANDS_MANO_DIR): using the built-in open hand model",
        BuiltinHandWarning,
        stacklevel=2,
    )
    return builtin_model(side)


def build_mano(
    side: Side = "right",
    model_path: str | Path | None = None,
    *,
    pose_convention: PoseConvention,
    use_pca: bool = False,
    num_pca_comps: int = 45,
    fix_left_shapedirs: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> ManoLayer:
    """Build a `ManoLayer` for one hand side (the one factory for MANO layers in this project).

    pose_convention must be chosen explicitly: "flat" (zero pose = flat hand) or "mean_relative" (pose relative
    to `hands_mean`, as in smplx's default and InterHand2.6M's NeuralAnnot fits).
    """
    model = load_mano_model(side, model_path)
    layer = ManoLayer(model, pose_convention=pose_convention, use_pca=use_pca, num_pca_comps=num_pca_comps,
                      fix_left_shapedirs=fix_left_shapedirs, dtype=dtype)
    return layer.to(device)
