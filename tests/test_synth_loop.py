"""The AttentionHand loop on this CPU with the tiny models: hands synth -> prepare.py acr -> train.py one step ->
eval_acr.py, and hands eval generation on the generated samples."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hands.cli.eval_generation import main as eval_generation
from hands.cli.synth import main as synth
from scripts.eval_acr import main as eval_acr
from scripts.prepare import main as prepare
from train import main as train

SMALL = ["cameras_per_capture=2", "frames_per_sequence=2", "sequences_per_capture=2"]


@pytest.mark.slow
def test_generated_hands_train_and_evaluate_acr(tiny_sd, tmp_path):
    _, folder, _ = tiny_sd
    generated = tmp_path / "ah"
    synth(["--out", str(generated), "--source", "attentionhand", "--weights", str(folder), "--image_size", "64",
           "--steps", "2", "--num", "8", "--device", "cpu", "--quality", *SMALL])
    samples = [json.loads(line) for line in (generated / "generation.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and all("quality" in s and "consistency" in s["quality"] for s in samples)

    real = tmp_path / "rendered"  # stands in for the real set (InterHand2.6M on a GPU machine)
    synth(["--out", str(real), "--num", "8", "--device", "cpu", "image_width=64", "image_height=64", *SMALL])
    acr_real, acr_generated = tmp_path / "acr_real", tmp_path / "acr_generated"
    prepare(["acr", "--root", str(real), "--out", str(acr_real), "--size", "64"])
    prepare(["acr", "--root", str(generated), "--out", str(acr_generated), "--size", "64"])
    run = tmp_path / "run"
    train(["--config", "configs/acr/synthetic.yaml", f"trainer.output={run}", "trainer.accelerator=cpu",
           "trainer.max_steps=1", "trainer.val_every_steps=1", "trainer.checkpoint_every_steps=1", f"acr.data={acr_real}",
           f"acr.extra_data=[{acr_generated}]", "acr.input_size=64", "acr.batch_size=2", "acr.num_workers=0",
           "acr.val_fraction=0.25", "acr.net.backbone_width=8", "acr.net.head_width=16", "acr.net.pose_width=32",
           "acr.net.shape_width=16"])
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"] == 1
    from hands.acr.model import ACRNetConfig
    from hands.acr.training import ACRModule, ACRTrainConfig

    net = ACRNetConfig(backbone_width=8, head_width=16, pose_width=32, shape_width=16)
    train_set, val_set = ACRModule(ACRTrainConfig(data=str(acr_real), extra_data=[str(acr_generated)], input_size=64,
                                                  val_fraction=0.25, net=net)).datasets()
    assert (len(train_set), len(val_set)) == (6 + 8, 2)  # real rows held out for validation, generated ones all trained on
    results = eval_acr(["--root", str(generated), "--split", "train", "--checkpoint", str(checkpoint), "--size", "64",
                        "--device", "cpu", "--out", str(tmp_path / "acr_eval.json")])
    written = json.loads((tmp_path / "acr_eval.json").read_text())
    assert results["images"] == written["images"] == 8 and set(written) == set(results)

    import torchvision

    torch.manual_seed(0)
    inception = tmp_path / "inception.pth"
    torch.save(torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=True).state_dict(),
               inception)
    metrics = eval_generation(["--generated", str(generated), "--real", str(real), "--inception", str(inception),
                               "--dims", "64", "--kid_subset", "8", "--kid_subsets", "2"])
    assert metrics["generated_images"] == 8 and metrics["real_images"] == 8
    assert metrics["hand_crops"] == {"generated": 8, "real": 8}  # boxes from the conditions and the annotations
    assert all(math.isfinite(metrics[key]) for key in ("fid", "kid", "fid_h", "kid_h", "hand_confidence", "pck"))
    assert (generated / "generation_metrics.md").read_text().count("|") > 10
