"""AttentionHand as the picture source of a synthetic dataset (`hands synth --source attentionhand`).

Each view's condition (the hands' mesh image in that camera, from `hands.data.synthetic`) and a prompt become
one generated image of the view's size, so the dataset's labels (MANO, joints, cameras) hold for it exactly.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from hands.attentionhand.components import StableDiffusionParts
from hands.attentionhand.pipeline import SamplingConfig, build_pipeline, sample_batch
from hands.attentionhand.prompts import describe_pose, hand_prompt, synthetic_prompt
from hands.data.synthetic.sources import ViewCondition

log = logging.getLogger(__name__)

HANDS_PLACEHOLDER = "{hands}"
"""In a prompt file's line, replaced by the view's pose sentence (e.g. "a person's right hand making a fist")."""


def read_prompt_file(path: str | Path) -> list[str]:
    """The non-empty lines of a prompt file (one prompt per line); ValueError naming the file when it has none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no prompt in it (one prompt per line)")
    return lines


class AttentionHandSource:
    """Generates one image per view with AttentionHand, `batch_size` views per sampling batch. The prompt is the
    view's pose sentence with skin, background and lighting words drawn from its seed, or line `image_id mod n` of
    `prompts` (with `{hands}` replaced by the pose sentence); the noise seed is the view's seed."""

    name = "attentionhand"

    def __init__(self, parts: StableDiffusionParts, sampling: SamplingConfig, prompts: list[str] | None = None,
                 batch_size: int = 4) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.parts, self.sampling, self.prompts, self.batch_size = parts, replace(sampling, num_samples=1), prompts, batch_size
        self.pipeline = build_pipeline(parts)

    def prompt(self, view: ViewCondition) -> str:
        poses = {hand.side: describe_pose(hand.hand_pose, hand.side, hand.joints) for hand in view.hands}
        if self.prompts:
            line = self.prompts[view.image_id % len(self.prompts)]
            return line.replace(HANDS_PLACEHOLDER, hand_prompt(poses).removeprefix("A photo of ").rstrip("."))
        return synthetic_prompt(np.random.default_rng(view.seed), poses, view.skin_tone)

    def images(self, views: list[ViewCondition]) -> list[tuple[np.ndarray, dict]]:
        made: list[tuple[np.ndarray, dict]] = []
        for start in range(0, len(views), self.batch_size):
            batch = views[start:start + self.batch_size]
            images, records = sample_batch(self.parts, [v.mesh_image for v in batch], [self.prompt(v) for v in batch],
                                           [v.seed % 2 ** 31 for v in batch], self.sampling, self.pipeline)
            for view, image, record in zip(batch, images, records):
                height, width = view.mask.shape
                if image.shape[:2] != (height, width):
                    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if width < image.shape[1]
                                       else cv2.INTER_CUBIC)
                made.append((image, record))
        return made
