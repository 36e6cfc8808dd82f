"""`hands train` (and `python train.py`): train a registered method.

    hands train --config configs/acr/synthetic.yaml [key=value ...] [--resume] [--overwrite]
    hands train --config configs/attentionhand/train.yaml attentionhand.text_attention.mode=paper
    hands train --config configs/ohta/prior.yaml trainer.devices=2 trainer.strategy=ddp

The config has `method:` (a registered method), `trainer:` (below) and the method's own section, nothing else.
The whole config (types, choices, unknown keys) is checked before anything is written. Outputs land in
`trainer.output`: the resolved config.yaml, checkpoints/ (last.ckpt and periodic ones), logs/ (metrics.csv) and
what the method exports after training (AttentionHand: images/ and controlnet/; OHTA: prior/).
`--resume` continues from checkpoints/last.ckpt (or, when a kill damaged it, the newest intact checkpoint); it keeps
the method's section as the run saved it (only trainer.* may change). Checkpoints are written beside their name
and renamed into place, so a kill never leaves a partial one.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from hands.cli.checkpoint_io import AtomicCheckpointIO, SaveConfigOnStart, resume_checkpoint
from hands.cli.options import config_epilog, config_help
from hands.config import ConfigError, check_fields, load_config, read_yaml, save_config
from hands.registry import MethodSpec, get_method, load_object, method_names

log = logging.getLogger("train")


@dataclass
class TrainerConfig:
    """Where and how long to train (PyTorch Lightning Trainer settings)."""

    output: str = "outputs/run"
    """Run folder: config.yaml, checkpoints/, logs/."""
    max_steps: int = 100_000
    """Optimizer steps to train for."""
    val_every_steps: int = 1000
    """Validation interval in steps (methods with a validation set)."""
    checkpoint_every_steps: int = 1000
    """A checkpoint every this many steps (and last.ckpt)."""
    log_every_steps: int = 50
    """Metrics logging interval in steps."""
    accelerator: str = "auto"
    """auto (CUDA when available), cpu or gpu."""
    devices: str = "auto"
    """auto, a count such as 2, or a list such as [0,1]."""
    strategy: str = "auto"
    """auto or ddp (several GPUs or nodes; on the CPU, gloo)."""
    num_nodes: int = 1
    """Machines taking part (DDP)."""
    precision: str = "32-true"
    """32-true, or 16-mixed / bf16-mixed on GPUs."""

    def __post_init__(self) -> None:
        check_fields(self, at_least={"max_steps": 1, "val_every_steps": 1, "checkpoint_every_steps": 1,
                                     "log_every_steps": 1, "num_nodes": 1})


def run_config_schema(spec: MethodSpec) -> type:
    """The dataclass of a run of `spec`: method, trainer and the method's section."""
    section = load_object(spec.train_config)
    return make_dataclass(f"{spec.name.title()}RunConfig", [
        ("method", str, field(default=spec.name)),
        ("trainer", TrainerConfig, field(default_factory=TrainerConfig)),
        (spec.name, section, field(default_factory=section)),
    ])


def method_of(path: str, overrides: list[str]) -> str:
    """The `method` a config file and its overrides name (the last one wins)."""
    name = read_yaml(path).get("method")
    for item in overrides:
        if item.startswith("method="):
            name = item.split("=", 1)[1]
    if not name:
        raise ConfigError(f"{path}: no 'method:' (one of {', '.join(method_names())})")
    return str(name)


def load_run_config(path: str, overrides: list[str]) -> tuple[MethodSpec, Any]:
    """The method's spec and its validated run config (file, then overrides); ConfigError names what is wrong."""
    try:
        spec = get_method(method_of(path, overrides))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    config = load_config(run_config_schema(spec), path, overrides)
    section = getattr(config, spec.name)
    for required in ("seed", "batch_size", "num_workers"):
        if not hasattr(section, required):
            raise ConfigError(f"method {spec.name}: its train config {type(section).__name__} has no '{required}'")
    try:
        check_fields(section, at_least={"batch_size": 1, "num_workers": 0, **({"accumulate": 1} if hasattr(section, "accumulate")
                                                                              else {})})
    except ValueError as error:
        raise ConfigError(f"{path}: {spec.name}.{error}") from None
    return spec, config


def _devices(value: str):
    return value if value == "auto" or value.startswith("[") else int(value)


