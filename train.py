"""Train a model of this project.

    python train.py --config configs/acr/synthetic.yaml [key=value ...] [--resume] [--overwrite]
    python train.py --config configs/attentionhand/train.yaml [key=value ...]
    python train.py --config configs/ohta/prior.yaml [key=value ...]

Keys are the fields of `TrainConfig` (e.g. trainer.max_steps=2000 acr.batch_size=16 trainer.devices=2
trainer.strategy=ddp attentionhand.text_attention.mode=paper). Outputs land in `trainer.output`: the resolved
config.yaml, checkpoints/ (last.ckpt and periodic ones) and metrics.csv; AttentionHand runs add images/ (samples
every `attentionhand.log_images_every` steps) and controlnet/ (the trained ControlNet, `save_pretrained` format);
OHTA prior learning writes prior/ (an avatar folder for `create.py --checkpoint`).
`--resume` continues from checkpoints/last.ckpt.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from hands.acr.training import ACRModule, ACRTrainConfig
from hands.attentionhand.training import AttentionHandModule, AttentionHandTrainConfig, ImageLogger
from hands.config import ConfigError, load_config, save_config
from hands.ohta.checkpoint import save_avatar
from hands.ohta.prior import OHTAPriorModule, PriorTrainConfig


@dataclass
class TrainerConfig:
    """Where and how long to train (PyTorch Lightning Trainer settings)."""

    output: str = "outputs/acr"
    """Run folder: config.yaml, checkpoints/, metrics."""
    max_steps: int = 100_000
    val_every_steps: int = 1000
    checkpoint_every_steps: int = 1000
    log_every_steps: int = 50
    accelerator: str = "auto"
    """auto (CUDA when available), cpu or gpu."""
    devices: str = "auto"
    """auto, a count such as 2, or a list such as [0,1]."""
    strategy: str = "auto"
    """auto or ddp (several GPUs or nodes)."""
    num_nodes: int = 1
    precision: str = "32-true"
    """32-true, or 16-mixed / bf16-mixed on GPUs."""


@dataclass
class TrainConfig:
    """A training run: the method and its settings."""

    method: str = "acr"
    """acr, attentionhand or ohta (prior learning)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    acr: ACRTrainConfig = field(default_factory=ACRTrainConfig)
    attentionhand: AttentionHandTrainConfig = field(default_factory=AttentionHandTrainConfig)
    ohta: PriorTrainConfig = field(default_factory=PriorTrainConfig)


def _devices(value: str):
    return value if value == "auto" or value.startswith("[") else int(value)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML file, e.g. configs/acr/synthetic.yaml")
    parser.add_argument("--resume", action="store_true", help="continue from <output>/checkpoints/last.ckpt")
    parser.add_argument("--overwrite", action="store_true", help="start over in an existing output folder")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of TrainConfig")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = load_config(TrainConfig, args.config, args.overrides)
    except ConfigError as error:
        parser.error(str(error))
    if config.method not in ("acr", "attentionhand", "ohta"):
        parser.error(f"method: expected acr, attentionhand or ohta, got {config.method!r}")
    output = Path(config.trainer.output)
    last = output / "checkpoints" / "last.ckpt"
    if args.resume and not last.is_file():
        parser.error(f"--resume: no checkpoint at {last}")
    if (output / "config.yaml").exists() and not (args.resume or args.overwrite):
        parser.error(f"{output} already holds a run; pass --resume to continue it or --overwrite to start over")
    t = config.trainer
    if "mixed" in t.precision and not torch.cuda.is_available():
        logging.warning("precision %s needs CUDA; training in 32-true on this machine", t.precision)
        t.precision = "32-true"
    save_config(config, output / "config.yaml", overwrite=True)
    checkpoints = ModelCheckpoint(dirpath=output / "checkpoints", save_last=True, every_n_train_steps=t.checkpoint_every_steps)
    if config.method == "acr":
        pl.seed_everything(config.acr.seed, workers=True)
        module = ACRModule(config.acr)
        train_set, val_set = module.datasets()
        settings, callbacks = config.acr, [checkpoints]
    elif config.method == "ohta":
        pl.seed_everything(config.ohta.seed, workers=True)
        module = OHTAPriorModule(config.ohta)
        train_set, val_set, settings, callbacks = module.datasets(), None, config.ohta, [checkpoints]
    else:
        pl.seed_everything(config.attentionhand.seed, workers=True)
        module = AttentionHandModule(config.attentionhand)
        train_set, val_set = module.datasets(), None
        settings = config.attentionhand
        callbacks = [checkpoints, ImageLogger(output / "images", settings.log_images_every, settings.log_sampling_steps)]
    loader = lambda data, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        data, batch_size=settings.batch_size, shuffle=shuffle, drop_last=shuffle and len(data) >= settings.batch_size,
        num_workers=settings.num_workers, persistent_workers=settings.num_workers > 0)
    validation = {}
    if val_set is not None:
        validation = dict(val_check_interval=min(t.val_every_steps, max(1, len(train_set) // settings.batch_size)),
                          check_val_every_n_epoch=None)
    trainer = pl.Trainer(
        max_steps=t.max_steps, accelerator=t.accelerator, devices=_devices(t.devices), strategy=t.strategy,
        num_nodes=t.num_nodes, precision=t.precision, default_root_dir=str(output), logger=CSVLogger(str(output), name="logs"),
        log_every_n_steps=t.log_every_steps, enable_model_summary=False, limit_val_batches=1.0 if val_set is not None else 0,
        callbacks=callbacks, accumulate_grad_batches=config.ohta.accumulate if config.method == "ohta" else 1, **validation)
    trainer.fit(module, loader(train_set, True), loader(val_set, False) if val_set is not None else None,
                ckpt_path=str(last) if args.resume else None)
    if config.method == "attentionhand" and trainer.is_global_zero:
        module.export_controlnet(output / "controlnet", overwrite=True)
        logging.info("saved the trained ControlNet to %s", output / "controlnet")
    if config.method == "ohta" and trainer.is_global_zero:
        save_avatar(module.avatar, output / "prior", {"trained_steps": trainer.global_step}, overwrite=True)
        logging.info("saved the prior to %s", output / "prior")
    return output


if __name__ == "__main__":
    main()
