"""Shared test set-up: offline hubs, the shared fixtures folder, MANO-format model files written from the built-in hand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FIXTURES = (Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures").resolve()


def fixture_path(*parts: str) -> Path:
    """Path inside ../shared/fixtures, skipping the test when the folder is absent (a user's clone has none)."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixture {path} not present (only CI and developer machines have ../shared/fixtures)")
    return path


@pytest.fixture(scope="session")
def mano_dir(tmp_path_factory) -> Path:
    """A folder with MANO_RIGHT.pkl / MANO_LEFT.pkl in the official format, written from the built-in hand."""
    from hands.mano.builtin import builtin_model
    from hands.mano.model_file import save_mano_file

    folder = tmp_path_factory.mktemp("mano")
    for side in ("right", "left"):
        save_mano_file(builtin_model(side), folder / f"MANO_{side.upper()}.pkl")
    return folder


#: A small synthetic InterHand-format set: 24 images of 96 x 128 from 3 cameras, all hand types.
SMALL_SYNTHETIC = dict(num_images=24, image_width=96, image_height=128, cameras_per_capture=3, frames_per_sequence=2,
                       sequences_per_capture=2, hand_type_weights=[1.0, 1.0, 2.0])


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A synthetic dataset in the InterHand2.6M format, written by scripts/make_synthetic.py."""
    import json

    from scripts.make_synthetic import main as make_synthetic

    root = tmp_path_factory.mktemp("interhand")
    make_synthetic(["--output", str(root), "--device", "cpu"] + [f"{k}={json.dumps(v)}" for k, v in SMALL_SYNTHETIC.items()])
    return root


@pytest.fixture(scope="session")
def attentionhand_modalities(synthetic_root, tmp_path_factory) -> Path:
    """AttentionHand training modalities (rgb, mesh, text, bbox) of 8 synthetic samples, 96 x 96."""
    from hands.attentionhand.interhand_inputs import export_attentionhand
    from hands.data.interhand.dataset import InterHandDataConfig, InterHandDataset
    from hands.mano import build_mano

    layers = {side: build_mano(side, pose_convention="flat") for side in ("right", "left")}
    config = InterHandDataConfig(root=str(synthetic_root), image_size=96, bbox_scale=2.0, require_mano=True)
    return export_attentionhand(InterHandDataset(config, mano_layers=layers), tmp_path_factory.mktemp("ah") / "data", limit=8)


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """Random Stable Diffusion parts with SD1.5's layout at ~1 % width, and the same written as a diffusers folder
    and as an ldm-format checkpoint (ControlNet under control_model.*): (parts, folder, ckpt)."""
    import torch

    from hands.attentionhand.components import save_parts, tiny_parts
    from hands.attentionhand.ldm_checkpoint import to_ldm_state_dict

    parts = tiny_parts(seed=0)
    torch.nn.init.normal_(parts.controlnet.controlnet_mid_block.weight, std=0.02)  # zero convs would hide the control path
    for conv in parts.controlnet.controlnet_down_blocks:
        torch.nn.init.normal_(conv.weight, std=0.02)
    root = tmp_path_factory.mktemp("tiny_sd")
    folder = save_parts(parts, root / "diffusers")
    ckpt = root / "tiny.ckpt"
    torch.save({"state_dict": to_ldm_state_dict(parts)}, ckpt)
    return parts, folder, ckpt


@pytest.fixture(scope="session")
def tiny_acr_checkpoint(tmp_path_factory) -> Path:
    """A small random ACRNet saved like a `hands train` checkpoint (weights under `model.`)."""
    import torch

    from hands.acr.model import ACRNet, ACRNetConfig

    torch.manual_seed(0)
    model = ACRNet(ACRNetConfig(backbone_width=8, head_width=16, pose_width=32, shape_width=16))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


@pytest.fixture
def toy_method():
    """`toyline` (tests/toy_method.py) in the method registry for one test."""
    from hands.registry import MethodSpec, register_method, unregister_method
    from tests.toy_method import ToyConfig, ToyModule, export_toy

    spec = register_method(MethodSpec("toyline", "a line", train_config=ToyConfig, module=ToyModule, export=export_toy))
    yield spec
    unregister_method(spec.name)
