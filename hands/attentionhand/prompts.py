"""Template text prompts for hand images: the hand type and a short description of each hand's pose."""

from __future__ import annotations

import numpy as np

from hands.mano.builtin.skeleton import FINGER_CHAINS
from hands.mano.joints import POSE_MIRROR
from hands.mano.limits import joint_frames

FOUR_FINGERS = ("index", "middle", "ring", "pinky")
EXTENDED, CURLED = 0.7, 2.2  # radians of total flexion over a finger's three joints
PINCH_DISTANCE = 0.025  # meters between thumb and index tips

PHRASES = {
    "open": "with the fingers open",
    "fist": "making a fist",
    "pointing": "pointing with the index finger",
    "pinching": "pinching with the thumb and index finger",
    "holding": "with the fingers curled as if holding something",
}


def finger_flexion(hand_pose: np.ndarray, side: str = "right") -> dict[str, float]:
    """Total flexion (radians) of each finger of a flat-hand pose (45,)."""
    per_joint = np.asarray(hand_pose, dtype=np.float64).reshape(15, 3)
    if side == "left":
        per_joint = per_joint * POSE_MIRROR
    flexion = np.einsum("jb,jb->j", joint_frames()[:, 0], per_joint)
    return {name: float(sum(flexion[j - 1] for j in chain)) for name, chain in FINGER_CHAINS.items()}


def describe_pose(hand_pose: np.ndarray, side: str = "right", joints: np.ndarray | None = None) -> str:
    """'open', 'fist', 'pointing', 'pinching' or 'holding' for a flat-hand pose (45,); `joints` (21,3) canonical
    order in meters enable 'pinching' (thumb and index tips close together)."""
    curl = finger_flexion(hand_pose, side)
    if joints is not None and np.linalg.norm(joints[4] - joints[8]) < PINCH_DISTANCE and curl["index"] > EXTENDED:
        return "pinching"
    if all(curl[f] < EXTENDED for f in FOUR_FINGERS):
        return "open"
    if all(curl[f] > CURLED for f in FOUR_FINGERS):
        return "fist"
    if curl["index"] < EXTENDED and all(curl[f] > CURLED for f in FOUR_FINGERS[1:]):
        return "pointing"
    return "holding"


def hand_prompt(poses: dict[str, str]) -> str:
    """A sentence for the hands present, e.g. {'right': 'fist'} or {'right': 'open', 'left': 'pointing'}."""
    if not poses:
        raise ValueError("hand_prompt: no hand given")
    if len(poses) == 1:
        side, pose = next(iter(poses.items()))
        return f"A photo of a person's {side} hand {PHRASES[pose]}."
    return (f"A photo of two interacting hands: the right hand {PHRASES[poses['right']]} "
            f"and the left hand {PHRASES[poses['left']]}.")


#: Words of the synthetic prompts (`synthetic_prompt`): what the photo looks like beyond the hands' pose.
BACKGROUNDS = ("in front of a plain white wall", "in a kitchen", "outdoors in a park", "over a wooden table",
               "in an office", "on a city street", "in a living room", "against a dark background")
LIGHTING = ("soft daylight", "bright studio lighting", "warm indoor light", "overcast light", "evening light")
SKIN = ((0.75, "light"), (0.55, "medium"), (0.35, "brown"), (0.0, "dark brown"))


def skin_word(tone_rgb: np.ndarray) -> str:
    """'light', 'medium', 'brown' or 'dark brown' for a skin tone (3,) RGB in [0, 1] (by its luma)."""
    luma = float(np.dot(np.asarray(tone_rgb, dtype=np.float64), (0.299, 0.587, 0.114)))
    return next(word for threshold, word in SKIN if luma >= threshold)


def synthetic_prompt(rng: np.random.Generator, poses: dict[str, str], tone_rgb: np.ndarray) -> str:
    """A prompt for a synthetic sample: the hands' pose sentence (`hand_prompt`) then the skin, a background and
    the lighting, drawn from `rng`, e.g. "A photo of a person's right hand making a fist, medium skin, in a
    kitchen, soft daylight."."""
    sentence = hand_prompt(poses).rstrip(".")
    background, lighting = BACKGROUNDS[rng.integers(len(BACKGROUNDS))], LIGHTING[rng.integers(len(LIGHTING))]
    return f"{sentence}, {skin_word(tone_rgb)} skin, {background}, {lighting}."
