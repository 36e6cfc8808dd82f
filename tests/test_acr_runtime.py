"""hands.acr.runtime: every CPU runtime gives the eager network's outputs within 1e-4 of their range."""

import numpy as np
import pytest
import torch

from hands.acr.model import ACRNet, ACRNetConfig
from hands.acr.postprocess import PostprocessConfig
from hands.acr.predictor import ACRPredictor
from hands.acr.runtime import FlatOutputs, build_runtime, onnx_available

TINY = ACRNetConfig(backbone_width=8, head_width=16, pose_width=32, shape_width=16)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return ACRNet(TINY).eval()


def relative_difference(runtime, model, x) -> float:
    with torch.no_grad():
        reference = FlatOutputs(model)(x)
        maps = runtime(x)
    outputs = (maps.part_logits, *(getattr(maps, k)[s] for k in ("params", "centre", "prior") for s in ("right", "left")))
    assert [o.shape for o in outputs] == [r.shape for r in reference]
    return max(float((a - b).abs().max()) for a, b in zip(outputs, reference)) / max(float(r.abs().max()) for r in reference)


@pytest.mark.parametrize("name", ["eager", "channels_last", "onnx"])
def test_runtime_matches_eager(name, tiny_model, tmp_path):
    if name == "onnx" and not onnx_available():
        pytest.skip("onnx / onnxruntime not installed (requirements.txt pins them)")
    runtime = build_runtime(tiny_model, name, 128, "cpu", tmp_path)
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    assert relative_difference(runtime, tiny_model, x) < 1e-4
    if name == "onnx":
        exported = list(tmp_path.glob("acr_*_128.onnx"))
        assert len(exported) == 1 and not list(tmp_path.glob(".*.tmp"))
        mtime = exported[0].stat().st_mtime_ns
        build_runtime(tiny_model, "onnx", 128, "cpu", tmp_path)  # the same weights: the export is reused
        assert exported[0].stat().st_mtime_ns == mtime
        with pytest.raises(ValueError, match="128x128"):
            runtime(torch.rand(1, 3, 96, 96))


@pytest.mark.slow
def test_compiled_runtime_matches_eager(tiny_model):
    runtime = build_runtime(tiny_model, "compile", 64)
    assert relative_difference(runtime, tiny_model, torch.rand(1, 3, 64, 64)) < 1e-4


def test_predictor_gives_the_same_hands_with_the_onnx_runtime(tiny_model, tmp_path, monkeypatch):
    if not onnx_available():
        pytest.skip("onnx / onnxruntime not installed")
    monkeypatch.setenv("HANDS_HOME", str(tmp_path))
    config = PostprocessConfig(threshold=-1e9, placement="closed_form")
    eager = ACRPredictor(tiny_model, 128, config)
    fast = ACRPredictor(tiny_model, 128, config, runtime="auto")
    image = np.random.default_rng(0).integers(0, 255, (96, 160, 3), dtype=np.uint8)
    a, b = eager.predict(image), fast.predict(image)
    assert [h.side for h in a] == [h.side for h in b] and a
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.vertices, y.vertices, atol=1e-4)
        np.testing.assert_allclose(x.keypoints_2d, y.keypoints_2d, atol=1e-2)
    assert list((tmp_path / "cache" / "acr_onnx").glob("*.onnx"))
    with pytest.raises(ValueError, match="runtime should be one of"):
        build_runtime(tiny_model, "tensorrt", 128)


def test_building_a_runtime_leaves_the_model_as_it_was(tiny_model, tmp_path):
    before = {name: t.clone() for name, t in tiny_model.state_dict().items()}
    layouts = [p.is_contiguous() for p in tiny_model.parameters()]
    build_runtime(tiny_model, "channels_last", 128)
    if onnx_available():
        build_runtime(tiny_model, "onnx", 128, "cpu", tmp_path)
    assert [p.is_contiguous() for p in tiny_model.parameters()] == layouts and not tiny_model.training
    for name, t in tiny_model.state_dict().items():
        assert torch.equal(t, before[name]) and t.is_contiguous() == before[name].is_contiguous(), name
