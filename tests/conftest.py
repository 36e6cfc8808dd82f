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
