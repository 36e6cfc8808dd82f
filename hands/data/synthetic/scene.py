"""Random hand scenes and camera rigs in the world frame (meters) for the synthetic InterHand-format data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hands.data.interhand.format import InterHandCamera
from hands.mano.layer import ManoLayer
from hands.mano.limits import sample_hand_poses
from hands.mano.model_file import SIDES


@dataclass
class HandParams:
    """One hand in the world frame: flat-hand axis-angle global_orient (3,) and hand_pose (45,), betas (10,),
    transl (3,) meters; vertices (778,3) and canonical joints (21,3) in meters."""

    global_orient: np.ndarray
    hand_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray


@dataclass
class HandScene:
    """hand_type 'right', 'left' or 'interacting'; hands by side; contact between the two hands (interacting)."""

    hand_type: str
    hands: dict[str, HandParams]
    contact: bool = False


def direction_in_cone(rng: np.random.Generator, max_angle: float, axis=(0.0, 0.0, 1.0)) -> np.ndarray:
    """A unit vector uniformly distributed on the spherical cap within `max_angle` radians of `axis`."""
    cos_theta = rng.uniform(np.cos(min(max_angle, np.pi)), 1.0)
    phi = rng.uniform(0, 2 * np.pi)
    sin_theta = np.sqrt(1 - cos_theta ** 2)
    local = np.array([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta])
    return Rotation.align_vectors([axis], [[0.0, 0.0, 1.0]])[0].apply(local)


def random_orientation(rng: np.random.Generator, max_angle: float = np.pi) -> np.ndarray:
    """Axis-angle (3,): uniform over all rotations, or a random axis turned by up to `max_angle` radians."""
    if max_angle >= np.pi:
        return Rotation.random(random_state=rng).as_rotvec()
    return direction_in_cone(rng, np.pi) * rng.uniform(0, max_angle)


def min_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest distance between two point sets (N,3), (M,3)."""
    return float(torch.cdist(a, b).min())


class SceneSampler:
    """Samples one- and two-hand scenes from MANO layers (both sides, flat-hand convention, float64)."""

    def __init__(self, layers: dict[str, ManoLayer], pose_components: int = 12, pose_scale: float = 0.9,
                 orientation_range: float = np.pi) -> None:
        self.layers = layers
        self.orientation_range = orientation_range
        self.pose_components = pose_components
        self.pose_scale = pose_scale

    def _hand(self, rng: np.random.Generator, side: str, betas: np.ndarray) -> HandParams:
        layer = self.layers[side]
        pose = sample_hand_poses(rng, 1, layer.hand_components.cpu().numpy(), layer.hands_mean.cpu().numpy(), side,
                                 self.pose_components, self.pose_scale)[0]
        orient = random_orientation(rng, self.orientation_range)
        return self._posed(side, orient, pose, betas, np.zeros(3))

    def _posed(self, side: str, orient, pose, betas, transl) -> HandParams:
        layer = self.layers[side]
        as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=layer.v_template.dtype)[None]  # noqa: E731
        with torch.no_grad():
            out = layer(as_t(orient), as_t(pose), as_t(betas), as_t(transl))
        return HandParams(np.asarray(orient, float), np.asarray(pose, float), np.asarray(betas, float),
                          np.asarray(transl, float), out.vertices[0].cpu().numpy(), out.joints[0].cpu().numpy())

    @staticmethod
    def _moved(hand: HandParams, offset: np.ndarray) -> HandParams:
        return HandParams(hand.global_orient, hand.hand_pose, hand.betas, hand.transl + offset,
                          hand.vertices + offset, hand.joints + offset)

    def sample(self, rng: np.random.Generator, hand_type: str, betas: np.ndarray, contact: bool = False,
               jitter: float = 0.02) -> HandScene:
        """A scene of `hand_type` centred near the world origin. For 'interacting', the hands are placed along a
        random direction so their closest vertices are 0-4 mm apart (`contact`) or 15-60 mm apart."""
        if hand_type in SIDES:
            hand = self._hand(rng, hand_type, betas)
            centre = (hand.vertices.max(0) + hand.vertices.min(0)) / 2
            return HandScene(hand_type, {hand_type: self._moved(hand, rng.normal(0, jitter, 3) - centre)})
        if hand_type != "interacting":
            raise ValueError(f"hand_type should be 'right', 'left' or 'interacting', got {hand_type!r}")
        right, left = self._hand(rng, "right", betas), self._hand(rng, "left", betas)
        right = self._moved(right, -right.vertices.mean(0))
        left = self._moved(left, -left.vertices.mean(0))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        gap = rng.uniform(0.0, 0.004) if contact else rng.uniform(0.015, 0.06)
        rv, lv = torch.as_tensor(right.vertices), torch.as_tensor(left.vertices)
        # Bisection on the separation s: min distance grows from 0 (overlapping) as the hands move apart.
        low, high = 0.0, 0.5
        for _ in range(30):
            s = (low + high) / 2
            if min_distance(rv - torch.as_tensor(direction * s / 2), lv + torch.as_tensor(direction * s / 2)) < gap:
                low = s
            else:
                high = s
        centre = rng.normal(0, jitter, 3)
        return HandScene("interacting", {"right": self._moved(right, centre - direction * high / 2),
                                         "left": self._moved(left, centre + direction * high / 2)}, contact)


def look_at_rotation(camera_centre: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """World->camera rotation (3,3) of an OpenCV camera at `camera_centre` looking at `target`, rolled by `roll`."""
    forward = target - camera_centre
    forward = forward / np.linalg.norm(forward)
    helper = np.array([0.0, 0.0, 1.0]) if abs(forward[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    right = np.cross(forward, helper)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rows = np.stack([right, down, forward])
    return Rotation.from_rotvec([0.0, 0.0, roll]).as_matrix() @ rows  # roll about the viewing axis


def sample_cameras(rng: np.random.Generator, count: int, image_size: tuple[int, int],
                   distance_range: tuple[float, float] = (0.45, 0.9), fill_range: tuple[float, float] = (0.35, 0.7),
                   hand_extent: float = 0.28, cone_angle: float = np.pi) -> list[InterHandCamera]:
    """`count` cameras around the origin (within `cone_angle` radians of +z), looking at it (within a few cm),
    with focal lengths that make a `hand_extent`-meter scene span `fill_range` of the image height. Units as
    InterHand2.6M (mm)."""
    height, width = image_size
    cameras = []
    for _ in range(count):
        direction = direction_in_cone(rng, cone_angle)
        distance = rng.uniform(*distance_range)
        centre = direction * distance
        roll = min(cone_angle, np.pi)  # a narrow cone also keeps the cameras upright
        R = look_at_rotation(centre, rng.normal(0, 0.02, 3), rng.uniform(-roll, roll))
        focal = rng.uniform(*fill_range) * height * distance / hand_extent
        princpt = np.array([(width - 1) / 2, (height - 1) / 2]) + rng.normal(0, 0.01 * width, 2)
        cameras.append(InterHandCamera(R, centre * 1000.0, np.array([focal, focal]), princpt))
    return cameras
