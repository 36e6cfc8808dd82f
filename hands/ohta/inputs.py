"""The one-shot input of OHTA: `<root>/img/<name>.jpg`, `<root>/mask/<name>.png`, `<root>/anno/<name>.pkl`.

Read as the release reads it: the hand pose gets the release's +0.01 (`pose_offset`), and the camera places the
hand with E·[Rh|Th] (the extrinsics and `Rh` folded into the global orientation and `Th`; identity in the
release's examples); the annotation's 3D box bounds the rays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hands.io.atomic import atomic_write_bytes
from hands.io.images import ImageReadError, decode_image_file, encode_image, read_image
from hands.ohta.creation import RELEASE_POSE_OFFSET, ViewGeometry, scaled_view
from hands.ohta.oneshot import DECIMETERS, OneShotAnnotation, read_oneshot_annotation, write_oneshot_annotation

MASK_THRESHOLD = 150  # the release binarises masks at > 150


@dataclass
class OneShotInput:
    """A loaded input: image (H, W, 3) uint8 RGB, hand mask (H, W) bool, the mask as read (H, W) uint8 (the
    release uses it as a soft matte), the view (camera + pose) and the annotation it came from."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    view: ViewGeometry
    annotation: OneShotAnnotation
    matte: np.ndarray | None = None


def annotation_for_view(view: ViewGeometry, pose_offset: float = RELEASE_POSE_OFFSET) -> OneShotAnnotation:
    """An annotation that places a hand as `view` does (camera, pose less the reading's `pose_offset`, shape,
    Th), so that reading it back gives the view; the joint fields, which creation does not read, are zeros and
    the crop box is the whole image."""
    zeros = lambda *shape: np.zeros(shape)  # noqa: E731
    H, W = view.size
    poses = view.pose.double().numpy().copy()
    poses[3:] -= pose_offset
    return OneShotAnnotation(intrinsics=view.K.double().numpy(), poses=poses,
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



def read_matte(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A hand mask as stored (H, W) uint8 from a grey or colour PNG (the largest channel), checked against the
    image size (H, W); the hand is where it exceeds MASK_THRESHOLD."""
    mask = decode_image_file(path, cv2.IMREAD_UNCHANGED, "mask", "the one-shot input needs <root>/mask/<name>.png")
    mask = mask[..., :3].max(axis=2) if mask.ndim == 3 else mask  # an alpha channel is not the hand
    if mask.shape != size:
        raise ImageReadError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]}, its image is {size[1]}x{size[0]}")
    if mask.dtype != np.uint8:
        mask = (mask.astype(np.float64) * (255.0 / np.iinfo(mask.dtype).max)).round().astype(np.uint8)
    return mask


def read_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """The hand mask (H, W) bool of a mask PNG (see `read_matte`)."""
    return read_matte(path, size) > MASK_THRESHOLD


def annotation_view(annotation: OneShotAnnotation, size: tuple[int, int], pose_offset: float = RELEASE_POSE_OFFSET) -> ViewGeometry:
    """The view of an annotation for an image of `size` (H, W): the camera-frame hand is E·[Rh|Th] applied to the
    posed hand (the release's apply_global_tfm_to_camera), which is folded here into the global orientation
    (R_E·R(Rh)·R(orient)) and Th (R_E·Th + t_E, the extrinsics' translation in the annotation's decimetres); the
    hand pose gets `pose_offset`; the annotation's box bounds the rays unless the fold rotates the hand's frame."""
    E = np.asarray(annotation.extrinsics, dtype=np.float64)
    turn = torch.from_numpy(E[:3, :3]) @ axis_angle_to_matrix(torch.from_numpy(np.asarray(annotation.Rh, np.float64)))
    pose = torch.as_tensor(annotation.poses, dtype=torch.float64).clone()
    pose[:3] = matrix_to_axis_angle(turn @ axis_angle_to_matrix(pose[:3]))
    pose[3:] += pose_offset
    Th = E[:3, :3] @ np.asarray(annotation.Th, np.float64) + E[:3, 3]
    box = None
    if torch.allclose(turn, torch.eye(3, dtype=torch.float64), atol=1e-9):
        box = torch.as_tensor(np.stack([annotation.bbox_min, annotation.bbox_max]), dtype=torch.float32)
    return ViewGeometry(torch.as_tensor(annotation.intrinsics, dtype=torch.float32),
                        torch.as_tensor(Th / DECIMETERS, dtype=torch.float32),
                        pose.float(), torch.as_tensor(annotation.shape, dtype=torch.float32), size, box)


def read_oneshot_input(image_path: str | Path, size: int | None = None, pose_offset: float = RELEASE_POSE_OFFSET) -> OneShotInput:
    """Read an input, optionally resized to `size`² (the camera follows; the mask bilinearly, as the release
    resizes masks). The annotation's pose is in the flat-hand convention with the global orientation in the
    camera frame; Th in decimetres; the view is `annotation_view`'s."""
    image_path, mask_path, anno_path = oneshot_paths(image_path)
    image = read_image(image_path)
    matte = read_matte(mask_path, image.shape[:2])
    mask = matte > MASK_THRESHOLD
    if not anno_path.is_file():
        raise FileNotFoundError(f"annotation not found: {anno_path} (the one-shot input needs <root>/anno/<name>.pkl; "
                                "`hands prepare ohta` writes it for InterHand2.6M frames)")
    annotation = read_oneshot_annotation(anno_path)
    if not mask.any():
        raise ValueError(f"mask {mask_path} marks no hand pixel")
    H, W = image.shape[:2]
    view = annotation_view(annotation, (H, W), pose_offset)
    if size is not None and (H, W) != (size, size):
        if H != W:
            raise ValueError(f"{image_path}: {W}x{H} is not square; resize it or keep its size (size=null)")
        view = scaled_view(view, size / H)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        matte = cv2.resize(matte, (size, size), interpolation=cv2.INTER_LINEAR)
        mask = matte > MASK_THRESHOLD
    return OneShotInput(image_path.stem, image, mask, view, annotation, matte)
