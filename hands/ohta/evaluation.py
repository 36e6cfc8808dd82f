"""OHTA's evaluation protocol: render the avatar at every test frame's camera and pose, compare with the frame
masked to the hand on black, over the full image (background included, as the release's `progress`): PSNR,
SSIM (11x11 Gaussian window, σ 1.5, no padding) and LPIPS (VGG, when its weights are present). Also `psnr_hand`,
PSNR over the frame's hand mask only: appearance without the background (not in the release)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hands.eval.image_metrics import LPIPS, MissingWeightsError, psnr, ssim
from hands.ohta.animation import render_view
from hands.ohta.avatar import HandAvatar
from hands.ohta.creation import CreationConfig
from hands.ohta.inputs import read_oneshot_input

log = logging.getLogger(__name__)


def evaluation_frames(folder: str | Path) -> list[Path]:
    """The images of a folder of one-shot inputs (img/*.jpg|png with mask/ and anno/ beside), sorted."""
    folder = Path(folder)
    images = sorted(p for p in (folder / "img").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise FileNotFoundError(f"no test frames in {folder}/img (make them with `hands prepare ohta` --split test)")
    return images


def image_metrics(rendered: np.ndarray, target: np.ndarray, lpips: LPIPS | None,
                  mask: np.ndarray | None = None) -> dict[str, float]:
    """PSNR, SSIM and (optionally) LPIPS of two uint8 RGB images (H, W, 3); with a mask (H, W), `psnr_hand`."""
    a = torch.from_numpy(rendered).permute(2, 0, 1)[None].double() / 255.0
    b = torch.from_numpy(target).permute(2, 0, 1)[None].double() / 255.0
    scores = {"psnr": float(psnr(a, b)), "ssim": float(ssim(a, b))}
    if mask is not None and mask.any():
        inside = torch.from_numpy(np.asarray(mask, dtype=bool))
        scores["psnr_hand"] = float(psnr(a[0][:, inside][None, ..., None], b[0][:, inside][None, ..., None]))
    if lpips is not None:
        with torch.no_grad():
            scores["lpips"] = float(lpips(a.float(), b.float()))
    return scores


def evaluate_avatar(avatar: HandAvatar, frames: list[Path], size: int | None = 256, lpips_weights: str | None = None,
                    config: CreationConfig | None = None) -> dict:
    """Per-frame and mean metrics of the avatar on test frames (one-shot inputs)."""
    lpips = None
    try:
        lpips = LPIPS(lpips_weights, net="vgg")
    except MissingWeightsError as error:
        log.warning("LPIPS not reported: %s", error)
    results = []
    for path in tqdm(frames, desc="evaluate", unit="frame"):
        frame = read_oneshot_input(path, size)
        target = (frame.image * frame.mask[..., None]).astype(np.uint8)
        rendered = render_view(avatar, frame.view, config=config)
        results.append({"frame": frame.name, **image_metrics(rendered, target, lpips, frame.mask)})
    keys = [k for k in ("psnr", "ssim", "lpips", "psnr_hand") if all(k in r for r in results)]
    return {"frames": results, "mean": {k: float(np.mean([r[k] for r in results])) for k in keys}, "count": len(results)}
