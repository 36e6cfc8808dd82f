"""ACR inference on whole images: pad to a square, resize, run the network, decode hands, map them back to the
image as `HandPrediction`s."""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from hands.acr.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_official_checkpoint, read_failure
from hands.acr.model import ACRNet, ACRNetConfig
from hands.acr.postprocess import CENTRE, HandDetection, PostprocessConfig, decode, detect, input_intrinsics, input_pixels, place_hand
from hands.acr.runtime import Runtime, build_runtime
from hands.geometry.pnp import solve_translation, solve_translation_pnp
from hands.geometry.smoothing import HandSmoother
from hands.io.home import cache_dir
from hands.mano import build_mano
from hands.prediction.types import SIDES, HandPrediction, PredictorConfig
from hands.utils.device import resolve_device


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


def original_camera(box: Letterbox, focal: float) -> np.ndarray:
    """Intrinsics (3,3) in original-image pixels of the pinhole camera the hands were placed for, with pixel
    centres at integer coordinates (the project's convention; ACR's own coordinates are 0.5 px larger)."""
    K = input_intrinsics(box.input_size, focal)
    f = K[0, 0] / box.scale
    cx, cy = box.to_original(K[:2, 2]) - 0.5
    return np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def load_acr_model(path: str | Path) -> ACRNet:
    """ACRNet with the official `wild.pkl`, or with a checkpoint of our trainer (`.ckpt`: weights under `model.`,
    layer widths read from the tensor shapes)."""
    path = Path(path)
    if path.suffix != ".ckpt":
        model = ACRNet()
        load_official_checkpoint(model, path)
        return model
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        weights = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
        config = ACRNetConfig(backbone_width=weights["backbone.transition1.0.0.weight"].shape[0],
                              head_width=weights["right_head.params.0.0.weight"].shape[0],
                              pose_width=weights["parts.pose_features.0.weight"].shape[0],
                              shape_width=weights["parts.shape_features.0.weight"].shape[0])
        model = ACRNet(config)
        model.load_state_dict(weights)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{path}: not a readable ACR checkpoint of `hands train` ({read_failure(error)})") from None
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        raise CheckpointError(f"{path}: not an ACR checkpoint of `hands train` (no {error} in its state_dict)") from None
    return model


@dataclass
class ACRPredictorConfig(PredictorConfig):
    """ACR on whole images (the release's demo settings by default; `temporal` is the release's -t)."""

    checkpoint: str = str(DEFAULT_CHECKPOINT)
    """The official wild.pkl, or a .ckpt written by `hands train`."""
    threshold: float = 0.35
    """Minimum centre-map score of a hand (the release's centermap_conf_thresh)."""
    phantom_guard: bool = False
    """Drop sides without part-segmentation support (not in the release; docs/deviations.md)."""
    placement: Literal["pnp", "closed_form"] = "pnp"
    """Mesh translation by the release's RANSAC PnP, or the exact weak-perspective match."""
    pad_value: int = 255
    """Letterbox padding (the release's 255 = white)."""
    input_size: int = 512
    """Side of the square network input, pixels."""
    runtime: Runtime = "auto"
    """How the network runs (`hands.acr.runtime`): auto = ONNX Runtime on the CPU when installed (outputs equal to
    eager within 1e-4, faster; bench/acr.py), eager on CUDA."""


