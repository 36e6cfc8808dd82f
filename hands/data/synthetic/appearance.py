"""Appearance of synthetic images: skin tones, lighting and procedural backgrounds."""

from __future__ import annotations

import cv2
import numpy as np

from hands.render.shading import MeshImageStyle

# Linear-RGB albedos from light to dark skin (rendered with gamma 1/2.2, as in pyrender).
SKIN_TONES = (
    (0.80, 0.56, 0.46), (0.72, 0.48, 0.38), (0.62, 0.40, 0.30), (0.50, 0.31, 0.22),
    (0.38, 0.22, 0.15), (0.26, 0.15, 0.10), (0.17, 0.10, 0.07),
)


def sample_skin_tone(rng: np.random.Generator) -> tuple[float, float, float]:
    """A skin albedo: one of SKIN_TONES with a small random tint."""
    base = np.asarray(SKIN_TONES[rng.integers(len(SKIN_TONES))])
    return tuple(float(c) for c in np.clip(base * rng.uniform(0.9, 1.1, size=3), 0.02, 1.0))


def sample_style(rng: np.random.Generator, skin: tuple[float, float, float]) -> MeshImageStyle:
    """Smooth-shaded skin lit by one to three directional lights from the camera's side, plus ambient light."""
    lights = []
    for _ in range(rng.integers(1, 4)):
        direction = rng.normal(size=3)
        direction[2] = abs(direction[2]) + 0.5  # travelling away from the camera: the visible side is lit
        lights.append((*(direction / np.linalg.norm(direction)), float(rng.uniform(0.8, 2.2))))
    return MeshImageStyle(base_color=skin, ambient=float(rng.uniform(0.15, 0.45)), lights=tuple(lights),
                          roughness=float(rng.uniform(0.5, 1.0)), smooth=True)


def procedural_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered uint8 RGB background (H,W,3): a smooth colour field, random shapes and sensor noise."""
    coarse = rng.uniform(0, 255, size=(rng.integers(2, 6), rng.integers(2, 6), 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(3, 12)):
        overlay = image.copy()
        colour = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(max(4, min(height, width) // 20), max(8, min(height, width) // 3)))
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(overlay, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), colour, -1)
        elif kind == 1:
            cv2.circle(overlay, (x, y), size // 2, colour, -1)
        else:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(overlay, (x, y), end, colour, int(rng.integers(1, max(2, size // 4))))
        alpha = float(rng.uniform(0.3, 1.0))
        image = cv2.addWeighted(overlay, alpha, image, 1 - alpha, 0)
    grey = image.mean(axis=2, keepdims=True)
    saturation = float(rng.uniform(0.15, 0.7))  # indoor scenes are far less colourful than random RGB
    image = grey + saturation * (image - grey)
    image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 2.5)))
    image += rng.normal(0, rng.uniform(1, 6), size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)
