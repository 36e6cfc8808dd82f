"""A fourth method that no package file knows: a line fitted to points, registered by the `toy_method` fixture."""

from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch


@dataclass
class ToyConfig:
    """A line fitted to noisy points."""

    seed: int = 0
    batch_size: int = 8
    num_workers: int = 0
    lr: float = 0.1
    """Learning rate of plain SGD."""


class ToyModule(pl.LightningModule):
    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.line = torch.nn.Linear(1, 1)

    def datasets(self):
        x = torch.linspace(-1, 1, 64)[:, None]
        return torch.utils.data.TensorDataset(x, 3 * x + 0.5)

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.line(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.config.lr)


def export_toy(module: ToyModule, output: Path, trainer) -> Path:
    path = output / "line.pt"
    torch.save(module.line.state_dict(), path)
    return path
