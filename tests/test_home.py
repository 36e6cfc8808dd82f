"""HANDS_HOME: one folder for weights and caches, the checkout's checkpoints/ by default when run from it."""

import subprocess
import sys
from pathlib import Path

import pytest

from hands.io.home import HOME_FILES, cache_dir, hands_home, home_file
from hands.mano.model_file import resolve_model_path

ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_holds_its_own_home(monkeypatch):
    monkeypatch.delenv("HANDS_HOME", raising=False)
    assert hands_home() == ROOT / "checkpoints"


def test_hands_home_moves_every_default(tmp_path):
    code = ("from hands.acr.checkpoint import DEFAULT_CHECKPOINT; from hands.fit.landmarker import default_task_path; "
            "from hands.eval.image_metrics import METRICS_DIR; from hands.cli.avatar import DEFAULT_PRIOR; "
            "print(DEFAULT_CHECKPOINT, default_task_path(), METRICS_DIR, DEFAULT_PRIOR)")
    env = {"HANDS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "acr" / "wild.pkl"), str(tmp_path / "mediapipe" / "hand_landmarker.task"),
                                     str(tmp_path / "metrics"), str(tmp_path / "ohta" / "pretrained_prior_learning.tar")]


def test_home_paths_and_the_mano_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDS_HOME", str(tmp_path))
    monkeypatch.delenv("HANDS_MANO_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "mano").mkdir(parents=True)
    (tmp_path / "models" / "mano" / "MANO_RIGHT.pkl").write_bytes(b"")  # the working folder is never looked at
    monkeypatch.setattr("hands.mano.model_file.DEFAULT_MANO_DIR", tmp_path / "checkout" / "models" / "mano")
    assert home_file("acr", "wild.pkl") == tmp_path / "acr" / "wild.pkl" and cache_dir("x") == tmp_path / "cache" / "x"
    assert resolve_model_path("right", None) is None
    (tmp_path / "mano").mkdir()
    (tmp_path / "mano" / "MANO_RIGHT.pkl").write_bytes(b"")
    assert resolve_model_path("right", None) == tmp_path / "mano" / "MANO_RIGHT.pkl"
    monkeypatch.setenv("HANDS_MANO_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="HANDS_MANO_DIR"):  # set but empty: an error, not the built-in hand
        resolve_model_path("right", None)


def test_the_readme_lists_every_home_file():
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in HOME_FILES)
