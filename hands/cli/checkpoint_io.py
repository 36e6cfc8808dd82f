"""Training checkpoints that survive a kill: written beside their final name, flushed to disk, renamed into place
(the previous checkpoint stays whole until then), and a `--resume` that finds the newest intact one.

Lightning's own writer stages a checkpoint in $TMPDIR and moves it: across filesystems that move is a truncating
copy, and a kill during it leaves a 0-byte `last.ckpt`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from hands.config import save_config
from hands.io.atomic import apply_umask

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".part"


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` to `.<name>.<random>.part` in the checkpoint's folder, fsync, rename onto the name."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as stream:
                torch.save(checkpoint, stream)
                stream.flush()
                os.fsync(stream.fileno())
            apply_umask(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself reaches the disk
        finally:
            os.close(folder)


def checkpoint_is_intact(path: Path) -> bool:
    """Whether a torch checkpoint file is complete: a zip archive whose every member passes its CRC (no unpickling)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def resume_checkpoint(folder: Path) -> Path | None:
    """The checkpoint to resume from: `last.ckpt` when intact, else the newest intact `*.ckpt` (with a warning);
    leftovers of killed saves are removed. None when there is none."""
    for partial in folder.glob(f".*{PARTIAL_SUFFIX}"):
        partial.unlink(missing_ok=True)
    last = folder / "last.ckpt"
    if last.is_file() and checkpoint_is_intact(last):
        return last
    candidates = sorted((p for p in folder.glob("*.ckpt") if p != last), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for candidate in candidates:
        if checkpoint_is_intact(candidate):
            if last.exists():
                log.warning("%s is damaged (a killed save?); resuming from %s", last, candidate.name)
            return candidate
    return None


class SaveConfigOnStart(pl.Callback):
    """Writes the run's config.yaml on rank 0 once training has started, i.e. after a resumed checkpoint has
    loaded (a resume that fails to load leaves the run's config as it was)."""

    def __init__(self, config: Any, path: Path) -> None:
        self.config, self.path = config, path

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            save_config(self.config, self.path, overwrite=True)
