"""ACR checkpoints: the official `wild.pkl` (a DataParallel state dict) and our own safetensors files.

Key map from the official module names (acr/model.py of the release) to ours, by prefix:

| official | ours |
|---|---|
| backbone.hand_segm.segm_head.upsampler.up1.conv.double_conv.* | segmentation.upsample_convs.* |
| backbone.hand_segm.segm_head.segm_net.double_conv.* | segmentation.classifier.* |
| backbone.* (HRNet) | backbone.* |
| {l,r}_final_layers.{1,2,3,4}.* | {left,right}_head.{params,centre,camera,prior}.* |
| contact_layers.1.* | parts.pose_features.* |
| contact_layers.{2,3}.* | parts.{left,right}_pose.* |
| contact_layers.{4,5}.* | fuse_{left,right}.* |
| cam_shape_layers.1.* | parts.shape_features.* |
| cam_shape_layers.{2,3}.* | parts.{left,right}_shape.* |

Dropped: `segmentation_layers.*` (built but never used in the release's forward pass) and `_result_parser.*`
(MANO buffers; MANO comes from the user's model files here). The `module.` prefix is removed first.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from hands.io.home import home_file

DEFAULT_CHECKPOINT = home_file("acr", "wild.pkl")
PREFIX_MAP = (
    ("backbone.hand_segm.segm_head.upsampler.up1.conv.double_conv.", "segmentation.upsample_convs."),
    ("backbone.hand_segm.segm_head.segm_net.double_conv.", "segmentation.classifier."),
    ("backbone.", "backbone."),
    *((f"{o}_final_layers.{i}.", f"{s}_head.{name}.") for o, s in (("l", "left"), ("r", "right"))
      for i, name in ((1, "params"), (2, "centre"), (3, "camera"), (4, "prior"))),
    ("contact_layers.1.", "parts.pose_features."),
    ("contact_layers.2.", "parts.left_pose."),
    ("contact_layers.3.", "parts.right_pose."),
    ("contact_layers.4.", "fuse_left."),
    ("contact_layers.5.", "fuse_right."),
    ("cam_shape_layers.1.", "parts.shape_features."),
    ("cam_shape_layers.2.", "parts.left_shape."),
    ("cam_shape_layers.3.", "parts.right_shape."),
)
DROPPED_PREFIXES = ("segmentation_layers.", "_result_parser.")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the model; the message names the file and the keys."""


def official_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official ACR state dict to this project's module names (see the table above)."""
    mapped, unknown = {}, []
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith(DROPPED_PREFIXES):
            continue
        for official, ours in PREFIX_MAP:
            if key.startswith(official):
                mapped[ours + key[len(official):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{len(unknown)} key(s) of the official checkpoint have no counterpart, e.g. {unknown[:5]}")
    return mapped


def ours_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse renaming (for exporting to the official code), with the `module.` prefix."""
    out = {}
    for key, value in state.items():
        official = next((o + key[len(ours):] for o, ours in reversed(PREFIX_MAP) if key.startswith(ours)), None)
        if official is None:
            raise CheckpointError(f"no official name for {key}")
        out["module." + official] = value
    return out


def read_failure(error: BaseException) -> str:
    """Why `torch.load(..., weights_only=True)` failed, in one line (torch's own message suggests turning the
    safety off, which this project never does)."""
    if isinstance(error, pickle.UnpicklingError):
        return "not a checkpoint of plain tensors (corrupt, or a pickle carrying code, which is never run)"
    return next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)


def load_official_checkpoint(model: nn.Module, path: str | Path = DEFAULT_CHECKPOINT) -> None:
    """Load ACR's released weights (`wild.pkl`) into an `ACRNet`, strictly: every weight must find its place."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ACR checkpoint not found: {path}. Download the official in-the-wild weights (wild.pkl, "
                              f"linked from the ACR README) and put them at {DEFAULT_CHECKPOINT}, or pass --checkpoint PATH")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt file, or a pickle needing more than tensors
        raise CheckpointError(f"could not read ACR checkpoint {path}: {read_failure(error)}") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    result = model.load_state_dict(official_to_ours(state), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{path} does not fit ACRNet: missing {result.missing_keys[:5]} "
                              f"({len(result.missing_keys)}), unexpected {result.unexpected_keys[:5]} ({len(result.unexpected_keys)})")
