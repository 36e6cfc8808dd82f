"""The one-shot input of OHTA: `<root>/img/<name>.jpg`, `<root>/mask/<name>.png`, `<root>/anno/<name>.pkl`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hands.data.exports import encode_image
from hands.data.interhand.dataset import ImageReadError, read_image
from hands.data.ohta_oneshot import OneShotAnnotation, read_oneshot_annotation, write_oneshot_annotation
from hands.io.atomic import atomic_write_bytes
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


def annotation_for_view(view: ViewGeometry) -> OneShotAnnotation:
    """An annotation that places a hand as `view` does (camera, pose, shape, Th); the joint fields, which creation
    does not read, are zeros and the crop box is the whole image."""
    zeros = lambda *shape: np.zeros(shape)  # noqa: E731
    H, W = view.size
    return OneShotAnnotation(intrinsics=view.K.double().numpy(), poses=view.pose.double().numpy(),
                             shape=view.betas.double().numpy(), Th=view.Th.double().numpy(), joints=zeros(21, 3),
                             tpose_joints=zeros(21, 3), bbox_min=zeros(3), bbox_max=zeros(3), joint_img=zeros(21, 2),
                             joint_cam=zeros(21, 3), joint_valid=np.ones((21, 1)), bbox2d=np.array([0.0, 0.0, W, H]))


def write_oneshot_input(root: str | Path, name: str, image: np.ndarray, mask: np.ndarray, annotation: OneShotAnnotation,
                        overwrite: bool = False) -> Path:
    """Write `<root>/img/<name>.png`, `<root>/mask/<name>.png` and `<root>/anno/<name>.pkl`; returns the image path."""
    root = Path(root)
    image_path = atomic_write_bytes(root / "img" / f"{name}.png", encode_image(image, ".png"), overwrite)
    atomic_write_bytes(root / "mask" / f"{name}.png", encode_image(mask.astype(np.uint8) * 255, ".png"), overwrite)
    write_oneshot_annotation(annotation, root / "anno" / f"{name}.pkl", overwrite)
    return image_path


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
