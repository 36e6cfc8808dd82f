"""inference.py on the released samples and train.py's AttentionHand runs, with tiny random SD-layout models."""

import json

import cv2
import numpy as np
import pytest
import torch
from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

from hands.attentionhand.components import load_parts
from hands.attentionhand.pipeline import (
    SamplingConfig,
    build_pipeline,
    control_image,
    full_prompt,
    quantise_images,
    read_mesh_hint,
    sample_images,
)
from inference import main as inference
from tests.conftest import fixture_path
from train import main as train

FAST = ["--steps", "2", "--num_samples", "2", "--image_size", "64", "--architecture", "tiny"]


def test_inference_on_released_samples(tiny_sd, tmp_path):
    samples = fixture_path("attentionhand", "samples", "modalities.json")
    _, _, ckpt = tiny_sd
    out = tmp_path / "out"
    args = ["--sample_path", str(samples), "--weights", str(ckpt), "--out", str(out), *FAST]
    inference(args + ["--export_controlnet", str(tmp_path / "controlnet")])
    ids = ["000000000036", "000000000113", "000000000165"]
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i}_{k}.png" for i in ids for k in range(2)]
    first = cv2.imread(str(out / "000000000036_0.png"))
    assert first.shape == (64, 64, 3)
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ids and records[0]["seed"] == 42
    assert records[0]["prompt"] == "The woman is holding a pink umbrella with her hand., "  # the release's string
    assert records[0]["noise_device"] == "cpu"
    assert (out / "config.yaml").is_file()
    with pytest.raises(SystemExit, match="already exists"):  # never overwrites
        inference(args)
    assert np.array_equal(cv2.imread(str(out / "000000000036_0.png")), first)
    (out / "000000000165_1.png").unlink()
    inference(args + ["--skip_existing"])  # only the incomplete sample is sampled again
    assert (out / "000000000165_1.png").is_file() and len((out / "records.jsonl").read_text().splitlines()) == 4
    inference(args + ["--overwrite"])  # same seed, same images
    assert np.array_equal(cv2.imread(str(out / "000000000036_0.png")), first)

    # the exported ControlNet is a plain diffusers one
    parts = load_parts(ckpt, architecture="tiny")
    exported = ControlNetModel.from_pretrained(tmp_path / "controlnet", local_files_only=True)
    assert all(torch.equal(a, b) for a, b in zip(exported.state_dict().values(), parts.controlnet.state_dict().values()))
    pipeline = StableDiffusionControlNetPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet, controlnet=exported,
        scheduler=parts.sampling_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    mesh = read_mesh_hint(samples.parent / "mesh" / "000000000036.jpg")
    ours, _ = sample_images(parts, mesh, "The woman is holding a pink umbrella with her hand.",
                            SamplingConfig(steps=2, num_samples=2, image_size=64))
    theirs = pipeline(records[0]["prompt"], image=control_image(mesh, 64), num_inference_steps=2, guidance_scale=9.0,
                      num_images_per_prompt=2, height=64, width=64, output_type="np",
                      generator=torch.Generator().manual_seed(42)).images
    assert np.abs(ours[0].astype(int) - np.round(theirs[0] * 255).astype(int)).max() <= 1
    assert np.abs(ours[0].astype(int) - first[:, :, ::-1]).max() <= 1  # inference.py wrote the same sample


def test_attention_guidance_changes_the_samples(tiny_sd):
    parts, _, _ = tiny_sd
    mesh = np.zeros((80, 60, 3), np.uint8)
    mesh[20:60, 15:45] = 220
    config = SamplingConfig(steps=3, num_samples=1, image_size=64)
    plain, record = sample_images(parts, mesh, "a hand waving", config)
    config.attention_guidance, config.guidance_step_size = True, 5000.0
    guided, guided_record = sample_images(parts, mesh, "a hand waving", config, build_pipeline(parts))
    assert guided_record["hand_token_positions"] == [2, 3]
    assert len(guided_record["attention_loss"]) == 3  # the start latent and the latents of steps 1 and 2
    assert "attention_loss" not in record and not np.array_equal(plain[0], guided[0])


def test_inference_errors_name_the_problem(tiny_sd, tmp_path):
    _, _, ckpt = tiny_sd
    with pytest.raises(SystemExit, match="modalities file not found"):
        inference(["--sample_path", str(tmp_path / "none.json"), "--weights", str(ckpt), *FAST])
    (tmp_path / "samples").mkdir()
    manifest = tmp_path / "samples" / "modalities.json"
    manifest.write_text('{"mesh": "samples/mesh/a.jpg", "text": "samples/text/a.txt"}\n')
    with pytest.raises(SystemExit, match="modalities.json:1: 'mesh' file samples/mesh/a.jpg not found"):
        inference(["--sample_path", str(manifest), "--weights", str(ckpt), *FAST])
    samples = fixture_path("attentionhand", "samples", "modalities.json")
    with pytest.raises(SystemExit, match="weights not found.*attentionhand.ckpt"):
        inference(["--sample_path", str(samples), "--weights", str(tmp_path / "weights" / "attentionhand.ckpt"),
                   "--out", str(tmp_path / "o"), *FAST])


