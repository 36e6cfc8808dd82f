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
