"""ACR training samples from an index written by `hands prepare acr` (images, part maps, index.npz)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hands.acr.targets import CENTRE_MAP_SIZE, centre_heatmap
from hands.io.images import read_image
from hands.mano.joints import POSE_MIRROR


class ACRTrainingSet(Dataset):
    """Samples for input size S: image (3,S,S) in [0,1], parts (S/2,S/2) int64 (33 classes), centre_maps
    (2,S/8,S/8) (right, left), present (2,), camera (2,3), pose (2,48) flat, betas (2,10), joints_2d (42,2)
    normalised, joints_3d (42,3) meters (camera frame), joint_valid (42,).

    With `flip_prob`, samples are mirrored left-right at random: the image and part map flip, right and left swap
    (labels, centres, cameras, poses mirrored as (x, -y, -z) per joint, joints)."""

    def __init__(self, folder: str | Path, input_size: int = 512, rows: np.ndarray | None = None,
                 flip_prob: float = 0.0, seed: int = 0) -> None:
        self.folder = Path(folder)
        index_path = self.folder / "index.npz"
        if not index_path.is_file():
            raise FileNotFoundError(f"ACR training index not found: {index_path} (make it with `hands prepare acr`)")
        try:
            with np.load(index_path, allow_pickle=False) as data:
                self.index = {key: data[key] for key in data.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError(f"{index_path}: not an ACR training index ({str(error).splitlines()[0]})") from None
        missing = sorted({"name", "present", "camera", "pose", "betas", "centre", "radius", "joints_2d", "joints_3d",
                          "joint_valid"} - set(self.index))
        if missing:
            raise ValueError(f"{index_path}: not an ACR training index (no {', '.join(missing)})")
        self.rows = np.arange(len(self.index["name"])) if rows is None else np.asarray(rows)
        if input_size % 32:
            raise ValueError(f"input_size should be a multiple of 32, got {input_size}")
        self.input_size = input_size
        self.flip_prob = flip_prob
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        i = int(self.rows[item])
        name = str(self.index["name"][i])
        S = self.input_size
        image = read_image(self.folder / "images" / f"{name}.jpg")
        if image.shape[:2] != (S, S):
            image = cv2.resize(image, (S, S), interpolation=cv2.INTER_AREA)
        parts_path = self.folder / "parts" / f"{name}.png"
        parts = cv2.imread(str(parts_path), cv2.IMREAD_UNCHANGED)
        if parts is None:
            raise FileNotFoundError(f"part-label map missing or unreadable: {parts_path}")
        parts = cv2.resize(parts, (S // 2, S // 2), interpolation=cv2.INTER_NEAREST)
        as_tensor = lambda key, dtype=torch.float32: torch.as_tensor(self.index[key][i], dtype=dtype)  # noqa: E731
        sample = {
            "image": torch.from_numpy(image).permute(2, 0, 1).float() / 255.0,
            "parts": torch.from_numpy(parts.astype(np.int64)),
            "centre": as_tensor("centre"),
            "radius": as_tensor("radius", torch.int64),
            "present": as_tensor("present", torch.bool),
            "camera": as_tensor("camera"),
            "pose": as_tensor("pose"),
            "betas": as_tensor("betas"),
            "joints_2d": as_tensor("joints_2d"),
            "joints_3d": as_tensor("joints_3d"),
            "joint_valid": as_tensor("joint_valid", torch.bool),
        }
        if self.flip_prob and self.rng.uniform() < self.flip_prob:
            sample = mirror_sample(sample)
        map_size = S // 8
        radii = np.maximum(1, np.round(sample["radius"].numpy() * map_size / CENTRE_MAP_SIZE)).astype(int)
        sample["centre_maps"] = torch.from_numpy(np.stack([
            centre_heatmap(sample["centre"][s].numpy(), int(radii[s]), map_size) if sample["present"][s]
            else np.zeros((map_size, map_size), np.float32) for s in range(2)]))
        return sample


def mirror_sample(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same sample seen in a mirror: left-right flip of the images, right and left hands swapped."""
    out = dict(sample)
    out["image"] = sample["image"].flip(-1)
    parts = sample["parts"].flip(-1)
    out["parts"] = torch.where(parts > 16, parts - 16, torch.where(parts > 0, parts + 16, parts))
    out["radius"] = sample["radius"][[1, 0]]
    centre = sample["centre"][[1, 0]].clone()
    centre[:, 0] = torch.where(centre[:, 0] > -2, -centre[:, 0], centre[:, 0])  # -2 marks an absent hand
    out["centre"] = centre
    out["present"] = sample["present"][[1, 0]]
    camera = sample["camera"][[1, 0]].clone()
    camera[:, 1] = -camera[:, 1]
    out["camera"] = camera
    out["pose"] = (sample["pose"][[1, 0]].reshape(2, 16, 3) * torch.from_numpy(POSE_MIRROR).float()).reshape(2, 48)
    out["betas"] = sample["betas"][[1, 0]]
    swap = torch.cat([torch.arange(21, 42), torch.arange(0, 21)])
    out["joints_2d"] = sample["joints_2d"][swap] * torch.tensor([-1.0, 1.0])
    out["joints_3d"] = sample["joints_3d"][swap] * torch.tensor([-1.0, 1.0, 1.0])
    out["joint_valid"] = sample["joint_valid"][swap]
    return out