def test_train_script_checkpoints_resumes_and_exports(tiny_sd, attentionhand_modalities, tmp_path):
    _, folder, _ = tiny_sd
    output = tmp_path / "run"
    overrides = ["method=attentionhand", f"trainer.output={output}", "trainer.max_steps=2", "trainer.checkpoint_every_steps=1",
                 "trainer.accelerator=cpu", f"attentionhand.data={attentionhand_modalities}", f"attentionhand.init_checkpoint={folder}",
                 "attentionhand.image_size=64", "attentionhand.batch_size=2", "attentionhand.log_images_every=2",
                 "attentionhand.log_sampling_steps=2", "attentionhand.lr=1e-3"]
    config = "configs/attentionhand/train_fast.yaml"
    train(["--config", config, *overrides])  # bf16-mixed in the file: 32-true without CUDA
    checkpoint = torch.load(output / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 2
    assert checkpoint["state_dict"] and all(k.startswith("controlnet.") for k in checkpoint["state_dict"])  # trainable only
    assert (output / "images" / "step_000002.png").is_file() and (output / "controlnet" / "config.json").is_file()
    trained = ControlNetModel.from_pretrained(output / "controlnet", local_files_only=True)
    with pytest.raises(SystemExit):  # an existing run is neither replaced nor mixed without a flag
        train(["--config", config, *overrides])
    train(["--config", config, *overrides[:2], "trainer.max_steps=3", *overrides[3:], "--resume"])
    resumed = torch.load(output / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["global_step"] == 3
    key = "controlnet.controlnet_mid_block.weight"
    assert not torch.equal(resumed["state_dict"][key], checkpoint["state_dict"][key])
    torch.testing.assert_close(checkpoint["state_dict"][key], trained.controlnet_mid_block.weight)


def test_release_prompt_quantisation_and_hint(tmp_path):
    """Facts of the release's inference.py: the prompt string, truncation to uint8, the grey hint's resizes."""
    assert full_prompt("a hand", "") == "a hand, " and full_prompt("a hand", "best quality") == "a hand, best quality"
    decoded = torch.tensor([-1.2, -1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 1.3]).view(1, 1, 1, 8).repeat(1, 3, 1, 1)
    (image,) = quantise_images(decoded.permute(0, 1, 3, 2))
    assert image[:, 0, 0].tolist() == [0, 0, 0, 127, 191, 254, 255, 255]  # 127.5 -> 127, 254.87 -> 254: truncated

    rng = np.random.default_rng(0)
    mesh = (rng.random((300, 200)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "mesh.png"), np.stack([mesh, mesh // 2, 255 - mesh], -1))
    grey = read_mesh_hint(tmp_path / "mesh.png")
    expected_grey = cv2.resize(cv2.imread(str(tmp_path / "mesh.png"), cv2.IMREAD_GRAYSCALE), (512, 512),
                               interpolation=cv2.INTER_LINEAR)
    assert grey.shape == (512, 512) and np.array_equal(grey, expected_grey)
    for size, interpolation in ((128, cv2.INTER_AREA), (512, cv2.INTER_AREA), (640, cv2.INTER_LANCZOS4)):
        hint = control_image(grey, size)
        expected = cv2.resize(grey, (size, size), interpolation=interpolation)
        assert hint.shape == (1, 3, size, size)
        assert torch.equal(hint[0, 1], torch.from_numpy(expected).float() / 255)
    assert torch.equal(control_image(grey, 512)[0, 0], torch.from_numpy(grey).float() / 255)  # 512: unchanged
    with pytest.raises(ValueError, match="multiple of 64"):
        control_image(grey, 100)


def test_initial_noise_is_drawn_on_the_sampling_device_after_seeding(tiny_sd):
    """The release seeds and then draws torch.randn on the model's device; with the CPU model that is the CPU
    stream of the seed, and the record says where the noise came from."""
    parts, _, _ = tiny_sd
    mesh = np.zeros((64, 64), np.uint8)
    mesh[16:48, 20:44] = 200
    seen = {}
    unet_forward = parts.unet.forward

    def recording(sample, *args, **kwargs):
        seen.setdefault("x_T", sample[:1].clone())  # the first call sees [uncond; cond] of x_T
        return unet_forward(sample, *args, **kwargs)

    parts.unet.forward = recording
    try:
        _, record = sample_images(parts, mesh, "a hand", SamplingConfig(steps=2, num_samples=1, image_size=64, seed=7))
    finally:
        parts.unet.forward = unet_forward
    torch.manual_seed(7)
    expected = torch.randn(1, parts.unet.config.in_channels, 8, 8)
    torch.testing.assert_close(seen["x_T"], expected * parts.sampling_scheduler().init_noise_sigma)
    assert record["noise_device"] == "cpu" and record["seed"] == 7 and record["prompt"] == "a hand, "
    with pytest.raises(ValueError, match="noise_device"):
        SamplingConfig(noise_device="gpu")
