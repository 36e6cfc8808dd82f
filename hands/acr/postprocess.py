"""From ACR's maps to hands: centre peaks, parameter sampling, the cross-hand prior, decoding and MANO.

Per image at most one right and one left hand (ACR's design). A side is detected when its centre map's best
local maximum (5 x 5 non-maximum suppression) exceeds `threshold` (0.35): the release's rule, and the default.
`phantom_guard` adds two checks against the "phantom second hand" users report on single-hand images (ACR issues
#7, #22): when both sides fire at (nearly) the same cell only the stronger one is kept, and a side needs
part-segmentation support: enough pixels of its own 16 parts among the hand pixels around its centre.
Meshes are placed as the release places them: RANSAC PnP of the 3D joints onto their weak-perspective
projection (`placement="pnp"`); `"closed_form"` is the exact pinhole match of the weak-perspective camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import Tensor

from hands.acr.model import ACRMaps
from hands.geometry.cameras import WeakPerspectiveCamera
from hands.geometry.pnp import solve_translation_pnp
from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_6d_to_matrix
from hands.mano.joints import MIDDLE_MCP
from hands.mano.layer import ManoLayer
from hands.mano.model_file import SIDES

PART_RANGE = {"right": (1, 17), "left": (17, 33)}
CENTRE = MIDDLE_MCP["canonical"]  # ACR aligns hands at the middle-finger MCP


@dataclass
class PostprocessConfig:
    """How detections are made from the centre maps."""

    threshold: float = 0.35
    """Minimum centre score (ACR's centermap_conf_thresh)."""
    nms_kernel: int = 5
    prior_max_distance: float = 32.0
    """The cross-hand prior is used only when the two centres are at most this many map cells apart."""
    phantom_guard: bool = False
    """Not in the release: drop a side without part-segmentation support, and the weaker of two sides peaking at
    (nearly) the same cell (see docs/deviations.md)."""
    conflict_radius: float = 2.0
    """With phantom_guard: both sides peaking within this many cells of each other are one hand."""
    min_part_support: float = 0.25
    """With phantom_guard: a side needs this share of its own parts among hand pixels within `support_radius`."""
    support_radius: int = 4
    focal: float = 1265.0
    """Focal length (pixels at 512) of the pinhole camera used to place the meshes for rendering (ACR's value)."""
    placement: Literal["pnp", "closed_form"] = "pnp"
    """How the mesh translation is found: the release's RANSAC PnP, or the exact weak-perspective match."""
    pad_value: int = 255
    """Value of the letterbox padding: the release's white (0 = black, not the release)."""

    def __post_init__(self) -> None:
        if self.placement not in ("pnp", "closed_form"):
            raise ValueError(f"placement must be 'pnp' or 'closed_form', got {self.placement!r}")


@dataclass
class HandDetection:
    """One detected hand in one image. Pose in the flat-hand convention, camera-aligned global orientation;
    vertices (778,3) and joints (21,3) in meters relative to the middle MCP; joints_2d (21,2) input pixels;
    camera = weak perspective (s, tx, ty); translation (3,) places the root-relative mesh for a pinhole camera
    with `PostprocessConfig.focal` (scaled to the input size) and the principal point at the image centre. Pixels
    follow the release: (normalised + 1) * size / 2, origin at the top-left corner of the first pixel."""

    batch_index: int
    side: str
    score: float
    cell: tuple[int, int]
    camera: Tensor
    global_orient: Tensor
    hand_pose: Tensor
    betas: Tensor
    vertices: Tensor
    joints: Tensor
    joints_2d: Tensor
    translation: Tensor
    root: Tensor
    """(3,) meters: the middle MCP of the un-translated MANO hand (vertices + root = MANO's own output)."""


def centre_peaks(centre: Tensor, kernel: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    """Best local maximum per image of centre maps (B,1,h,w) -> score (B,), y (B,), x (B,)."""
    pooled = nnf.max_pool2d(centre, kernel, 1, kernel // 2)
    peaks = torch.where(pooled == centre, centre, torch.full_like(centre, float("-inf"))).flatten(1)
    score, index = peaks.max(dim=1)
    w = centre.shape[-1]
    return score, index // w, index % w


def part_support(part_logits: Tensor, batch_index: int, side: str, cell: tuple[int, int], map_size: int,
                 radius: int) -> float | None:
    """Share of the hand pixels near a map cell whose predicted part belongs to `side`; None when the segmentation
    shows no hand there (no evidence either way)."""
    labels = part_logits[batch_index].argmax(dim=0)
    scale = labels.shape[-1] / map_size
    y, x = int((cell[0] + 0.5) * scale), int((cell[1] + 0.5) * scale)
    r = int(radius * scale)
    window = labels[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
    hand = window > 0
    if not hand.any():
        return None
    lo, hi = PART_RANGE[side]
    return float(((window >= lo) & (window < hi)).sum() / hand.sum())


def detect(maps: ACRMaps, config: PostprocessConfig) -> list[dict[str, tuple[float, tuple[int, int]]]]:
    """Per image: side -> (score, (y, x) cell) of the kept detections."""
    peaks = {side: centre_peaks(maps.centre[side], config.nms_kernel) for side in SIDES}
    map_size = maps.centre["right"].shape[-1]
    results = []
    for b in range(maps.part_logits.shape[0]):
        found = {}
        for side in SIDES:
            score, y, x = (v[b].item() for v in peaks[side])
            if score <= config.threshold:
                continue
            if config.phantom_guard:
                support = part_support(maps.part_logits, b, side, (y, x), map_size, config.support_radius)
                if support is not None and support < config.min_part_support:
                    continue
            found[side] = (score, (int(y), int(x)))
        if config.phantom_guard and len(found) == 2:
            (sr, (yr, xr)), (sl, (yl, xl)) = found["right"], found["left"]
            if ((yr - yl) ** 2 + (xr - xl) ** 2) ** 0.5 <= config.conflict_radius:
                del found["left" if sr >= sl else "right"]
        results.append(found)
    return results


def decode_hand(vector: Tensor, layer: ManoLayer) -> dict[str, Tensor]:
    """ACR's 109-vectors (N,109) = camera (s, tx, ty) | 16 x 6D rotations | 10 betas -> a dict of: rotations
    (N,16,3,3) as predicted (finger rotations relative to MANO's hands_mean, as ACR's flat_hand_mean=False MANO
    expects), global_orient (N,3) and hand_pose (N,45) axis-angle in the flat convention, betas, camera, and the
    MANO vertices (N,778,3) and joints (N,21,3) relative to the middle MCP (root (N,3)) with their
    weak-perspective projection joints_2d (N,21,2) in normalised coordinates. `layer` must use pose_convention='flat'."""
    if layer.pose_convention != "flat":
        raise ValueError("ACR decoding expects MANO layers built with pose_convention='flat'")
    vector = vector.to(layer.v_template)
    rotations = rotation_6d_to_matrix(vector[:, 3:99].reshape(-1, 16, 6), "columns")
    axis_angle = matrix_to_axis_angle(rotations)
    hand_pose = axis_angle[:, 1:] + layer.hands_mean.view(15, 3)  # axis-angle offsets add: pose = mean + delta
    flat = torch.cat([rotations[:, :1], axis_angle_to_matrix(hand_pose)], dim=1)
    betas, camera = vector[:, 99:109], vector[:, :3]
    out = layer.forward_rotation_matrices(flat, betas)
    root = out.joints[:, CENTRE:CENTRE + 1]
    joints = out.joints - root
    return {"rotations": rotations, "global_orient": axis_angle[:, 0], "hand_pose": hand_pose.reshape(-1, 45),
            "betas": betas, "camera": camera, "vertices": out.vertices - root, "joints": joints, "root": root[:, 0],
            "joints_2d": camera[:, None, :1] * joints[..., :2] + camera[:, None, 1:3]}


def decode(maps: ACRMaps, detections: list[dict], layers: dict[str, ManoLayer], image_size: int,
           config: PostprocessConfig) -> list[HandDetection]:
    """Sample parameters at the detected centres, add the cross-hand prior, run MANO and project."""
    hands = []
    for b, found in enumerate(detections):
        params = {side: maps.params[side][b, :, y, x].clone() for side, (_, (y, x)) in found.items()}
        if len(found) == 2:
            (yr, xr), (yl, xl) = found["right"][1], found["left"][1]
            if ((yr - yl) ** 2 + (xr - xl) ** 2) ** 0.5 <= config.prior_max_distance:
                params["left"][3:] += maps.prior["left"][b, :, yr, xr]  # the other hand's centre carries the prior
                params["right"][3:] += maps.prior["right"][b, :, yl, xl]
        for side, vector in params.items():
            hand = {k: v[0] for k, v in decode_hand(vector[None], layers[side]).items()}
            camera, joints = hand["camera"], hand["joints"]
            joints_2d = input_pixels(hand["joints_2d"], image_size)
            hands.append(HandDetection(
                b, side, found[side][0], found[side][1], camera, hand["global_orient"], hand["hand_pose"], hand["betas"],
                hand["vertices"], joints, joints_2d, place_hand(camera, joints, joints_2d, image_size, config), hand["root"]))
    return hands


def input_pixels(normalised: Tensor, image_size: int) -> Tensor:
    """Weak-perspective projections (..., 2) in [-1, 1] -> pixels of the square network input in ACR's convention:
    (p + 1) * size / 2, origin at the top-left corner of the first pixel (the release's (pj2d + 1) * 256)."""
    return (normalised + 1) * (image_size / 2)


def input_intrinsics(image_size: int, focal: float) -> np.ndarray:
    """(3,3) pinhole intrinsics of the square network input in ACR's pixel convention: f = focal * size / 512,
    principal point at size / 2 (the release's camK for 512)."""
    f, c = focal * image_size / 512, image_size / 2
    return np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])


def place_hand(camera: Tensor, joints: Tensor, joints_2d: Tensor, image_size: int, config: PostprocessConfig) -> Tensor:
    """Translation (3,), meters, that puts the root-relative hand (joints (21,3)) in front of the input camera of
    `input_intrinsics`: RANSAC PnP onto joints_2d (21,2, input pixels) as the release does, or the closed-form
    weak-perspective match (also where PnP has fewer than 4 joints to use, where the release stops)."""
    if config.placement == "pnp":
        t = solve_translation_pnp(joints.detach().float().cpu().numpy(), joints_2d.detach().float().cpu().numpy(),
                                  input_intrinsics(image_size, config.focal))
        if t is not None:
            return torch.as_tensor(t, dtype=joints.dtype, device=joints.device)
    weak = WeakPerspectiveCamera(camera[:1], camera[None, 1:3], (image_size, image_size))
    return weak.to_perspective_translation(config.focal * image_size / 512)[0]
