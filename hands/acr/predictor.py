"""ACR inference on whole images: pad to a square, resize, run the network, decode hands, map back to the image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from hands.acr.model import ACRNet
from hands.acr.postprocess import HandDetection, PostprocessConfig, decode, detect
from hands.mano import build_mano


@dataclass
class Letterbox:
    """How an image was placed in the square network input: input = (original + offset) * scale, in ACR's
    pixel convention (continuous coordinates with the origin at the top-left corner of the first pixel)."""

    scale: float
    offset: np.ndarray
    input_size: int

    def to_original(self, pixels: np.ndarray) -> np.ndarray:
        """Input pixels (...,2) -> original-image pixels, as the release's `pj2d_org` (acr/utils.py)."""
        return np.asarray(pixels) / self.scale - self.offset


RELEASE_PAD_VALUE = 255
"""The release pads with white (acr/utils.py image_pad_white_bg, pad_cval=255)."""


def letterbox(image: np.ndarray, size: int = 512, pad_value: int = RELEASE_PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """Pad a uint8 RGB image (H,W,3) to a centred square with `pad_value` (the release's white by default; the
    odd pixel goes to the right/bottom as in imgaug) and resize it to size x size with bicubic interpolation."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    if not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must be in [0, 255], got {pad_value}")
    h, w = image.shape[:2]
    side = max(h, w)
    offset = np.array([(side - w) // 2, (side - h) // 2], dtype=np.float64)
    square = np.full((side, side, 3), pad_value, dtype=np.uint8)
    square[int(offset[1]):int(offset[1]) + h, int(offset[0]):int(offset[0]) + w] = image
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_CUBIC)
    return resized, Letterbox(size / side, offset, size)


class ACRPredictor:
    """Image in, hands out: `predict(rgb)` -> (hands, letterbox); `letterbox.to_original` maps their 2D joints."""

    def __init__(self, model: ACRNet, input_size: int = 512, config: PostprocessConfig | None = None,
                 mano_dir: str | None = None, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.input_size = input_size
        self.config = config or PostprocessConfig()
        self.layers = {side: build_mano(side, mano_dir, pose_convention="flat", device=self.device) for side in ("right", "left")}

    @torch.no_grad()
    def predict(self, image_rgb: np.ndarray) -> tuple[list[HandDetection], Letterbox]:
        """Hands found in one uint8 RGB image, and the letterbox mapping input pixels to the original image."""
        square, box = letterbox(image_rgb, self.input_size, self.config.pad_value)
        tensor = torch.from_numpy(square).permute(2, 0, 1)[None].float().div(255).to(self.device)
        maps = self.model(tensor)
        hands = decode(maps, detect(maps, self.config), self.layers, self.input_size, self.config)
        return hands, box
