"""InterHand-format samples with their MANO hands: what the methods' exporters (`hands prepare acr|ohta|attentionhand`)
read from a dataset (real or synthetic)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from hands.data.interhand.dataset import InterHandDataset, mano_vector_split
from hands.io.atomic import file_lock
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


@dataclass(frozen=True)
class Shard:
    """This process's share of an export: every `count`-th sample from `rank` (RANK / WORLD_SIZE of a launcher,
    or `--shard rank/count`). Each shard writes its part of the manifest; the last one to finish merges them."""

    rank: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.count:
            raise ValueError(f"shard: need 0 <= rank < count, got {self.rank}/{self.count}")

    @classmethod
    def parse(cls, text: str | None) -> "Shard":
        """'2/8' -> Shard(2, 8); None -> from $RANK / $WORLD_SIZE (one shard without them)."""
        if text is None:
            return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
        try:
            rank, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard: expected RANK/COUNT such as 0/4, got {text!r}") from None
        return cls(rank, count)

    def part(self, final: Path) -> Path:
        """Where this shard writes its part of the manifest `final` (the manifest itself for one shard)."""
        return final if self.count == 1 else final.with_name(f"{final.stem}.shard{self.rank}of{self.count}{final.suffix}")

    def finish(self, final: Path, merge: Callable[[list[Path], Path], None], overwrite: bool = False) -> Path:
        """After this shard's part is written: when every part exists, merge them into `final` (once, under a lock)
        and delete the parts. Returns `final`, or this shard's part while others are still running."""
        if self.count == 1:
            return final
        parts = [Shard(rank, self.count).part(final) for rank in range(self.count)]
        lock = final.with_name(f".{final.name}.lock")
        with file_lock(lock):
            if not all(p.is_file() for p in parts):
                return self.part(final)
            merge(parts, final)
            for part in parts:
                part.unlink()
            lock.unlink()  # the parts are gone: a later shard finds nothing to merge
        return final


ONE_SHARD = Shard()
"""The whole export in one process."""


def samples_with_hands(dataset: InterHandDataset, limit: int | None, description: str, shard: Shard | None = None):
    """(sample, hands, name) for this shard's share of the first `limit` samples that have at least one MANO fit,
    with a progress bar."""
    shard = shard or ONE_SHARD
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(shard.rank, count, shard.count), desc=description, unit="img"):
        sample = dataset[i]
        hands = sample_hands(sample, dataset.layers)
        if hands:
            yield sample, hands, f"{int(sample['annotation_id']):012d}"
