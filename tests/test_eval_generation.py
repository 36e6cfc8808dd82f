"""`hands eval generation` against pytorch-fid's own command and independent formulas, on tiny folders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hands.cli.eval_generation import hand_crop
from hands.cli.eval_generation import main as eval_generation
from hands.eval.image_metrics import FID_INCEPTION_FILE
from hands.io.images import write_image


@pytest.fixture(scope="module")
def inception(tmp_path_factory) -> Path:
    """Random weights in the FID Inception's layout, where pytorch-fid looks for them ($TORCH_HOME/hub/checkpoints)."""
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=True).state_dict()
    home = tmp_path_factory.mktemp("torch_home")
    path = home / "hub" / "checkpoints" / FID_INCEPTION_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path


def _pictures(folder: Path, count: int, seed: int, shift: float) -> list[Path]:
    """Smooth random pictures (64, 64) with a bright blob (the 'hand') whose place varies."""
    rng = np.random.default_rng(seed)
    paths = []
    yy, xx = np.mgrid[0:64, 0:64]
    for k in range(count):
        base = rng.uniform(0, 255, (8, 8, 3))
        image = np.kron(base, np.ones((8, 8, 1)))
        cx, cy = rng.uniform(20, 44, 2)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < 80] = 230 - shift
        paths.append(write_image(folder / f"{k:03d}.png", np.clip(image + shift, 0, 255).astype(np.uint8)))
    return paths


@pytest.mark.slow
def test_fid_and_kid_match_pytorch_fid(inception, tmp_path):
    # 72 images a side in pytorch-fid's 64-d features: more images than dimensions, as FID needs (2048-d with this
    # few would be singular, which pytorch-fid refuses)
    generated, real = tmp_path / "generated", tmp_path / "real"
    count = 72
    images = _pictures(generated, count, 1, 30.0)
    _pictures(real, count, 2, 0.0)
    mesh = np.zeros((128, 128, 3), np.uint8)
    mesh[40:90, 30:70] = 200  # the condition's hand: box (15, 20, 20, 25) in the 64-pixel images
    write_image(tmp_path / "mesh.png", mesh)
    (generated / "records.jsonl").write_text(
        "".join(json.dumps({"id": f"s{k}", "mesh": str(tmp_path / "mesh.png"), "images": [p.name]}) + "\n"
                for k, p in enumerate(images)))
    metrics = eval_generation(["--generated", str(generated), "--real", str(real), "--inception", str(inception),
                               "--no_pose", "--dims", "64", "--kid_subset", str(count), "--kid_subsets", "1",
                               "--out", str(tmp_path / "report")])
    env = {**os.environ, "TORCH_HOME": str(inception.parents[2])}
    theirs = subprocess.run([sys.executable, "-m", "pytorch_fid", str(generated), str(real), "--device", "cpu",
                             "--batch-size", "16", "--dims", "64", "--num-workers", "0"],
                            env=env, capture_output=True, text=True, check=True)
    fid = float(re.search(r"FID:\s*([-\d.e+]+)", theirs.stdout).group(1))
    assert metrics["fid"] == pytest.approx(fid, abs=1e-3)

    # KID with every image in one subset against the unbiased MMD^2 written out as loops, on pytorch-fid's features
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    import hands.eval.image_metrics as image_metrics

    with image_metrics._local_state_dict(torch.load(inception, weights_only=True)):
        model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[64]]).eval()
    a = get_activations(sorted(generated.glob("*.png")), model, 16, 64, "cpu", 0).astype(np.float64)
    b = get_activations(sorted(real.glob("*.png")), model, 16, 64, "cpu", 0).astype(np.float64)
    k = lambda x, y: (x @ y / 64 + 1) ** 3  # noqa: E731
    n = len(a)
    xx = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(n) for j in range(n)) / (n * n)
    assert metrics["kid"] == pytest.approx(xx + yy - 2 * xy, rel=1e-4, abs=1e-9)
    assert metrics["hand_crops"] == {"generated": count, "real": 0}  # MediaPipe finds no hand in the real pictures
    report = tmp_path / "report"
    assert json.loads((report / "generation_metrics.json").read_text())["fid"] == metrics["fid"]
    table = (report / "generation_metrics.md").read_text()
    assert table.splitlines()[0].startswith("| Method | FID↓ | KID↓ | FID-H↓ | KID-H↓ | Hand Conf.↑")
    with pytest.raises(FileExistsError):
        eval_generation(["--generated", str(generated), "--real", str(real), "--inception", str(inception), "--no_pose",
                         "--out", str(report)])


def test_hand_crops_come_from_the_box():
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:60, 50:70] = 255  # box x 50, y 20, w 20, h 40
    crop = hand_crop(image, [50, 20, 20, 40], scale=1.0, size=40)
    bright = crop.max(-1) > 128
    ys, xs = np.nonzero(bright)
    assert (ys.min(), ys.max()) == (0, 39) and (xs.min(), xs.max()) == (10, 29)  # the box fills the crop's height
    outside = hand_crop(image, [190, 90, 20, 20], scale=2.0, size=20)
    assert outside.shape == (20, 20, 3) and outside[15:, 15:].max() == 0  # black beyond the image


def test_bad_generated_folders_name_the_file(tmp_path):
    (tmp_path / "g").mkdir()
    with pytest.raises(FileNotFoundError, match="records.jsonl"):
        eval_generation(["--generated", str(tmp_path / "g"), "--real", str(tmp_path), "--no_pose"])
    (tmp_path / "g" / "records.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="records.jsonl:1"):
        eval_generation(["--generated", str(tmp_path / "g"), "--real", str(tmp_path), "--no_pose"])
