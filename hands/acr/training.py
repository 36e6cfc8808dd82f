"""Training ACR (never released upstream): a LightningModule, its config, and held-out MPJPE."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, Dataset

from hands.acr.checkpoint import load_official_checkpoint
from hands.acr.data import ACRTrainingSet
from hands.acr.losses import SIDES, LossWeights, acr_losses, ground_truth_hand, params_with_prior
from hands.acr.model import ACRNet, ACRNetConfig
from hands.acr.postprocess import decode_hand
from hands.mano import build_mano


@dataclass
class ACRTrainConfig:
    """Data, model and optimisation of an ACR training run."""

    data: str = "data/acr_train"
    """Folder written by `hands prepare acr` (images/, parts/, index.npz)."""
    val_data: str | None = None
    """A separate validation folder; without it the last `val_fraction` of `data` is held out."""
    extra_data: list[str] = field(default_factory=list)
    """More `hands prepare acr` folders trained on beside `data`, whole (e.g. a `hands synth --source
    attentionhand` set beside InterHand2.6M); validation stays on `val_data` or `data`'s held-out rows."""
    val_fraction: float = 0.1
    input_size: int = 512
    flip_prob: float = 0.5
    """Probability of a left-right mirror (swaps right and left hands)."""
    batch_size: int = 8
    num_workers: int = 2
    lr: float = 3e-4
    weight_decay: float = 1e-6
    net: ACRNetConfig = field(default_factory=ACRNetConfig)
    losses: LossWeights = field(default_factory=LossWeights)
    train_prior: bool = False
    """Train the cross-hand prior heads: two-hand samples read their parameters with the prior added, as inference
    does. Off, the heads keep their initial (or wild.pkl's) weights; on a 300-step tiny run from random weights it
    left held-out MPJPE at 86 mm against 52 mm off (docs/deviations.md)."""
    init_checkpoint: str | None = None
    """Official wild.pkl to start from (None: random initialisation)."""
    mano_dir: str | None = None
    seed: int = 0


def split_rows(count: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row indices: the last `val_fraction` of the rows (at least one) are held out."""
    held_out = max(1, int(round(count * val_fraction)))
    return np.arange(count - held_out), np.arange(count - held_out, count)


def root_relative_mpjpe(module: "ACRModule", batch: dict) -> tuple[float, int]:
    """Sum of per-hand MPJPE (mm, middle-MCP aligned, valid joints) over the hands of a batch, and their count,
    reading parameters at the ground-truth centres."""
    maps = module.model(batch["image"])
    total, hands = 0.0, 0
    vectors = params_with_prior(maps, batch["centre"], batch["present"].bool())
    for s, side in enumerate(SIDES):
        present = batch["present"][:, s]
        if not present.any():
            continue
        pred = decode_hand(vectors[side][present], module.layers[side])
        gt = ground_truth_hand(batch, side)
        valid = gt["valid"]
        errors = ((pred["joints"] - gt["joints"]).norm(dim=-1) * valid).sum(1) / valid.sum(1).clamp_min(1)
        total += float(errors.sum()) * 1000.0
        hands += int(present.sum())
    return total, hands


class ACRModule(pl.LightningModule):
    """ACRNet + both MANO layers, trained with `acr_losses`."""

    def __init__(self, config: ACRTrainConfig) -> None:
        super().__init__()
        self.config = config
        self.model = ACRNet(config.net)
        if config.init_checkpoint:
            load_official_checkpoint(self.model, config.init_checkpoint)
        self.layers = torch.nn.ModuleDict({side: build_mano(side, config.mano_dir, pose_convention="flat") for side in SIDES})
        self._val = [0.0, 0]

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        losses = acr_losses(self.model(batch["image"]), batch, self.layers, self.config.losses, self.config.train_prior)
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, prog_bar=False, batch_size=len(batch["image"]))
        self.log("loss", losses["total"].detach(), prog_bar=True, batch_size=len(batch["image"]))
        return losses["total"]

    def validation_step(self, batch: dict, batch_index: int) -> None:
        total, hands = root_relative_mpjpe(self, batch)
        self._val[0] += total
        self._val[1] += hands

    def on_validation_epoch_end(self) -> None:
        # The mean over all hands of all ranks: sums and counts are reduced, not per-rank means.
        sums = torch.tensor(self._val, dtype=torch.float64, device=self.device)
        if self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        self.log("val/mpjpe", float(sums[0] / sums[1].clamp_min(1)), prog_bar=True, rank_zero_only=False)
        self._val = [0.0, 0]

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def datasets(self) -> tuple[Dataset, ACRTrainingSet]:
        """Training (with flips; `data` and every `extra_data` folder) and validation sets from the config."""
        c = self.config
        extra = [ACRTrainingSet(folder, c.input_size, flip_prob=c.flip_prob, seed=c.seed + k + 1)
                 for k, folder in enumerate(c.extra_data)]
        if c.val_data:
            train, val = ACRTrainingSet(c.data, c.input_size, flip_prob=c.flip_prob, seed=c.seed), ACRTrainingSet(c.val_data, c.input_size)
        else:
            train_rows, val_rows = split_rows(len(ACRTrainingSet(c.data, c.input_size)), c.val_fraction)
            train = ACRTrainingSet(c.data, c.input_size, train_rows, c.flip_prob, c.seed)
            val = ACRTrainingSet(c.data, c.input_size, val_rows)
        return (ConcatDataset([train, *extra]) if extra else train), val
