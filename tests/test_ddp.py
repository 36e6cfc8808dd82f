"""Multi-process training (DDP, 2 CPU processes over gloo) for the three methods through the root `train.py`, as a
user starts it: only rank 0 writes, every rank trains, checkpoints resume, and metrics are reduced over ranks."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "trainer.checkpoint_every_steps=1"]


def train(config: str, output: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / config), f"trainer.output={output}", *DDP,
               *overrides]
    result = subprocess.run(command, cwd=output.parent, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def global_step(output: Path) -> int:
    return torch.load(output / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]


@pytest.fixture(scope="module")
def acr_data(synthetic_root, tmp_path_factory):
    from hands.cli.prepare_interhand import main as prepare

    folder = tmp_path_factory.mktemp("ddp_acr") / "index"
    prepare(["acr", "--root", str(synthetic_root), "--out", str(folder), "--size", "64"])
    return folder


ACR = ["acr.input_size=64", "acr.batch_size=2", "acr.num_workers=0", "acr.net.backbone_width=8", "acr.net.head_width=16",
       "acr.net.pose_width=32", "acr.net.shape_width=16", "acr.val_fraction=0.25", "trainer.val_every_steps=1"]


@pytest.mark.slow
def test_acr_trains_resumes_and_reduces_its_metric_over_ranks(acr_data, tmp_path):
    from hands.acr.training import ACRModule, ACRTrainConfig, root_relative_mpjpe

    output = tmp_path / "acr"
    train("configs/acr/synthetic.yaml", output, f"acr.data={acr_data}", *ACR, "trainer.max_steps=2")
    assert global_step(output) == 2 and (output / "config.yaml").is_file()
    train("configs/acr/synthetic.yaml", output, f"acr.data={acr_data}", *ACR, "trainer.max_steps=3", "--resume")
    assert global_step(output) == 3
    # The logged validation MPJPE is the mean over all held-out hands, computed here in one process.
    resumed = max(output.glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    rows = [r for r in csv.DictReader(open(resumed)) if r.get("val/mpjpe")]
    logged = float(rows[-1]["val/mpjpe"])
    config = ACRTrainConfig(data=str(acr_data), input_size=64, val_fraction=0.25)
    config.net.backbone_width, config.net.head_width, config.net.pose_width, config.net.shape_width = 8, 16, 32, 16
    module = ACRModule(config)
    state = torch.load(output / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    module.eval()
    _, val_set = module.datasets()
    assert len(val_set) % 2 == 0  # no padding by the distributed sampler
    batch = torch.utils.data.default_collate([val_set[i] for i in range(len(val_set))])
    with torch.no_grad():
        total, hands = root_relative_mpjpe(module, batch)
    assert logged == pytest.approx(total / hands, rel=1e-4)


@pytest.mark.slow
def test_a_killed_ddp_run_resumes(acr_data, tmp_path):
    output = tmp_path / "killed"
    command = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs/acr/synthetic.yaml"),
               f"trainer.output={output}", *DDP, f"acr.data={acr_data}", *ACR, "trainer.max_steps=500"]
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"})
    last = output / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (last.is_file() and global_step(output) >= 2):
        time.sleep(0.5)
    os.killpg(run.pid, signal.SIGKILL)  # every rank, mid-run (and maybe mid-save)
    run.wait(timeout=60)
    reached = global_step(output)
    assert 2 <= reached < 500
    train("configs/acr/synthetic.yaml", output, f"acr.data={acr_data}", *ACR, f"trainer.max_steps={reached + 2}", "--resume")
    assert global_step(output) == reached + 2


@pytest.mark.slow
def test_ohta_prior_learning_trains_and_resumes(tmp_path, synthetic_root):
    from hands.cli.prepare_interhand import main as prepare

    data = tmp_path / "ohta_data"
    prepare(["ohta", "--root", str(synthetic_root), "--out", str(data), "--size", "32"])
    output = tmp_path / "ohta"
    common = [f"ohta.data={data}", "ohta.image_size=32", "ohta.patch_size=8", "ohta.accumulate=1", "ohta.pairof_warmup_steps=0"]
    train("configs/ohta/prior_synthetic.yaml", output, *common, "trainer.max_steps=2")
    assert (output / "prior").is_dir() and global_step(output) == 2
    train("configs/ohta/prior_synthetic.yaml", output, *common, "trainer.max_steps=3", "--resume")
    assert global_step(output) == 3


@pytest.mark.slow
def test_attentionhand_trains_and_resumes(tiny_sd, attentionhand_modalities, tmp_path):
    _, folder, _ = tiny_sd
    output = tmp_path / "ah"
    common = [f"attentionhand.data={attentionhand_modalities}", f"attentionhand.init_checkpoint={folder}",
              "attentionhand.image_size=64", "attentionhand.batch_size=2", "attentionhand.log_images_every=2",
              "attentionhand.log_sampling_steps=2"]
    train("configs/attentionhand/train_fast.yaml", output, *common, "trainer.max_steps=2")
    assert (output / "controlnet").is_dir() and global_step(output) == 2
    train("configs/attentionhand/train_fast.yaml", output, *common, "trainer.max_steps=3", "--resume")
    assert global_step(output) == 3


def test_every_rank_draws_its_own_ohta_patches_and_a_resume_draws_them_again():
    from hands.ohta.prior import step_rng

    draws = {(rank, step): step_rng(0, rank, step, 0).integers(1 << 31, size=4).tolist() for rank in (0, 1) for step in (5, 6)}
    assert draws[(0, 5)] != draws[(1, 5)] and draws[(0, 5)] != draws[(0, 6)]
    assert step_rng(0, 1, 6, 0).integers(1 << 31, size=4).tolist() == draws[(1, 6)]
    assert np.unique([tuple(v) for v in draws.values()], axis=0).shape[0] == 4
