"""The one-shot input of OHTA: `<root>/img/<name>.jpg`, `<root>/mask/<name>.png`, `<root>/anno/<name>.pkl`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hands.data.interhand.dataset import ImageReadError, read_image
from hands.data.ohta_oneshot import OneShotAnnotation, read_oneshot_annotation
from hands.ohta.creation import ViewGeometry, scaled_view

MASK_THRESHOLD = 150  # the release binarises masks at > 150


@dataclass
class OneShotInput:
    """A loaded input: image (H, W, 3) uint8 RGB, hand mask (H, W) bool, the view (camera + pose) and the
    annotation it came from."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    view: ViewGeometry
    annotation: OneShotAnnotation


def oneshot_paths(image_path: str | Path) -> tuple[Path, Path, Path]:
    """The image, mask and annotation paths of an input given by its image (`<root>/img/<name>.<ext>`)."""
    image_path = Path(image_path)
    root, name = image_path.parent.parent, image_path.stem
    return image_path, root / "mask" / f"{name}.png", root / "anno" / f"{name}.pkl"


def read_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A hand mask (H, W) bool from a grey or colour PNG (any channel above the threshold), checked against the
    image size (H, W)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"mask not found: {path} (the one-shot input needs <root>/mask/<name>.png)")
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ImageReadError(f"could not decode mask {path} (corrupt or not an image)")
    mask = mask.max(axis=2) if mask.ndim == 3 else mask
    if mask.shape != size:
        raise ImageReadError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]}, its image is {size[1]}x{size[0]}")
    return mask > MASK_THRESHOLD


def read_oneshot_input(image_path: str | Path, size: int | None = None) -> OneShotInput:
    """Read an input, optionally resized to `size`² (the camera follows). The annotation's pose is in the
    flat-hand convention with the global orientation in the camera frame; Th in decimetres."""
    image_path, mask_path, anno_path = oneshot_paths(image_path)
    image = read_image(image_path)
    mask = read_mask(mask_path, image.shape[:2])
    if not anno_path.is_file():
        raise FileNotFoundError(f"annotation not found: {anno_path} (the one-shot input needs <root>/anno/<name>.pkl; "
                                "scripts/prepare.py ohta writes it for InterHand2.6M frames)")
    annotation = read_oneshot_annotation(anno_path)
    if not mask.any():
        raise ValueError(f"mask {mask_path} marks no hand pixel")
    H, W = image.shape[:2]
    view = ViewGeometry(torch.as_tensor(annotation.intrinsics, dtype=torch.float32),
                        torch.as_tensor(annotation.Th, dtype=torch.float32),
                        torch.as_tensor(annotation.poses, dtype=torch.float32),
                        torch.as_tensor(annotation.shape, dtype=torch.float32), (H, W))
    if size is not None and (H, W) != (size, size):
        if H != W:
            raise ValueError(f"{image_path}: {W}x{H} is not square; resize it or keep its size (size=null)")
        view = scaled_view(view, size / H)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
    return OneShotInput(image_path.stem, image, mask, view, annotation)
