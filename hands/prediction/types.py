"""One hand in one image, whatever method found it, and the interface of every method that finds hands.

Conventions (../shared/DESIGN.md): meters, OpenCV camera axes (x right, y down, z forward), pixels of the
original image with pixel centres at integer coordinates (the `K` convention of `hands.geometry.cameras`), MANO
pose in the flat-hand convention, joints in the canonical order of `hands.mano.joints`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from hands.io.atomic import atomic_path

Side = Literal["right", "left"]
#: The two hand sides, right first (the order of 42-joint arrays and two-hand outputs).
SIDES: tuple[Side, ...] = ("right", "left")

_ARRAYS = {"global_orient": (3,), "hand_pose": (45,), "betas": (None,), "transl": (3,), "K": (3, 3),
           "vertices": (None, 3), "joints": (21, 3), "keypoints_2d": (21, 2)}


@dataclass
class HandPrediction:
    """A hand in an image, in the camera frame of that image.

    `layer(global_orient, hand_pose, betas, transl)` of the side's flat-convention MANO layer gives `vertices`
    and `joints`; projecting `joints` with `K` gives `keypoints_2d` up to the method's own 2D estimate (ACR's
    weak-perspective joints, the fit's reprojection)."""

    side: Side
    global_orient: np.ndarray
    """(3,) axis-angle of the wrist, camera frame."""
    hand_pose: np.ndarray
    """(45,) axis-angle of the 15 finger joints, flat-hand convention (zero = flat hand)."""
    betas: np.ndarray
    """(10,) MANO shape coefficients."""
    transl: np.ndarray
    """(3,) meters, the MANO layer's translation that puts the hand in the camera frame."""
    K: np.ndarray
    """(3, 3) intrinsics of the original image, pixels (centres at integers)."""
    vertices: np.ndarray
    """(778, 3) meters, camera frame."""
    joints: np.ndarray
    """(21, 3) meters, camera frame, canonical order."""
    keypoints_2d: np.ndarray
    """(21, 2) pixels of the original image, canonical order."""
    score: float = 1.0
    """The method's confidence in [0, 1] (ACR: centre-map peak; fit: the detector's handedness score)."""
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """Method-specific arrays, saved with the hand (e.g. `detected_keypoints_2d` (21, 2), `weak_camera` (3,))."""

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be 'right' or 'left', got {self.side!r}")
        for name, shape in _ARRAYS.items():
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, value.shape)):
                raise ValueError(f"{name}: expected shape {shape}, got {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{name}: holds NaN or infinite values")
            setattr(self, name, value)
        self.score = float(self.score)
        self.extras = {key: np.asarray(value) for key, value in self.extras.items()}

    @property
    def reprojection_error(self) -> float | None:
        """Mean distance (pixels) between `keypoints_2d` and the detected keypoints, when the method had any."""
        detected = self.extras.get("detected_keypoints_2d")
        if detected is None:
            return None
        return float(np.linalg.norm(self.keypoints_2d - detected, axis=-1).mean())

    def to_dict(self) -> dict[str, Any]:
        """Plain arrays and values: side (str), score (float), the arrays, and `extra_<name>` per extra."""
        data: dict[str, Any] = {"side": self.side, "score": self.score}
        data.update({name: getattr(self, name) for name in _ARRAYS})
        data.update({f"extra_{key}": value for key, value in self.extras.items()})
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HandPrediction":
        """The inverse of `to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)} - {"extras"}
        unknown = [k for k in data if k not in known and not k.startswith("extra_")]
        if unknown:
            raise ValueError(f"unknown HandPrediction fields {unknown}")
        missing = [k for k in known - {"score"} if k not in data]
        if missing:
            raise ValueError(f"missing HandPrediction fields {sorted(missing)}")
        extras = {k[len("extra_"):]: v for k, v in data.items() if k.startswith("extra_")}
        values = {k: data[k] for k in known if k in data}
        values["side"] = str(np.asarray(values["side"]))
        if "score" in values:
            values["score"] = float(np.asarray(values["score"]))
        return cls(**values, extras=extras)


def save_predictions(path: str | Path, hands: list[HandPrediction], overwrite: bool = False) -> Path:
    """The hands of one image as one `.npz` (atomic): `sides` (N,), and `<side>_<field>` per hand (at most one
    hand per side, as ACR and the fit front end give)."""
    sides = [hand.side for hand in hands]
    if len(set(sides)) != len(sides):
        raise ValueError(f"one hand per side per image, got sides {sides}")
    arrays: dict[str, np.ndarray] = {"sides": np.array(sides, dtype="<U5")}
    for hand in hands:
        arrays.update({f"{hand.side}_{key}": np.asarray(value) for key, value in hand.to_dict().items() if key != "side"})
    with atomic_path(path, overwrite) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, **arrays)
    return Path(path)


def load_predictions(path: str | Path) -> list[HandPrediction]:
    """The hands written by `save_predictions`; a missing or corrupt file is an error naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a predictions .npz ({error})") from None
    if "sides" not in arrays:
        raise ValueError(f"{path}: not a predictions .npz (no 'sides' array)")
    hands = []
    for side in arrays["sides"].tolist():
        prefix = f"{side}_"
        fields_ = {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}
        try:
            hands.append(HandPrediction.from_dict({"side": side, **fields_}))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    return hands


@dataclass
class PredictorConfig:
    """Settings every predictor has (its own config adds the method's)."""

    temporal: bool = False
    """Smooth the hands over consecutive frames (videos, folders, webcams)."""
    smooth_coeff: float = 4.0
    """One-Euro minimum cutoff of the pose filters (ACR's setting)."""
    device: str = "auto"
    """auto (CUDA when available), cpu or cuda[:N]."""
    mano_dir: str | None = None
    """Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (default: $HANDS_MANO_DIR, $HANDS_HOME/mano, else the built-in hand)."""


@runtime_checkable
class HandPredictor(Protocol):
    """Anything that finds hands in images. Optional: `predict_sequence(frames, K)` -> one list per frame, for
    predictors that solve consecutive frames together, with `sequence_length` frames per call;
    `predict_stream(frames)` -> an iterator of one list per frame, in order, for predictors that work on a frame
    ahead (the frame runner uses it for videos and webcams); `reset()` to forget temporal state; `close()` to free
    resources."""

    faces: dict[str, np.ndarray]
    """Side -> (F, 3) triangle indices of the predicted meshes."""

    def predict(self, image: np.ndarray, K: np.ndarray | None = None) -> list[HandPrediction]:
        """The hands in a uint8 RGB image (H, W, 3); K (3, 3) the camera when known, else the method's default."""
        ...
