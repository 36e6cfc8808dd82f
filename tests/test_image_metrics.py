"""Image metrics against independent implementations: skimage SSIM, a hand-written LPIPS, closed-form FID/KID."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from skimage.metrics import structural_similarity

from hands.eval.image_metrics import LPIPS, InceptionFeatures, MissingWeightsError, frechet_distance, kernel_inception_distance, psnr, ssim

F64 = torch.float64


def test_psnr_of_a_constant_offset():
    a = torch.rand(2, 3, 16, 16, dtype=F64) * 0.5
    assert torch.allclose(psnr(a + 0.1, a), torch.full((2,), 10 * math.log10(1 / 0.01), dtype=F64))


def test_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(2, 3, 40, 50))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    ours = ssim(torch.tensor(noisy), torch.tensor(clean))
    for b in range(2):
        reference = structural_similarity(noisy[b], clean[b], channel_axis=0, data_range=1.0, gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False)
        assert abs(ours[b].item() - reference) < 1e-9
    assert torch.allclose(ssim(torch.tensor(clean), torch.tensor(clean)), torch.ones(2, dtype=F64))


def test_lpips_matches_a_direct_computation(tmp_path):
    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet(weights=None)
    weights = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(alexnet.state_dict(), weights)
    metric = LPIPS(weights)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    ours = metric(x, y)

    import lpips

    linear = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu", weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def features(image):
        h, taps = (image * 2 - 1 - shift) / scale, []
        for i, layer in enumerate(alexnet.features):
            h = layer(h)
            if i in (1, 4, 7, 9, 11):
                taps.append(h / (h.norm(dim=1, keepdim=True) + 1e-10))
        return taps

    with torch.no_grad():
        expected = sum((linear[f"lin{k}.model.1.weight"] * (a - b) ** 2).sum(1).mean((1, 2))
                       for k, (a, b) in enumerate(zip(features(x), features(y))))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    assert metric(x, x).abs().max() < 1e-6
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth"):
        LPIPS(tmp_path / "missing.pth")


def test_lpips_vgg_backbone_loads_torchvision_weights(tmp_path):
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None)
    weights = tmp_path / "vgg16-397923af.pth"
    torch.save(vgg.state_dict(), weights)
    metric = LPIPS(weights, net="vgg")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():  # the first lpips slice is torchvision's first two layers (conv, relu) on the scaled input
        scaled = metric.model.scaling_layer(x * 2 - 1)
        torch.testing.assert_close(metric.model.net.slice1(scaled), vgg.features[:4](scaled))
    assert metric(x, x).abs().max() < 1e-6 and metric(x, torch.rand(1, 3, 32, 32)).item() > 0
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        LPIPS(tmp_path / "missing.pth", net="vgg")


def test_frechet_distance_against_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(3000, 6)) @ rng.normal(size=(6, 6)) + 0.5
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr (Sa Sb)^(1/2) = Tr (Sa^(1/2) Sb Sa^(1/2))^(1/2), computed here with symmetric eigen-decompositions
    w, V = np.linalg.eigh(sa)
    root_a = V @ np.diag(np.sqrt(w)) @ V.T
    inner = np.linalg.eigvalsh(root_a @ sb @ root_a)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(inner.clip(0)).sum()
    assert abs(frechet_distance(a, b) - expected) < 1e-8 * max(1, expected)
    assert abs(frechet_distance(a, a)) < 1e-6


def test_kid_matches_a_double_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.3
    k = lambda u, v: (u @ v / 5 + 1) ** 3  # noqa: E731
    n = 12
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(n)) / (n * n)
    mean, std = kernel_inception_distance(x, y, subset_size=n, subsets=3)
    assert abs(mean - (xx + yy - 2 * xy)) < 1e-9 and std < 1e-9


def test_inception_features_run_with_supplied_weights(tmp_path):
    torch.manual_seed(0)
    random_state = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=True).state_dict()
    extractor = InceptionFeatures(random_state)
    images = torch.rand(2, 3, 64, 64)
    features = extractor(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    torch.testing.assert_close(extractor(images), features)
    torch.save(random_state, tmp_path / "inception.pth")
    torch.testing.assert_close(InceptionFeatures(tmp_path / "inception.pth")(images), features)
    with pytest.raises(MissingWeightsError, match="pt_inception-2015-12-05"):
        InceptionFeatures(tmp_path / "nothing.pth")
