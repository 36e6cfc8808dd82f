"""InterHand-format samples with their MANO hands: what the methods' exporters (`hands prepare acr|ohta|attentionhand`)
read from a dataset (real or synthetic)."""

from __future__ import annotations

import torch
from tqdm import tqdm

from hands.data.interhand.dataset import InterHandDataset, mano_vector_split
from hands.mano.layer import ManoOutput
from hands.mano.model_file import SIDES


def sample_hands(sample: dict, layers: dict) -> dict[str, tuple[dict[str, torch.Tensor], ManoOutput]]:
    """MANO parameters and outputs (crop camera frame, meters) of the hands a dataset sample has fits for."""
    hands = {}
    for side in SIDES:
        if bool(sample[f"mano_valid_{side}"]):
            layer = layers[side]
            params = {k: v.to(layer.v_template)[None] for k, v in mano_vector_split(sample[f"mano_{side}"]).items()}
            with torch.no_grad():
                hands[side] = (params, layer(params["global_orient"], params["hand_pose"], params["betas"], params["transl"]))
    return hands


def samples_with_hands(dataset: InterHandDataset, limit: int | None, description: str):
    """(sample, hands, name) for the first `limit` samples that have at least one MANO fit, with a progress bar."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(count), desc=description, unit="img"):
        sample = dataset[i]
        hands = sample_hands(sample, dataset.layers)
        if hands:
            yield sample, hands, f"{int(sample['annotation_id']):012d}"