class ACRPredictor:
    """Image in, hands out. `predict(rgb, K=None)` -> `HandPrediction`s in the image's pixels; `predict_detections`
    gives the network-level `HandDetection`s in input pixels and the letterbox."""

    def __init__(self, model: ACRNet, input_size: int = 512, config: PostprocessConfig | None = None,
                 mano_dir: str | None = None, device: torch.device | str = "cpu", temporal: bool = False,
                 smooth_coeff: float = 4.0, runtime: Runtime = "eager") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.runtime = runtime
        self._networks: dict[int, object] = {}
        self.input_size = input_size
        self.config = config or PostprocessConfig()
        self.layers = {side: build_mano(side, mano_dir, pose_convention="flat", device=self.device) for side in SIDES}
        self.faces = {side: layer.faces.cpu().numpy() for side, layer in self.layers.items()}
        self.temporal, self.smooth_coeff = temporal, smooth_coeff
        self.reset()

    @classmethod
    def from_config(cls, config: ACRPredictorConfig) -> "ACRPredictor":
        """The predictor of a config; a missing or unreadable checkpoint raises `CheckpointError` naming it."""
        post = PostprocessConfig(threshold=config.threshold, phantom_guard=config.phantom_guard,
                                 placement=config.placement, pad_value=config.pad_value)
        return cls(load_acr_model(config.checkpoint), config.input_size, post, config.mano_dir,
                   resolve_device(config.device), config.temporal, config.smooth_coeff, config.runtime)

    def network(self, input_size: int):
        """The network as `runtime` runs it at this input size (built on first use)."""
        if input_size not in self._networks:
            self._networks[input_size] = build_runtime(self.model, self.runtime, input_size, self.device,
                                                       cache_dir("acr_onnx"))
        return self._networks[input_size]

    def reset(self) -> None:
        """Forget the previous frames (temporal smoothing starts again)."""
        self.smoothers = {side: HandSmoother(self.smooth_coeff) for side in SIDES}

    @torch.no_grad()
    def predict_detections(self, image_rgb: np.ndarray) -> tuple[list[HandDetection], Letterbox]:
        """Hands found in one uint8 RGB image (smoothed with `temporal`), and the letterbox mapping input pixels to
        the original image."""
        square, box = letterbox(image_rgb, self.input_size, self.config.pad_value)
        tensor = torch.from_numpy(square).permute(2, 0, 1)[None].float().div(255).to(self.device)
        maps = self.network(self.input_size)(tensor)
        hands = decode(maps, detect(maps, self.config), self.layers, self.input_size, self.config)
        if self.temporal:
            hands = [self.smooth(hand) for hand in hands]
        return hands, box

    def predict(self, image: np.ndarray, K: np.ndarray | None = None) -> list[HandPrediction]:
        """The hands in a uint8 RGB image (H, W, 3). Without K they are placed for ACR's own camera (focal 1265 px
        at 512, scaled to the image); with K (3, 3) they are placed by PnP of their 2D joints through K."""
        hands, box = self.predict_detections(image)
        return [self.to_prediction(hand, box, K) for hand in hands]

    def to_prediction(self, hand: HandDetection, box: Letterbox, K: np.ndarray | None = None) -> HandPrediction:
        """A decoded hand in the original image's pixels (pixel centres at integers) and camera frame."""
        numpy = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
        keypoints = box.to_original(numpy(hand.joints_2d)) - 0.5
        joints = numpy(hand.joints)
        if K is None:
            K, translation = original_camera(box, self.config.focal), numpy(hand.translation)
        else:
            K = np.asarray(K, dtype=np.float64)
            translation = solve_translation_pnp(joints, keypoints, K)
            if translation is None:
                translation = solve_translation(torch.as_tensor(joints)[None], torch.as_tensor(keypoints)[None],
                                                torch.as_tensor(K)[None])[0].numpy()
        return HandPrediction(hand.side, numpy(hand.global_orient), numpy(hand.hand_pose), numpy(hand.betas),
                              translation - numpy(hand.root), K, numpy(hand.vertices) + translation, joints + translation,
                              keypoints, hand.score, {"weak_camera": numpy(hand.camera), "centre_cell": np.array(hand.cell)})

    def smooth(self, hand: HandDetection) -> HandDetection:
        """The hand with One-Euro-filtered parameters, its mesh recomputed and placed again from its (unfiltered)
        weak-perspective camera, as the release's -t does."""
        orient, pose, betas = self.smoothers[hand.side](hand.global_orient, hand.hand_pose, hand.betas)
        layer = self.layers[hand.side]
        out = layer(orient[None].to(layer.v_template), pose[None].to(layer.v_template), betas[None].to(layer.v_template))
        root = out.joints[:, CENTRE:CENTRE + 1]
        hand.global_orient, hand.hand_pose, hand.betas = orient, pose, betas
        hand.vertices, hand.joints, hand.root = (out.vertices - root)[0], (out.joints - root)[0], root[0, 0]
        camera = hand.camera.to(hand.joints)
        hand.joints_2d = input_pixels(camera[0] * hand.joints[:, :2] + camera[1:3], self.input_size)
        hand.translation = place_hand(camera, hand.joints, hand.joints_2d, self.input_size, self.config)
        return hand