def build_parser() -> argparse.ArgumentParser:
    epilog = config_epilog(TrainerConfig, "trainer keys (trainer.<key>=value):") + \
        "\n\nmethods (each has its own section; `hands train --keys <method>` lists its keys): " + ", ".join(method_names())
    parser = argparse.ArgumentParser(prog="hands train", description=__doc__, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file with method:, trainer: and the method's section")
    parser.add_argument("--resume", action="store_true", help="continue from <output>/checkpoints/last.ckpt")
    parser.add_argument("--overwrite", action="store_true", help="start over in an existing output folder")
    parser.add_argument("--keys", metavar="METHOD", help="list the keys of a method's section with their help, and exit")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.max_steps=2000 acr.batch_size=16")
    return parser


def main(argv: list[str] | None = None) -> Path:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)  # key=value overrides may come before or after options
    if args.keys:
        try:
            spec = get_method(args.keys)
        except ValueError as error:
            parser.error(str(error))
        print("\n".join(f"{spec.name}.{line}" for line in config_help(load_object(spec.train_config))))
        raise SystemExit(0)
    if not args.config:
        parser.error("--config is required")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        spec, config = load_run_config(args.config, args.overrides)
    except ConfigError as error:
        parser.error(str(error))
    output = Path(config.trainer.output)
    start = None
    if args.resume:
        start = resume_checkpoint(output / "checkpoints")
        if start is None:
            parser.error(f"--resume: no intact checkpoint in {output / 'checkpoints'}")
        try:
            check_resumable(spec, config, output / "config.yaml")
        except ConfigError as error:
            parser.error(str(error))
    elif is_launching_process() and (output / "config.yaml").exists() and not args.overwrite:
        # Only the process the user started checks: DDP starts this command again for the other ranks.
        parser.error(f"{output} already holds a run; pass --resume to continue it or --overwrite to start over")
    return fit(spec, config, output, start)


def is_launching_process() -> bool:
    """True in the process a user started, False in the ranks a DDP launcher (Lightning, torchrun) starts again."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def check_resumable(spec: MethodSpec, config: Any, saved_path: Path) -> None:
    """A resumed run keeps its method section (the model, data and losses the checkpoint was made with); only
    `trainer.*` may change. ConfigError names the keys that differ."""
    if not saved_path.is_file():
        raise ConfigError(f"--resume: {saved_path} is missing (not a run folder of `hands train`?)")
    saved = load_config(run_config_schema(spec), saved_path)
    before = OmegaConf.to_container(OmegaConf.structured(getattr(saved, spec.name)))
    after = OmegaConf.to_container(OmegaConf.structured(getattr(config, spec.name)))
    changed = sorted(_changed_keys(before, after, spec.name))
    if changed:
        raise ConfigError(f"--resume keeps the run's {spec.name} settings; these differ from {saved_path}: "
                          f"{', '.join(changed)} (start a new run to change them)")


def _changed_keys(before: Any, after: Any, prefix: str) -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [key for name in sorted(set(before) | set(after))
                for key in _changed_keys(before.get(name), after.get(name), f"{prefix}.{name}")]
    return [] if before == after else [prefix]


def fit(spec: MethodSpec, config: Any, output: Path, start: Path | None = None) -> Path:
    """Build the method's module and data from the registry, train (from the checkpoint `start` when resuming),
    then export (rank 0). config.yaml is written by rank 0 once the module is built (a new run) or once the
    checkpoint has loaded (a resumed run)."""
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    t, settings = config.trainer, getattr(config, spec.name)
    if "mixed" in t.precision and not torch.cuda.is_available():
        log.warning("precision %s needs CUDA; training in 32-true on this machine", t.precision)
        t.precision = "32-true"
    pl.seed_everything(settings.seed, workers=True)
    module = load_object(spec.module)(settings)  # builds the networks: a bad value fails here, before any file
    data = module.datasets()
    train_set, val_set = data if isinstance(data, tuple) else (data, None)
    if start is None and is_launching_process():
        save_config(config, output / "config.yaml", overwrite=True)
    checkpoints = ModelCheckpoint(dirpath=output / "checkpoints", save_last=True, every_n_train_steps=t.checkpoint_every_steps)
    extra = load_object(spec.callbacks)(settings, output) if spec.callbacks else []
    callbacks = [checkpoints, SaveConfigOnStart(config, output / "config.yaml"), *extra]

    def loader(dataset, shuffle: bool):
        return torch.utils.data.DataLoader(
            dataset, batch_size=settings.batch_size, shuffle=shuffle, drop_last=shuffle and len(dataset) >= settings.batch_size,
            num_workers=settings.num_workers, persistent_workers=settings.num_workers > 0)

    validation = {}
    if val_set is not None:
        validation = dict(val_check_interval=min(t.val_every_steps, max(1, len(train_set) // settings.batch_size)),
                          check_val_every_n_epoch=None)
    trainer = pl.Trainer(
        max_steps=t.max_steps, accelerator=t.accelerator, devices=_devices(t.devices), strategy=t.strategy,
        num_nodes=t.num_nodes, precision=t.precision, default_root_dir=str(output), logger=CSVLogger(str(output), name="logs"),
        log_every_n_steps=t.log_every_steps, enable_model_summary=False, limit_val_batches=1.0 if val_set is not None else 0,
        callbacks=callbacks, accumulate_grad_batches=getattr(settings, "accumulate", 1), plugins=[AtomicCheckpointIO()],
        **validation)
    trainer.fit(module, loader(train_set, True), loader(val_set, False) if val_set is not None else None,
                ckpt_path=str(start) if start is not None else None)
    if spec.export and trainer.is_global_zero:
        saved = load_object(spec.export)(module, output, trainer)
        log.info("saved %s", saved)
    return output
