"""Image metrics: PSNR, SSIM, LPIPS, and FID / KID from Inception features.

Images are float tensors (B,3,H,W) in [0,1]. LPIPS and FID need network weights that cannot be downloaded here:
the user supplies the files (paths below); a missing file is a clear error saying which file and where it goes.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as nnf
from torch import Tensor

from hands.io.home import home_file

METRICS_DIR = home_file("metrics")
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"


class MissingWeightsError(FileNotFoundError):
    """A metric network's weight file is not where it is expected."""


def _weights_file(path: str | Path | None, default_name: str, url: str, what: str) -> Path:
    path = Path(path) if path else METRICS_DIR / default_name
    if not path.is_file():
        raise MissingWeightsError(f"{what} needs the weight file {default_name}, not found at {path}. Download it on a "
                                  f"machine with internet access ({url}) and put it at {METRICS_DIR / default_name} "
                                  "or pass its path.")
    return path


def psnr(pred: Tensor, target: Tensor, max_value: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio (B,) in dB of images (B,C,H,W)."""
    mse = ((pred - target) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(max_value ** 2 / mse.clamp_min(1e-20))


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64) -> Tensor:
    """Normalised 1D Gaussian (size,)."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    window = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return window / window.sum()


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0, sigma: float = 1.5) -> Tensor:
    """Structural similarity (B,) with an 11x11 Gaussian window (Wang et al. 2004, K1 0.01, K2 0.03), averaged over
    the channels and the window positions that lie inside the image."""
    size = 2 * int(3.5 * sigma + 0.5) + 1
    g = gaussian_window(size, sigma, pred.dtype).to(pred.device)
    C = pred.shape[1]
    kernel_x = g.view(1, 1, 1, size).repeat(C, 1, 1, 1)
    kernel_y = g.view(1, 1, size, 1).repeat(C, 1, 1, 1)

    def blur(x: Tensor) -> Tensor:
        return nnf.conv2d(nnf.conv2d(x, kernel_x, groups=C), kernel_y, groups=C)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x ** 2
    var_y = blur(target * target) - mu_y ** 2
    cov = blur(pred * target) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


# Where each torchvision `features` layer sits in lpips's five slices, and how many weight/bias tensors they hold.
_LPIPS_SLICES = {
    "alex": (((1, range(0, 2)), (2, range(2, 5)), (3, range(5, 8)), (4, range(8, 10)), (5, range(10, 12))), 10),
    "vgg": (((1, range(0, 4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30))), 26),
}


class LPIPS(torch.nn.Module):
    """LPIPS distance (Zhang et al. 2018) with the AlexNet (default) or VGG16 backbone (OHTA's choice).

    The linear calibration layers ship with the `lpips` package; the backbone weights are torchvision's file
    `alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth` (`backbone_weights`, default checkpoints/metrics/).
    `backbone_weights=False` keeps a random backbone (tests only).
    """

    def __init__(self, backbone_weights: str | Path | None | bool = None, net: str = "alex") -> None:
        super().__init__()
        import lpips

        if net not in _LPIPS_SLICES:
            raise ValueError(f"LPIPS net: expected alex or vgg, got {net!r}")
        self.net = net
        with warnings.catch_warnings():  # lpips calls torchvision with its deprecated `pretrained` argument
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
        if backbone_weights is not False:
            name, url = (ALEXNET_FILE, ALEXNET_URL) if net == "alex" else (VGG16_FILE, VGG16_URL)
            path = _weights_file(backbone_weights or None, name, url, f"LPIPS ({net})")
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.model.net.load_state_dict(self.backbone_state(state, net))
        self.model.eval().requires_grad_(False)

    @staticmethod
    def backbone_state(torchvision_state: dict[str, Tensor], net: str = "alex") -> dict[str, Tensor]:
        """torchvision AlexNet/VGG16 state dict -> lpips's sliced backbone state dict (`features.i.*` -> `slicek.i.*`)."""
        slices, expected = _LPIPS_SLICES[net]
        state = {}
        for k, indices in slices:
            for i in indices:
                for param in ("weight", "bias"):
                    key = f"features.{i}.{param}"
                    if key in torchvision_state:
                        state[f"slice{k}.{i}.{param}"] = torchvision_state[key]
        if len(state) != expected:
            raise ValueError(f"not a torchvision {net} state dict: found {len(state)} of {expected} convolution tensors")
        return state

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Distances (B,) between images (B,3,H,W) in [0,1]."""
        return self.model(pred * 2 - 1, target * 2 - 1).flatten()


@contextlib.contextmanager
def _local_state_dict(state: dict[str, Tensor]):
    """Make pytorch-fid take its Inception weights from `state` instead of downloading them."""
    import pytorch_fid.inception as fid_inception

    original = fid_inception.load_state_dict_from_url
    fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        yield
    finally:
        fid_inception.load_state_dict_from_url = original


class InceptionFeatures(torch.nn.Module):
    """Features of the FID Inception network (pytorch-fid's port of the TF graph): the 2048-d pool (FID's), or
    pytorch-fid's smaller `dims` 64, 192, 768 (earlier blocks, pooled).

    `weights`: path of `pt_inception-2015-12-05-6726825d.pth` (default checkpoints/metrics/), or a state dict.
    """

    def __init__(self, weights: str | Path | dict | None = None, dims: int = 2048) -> None:
        super().__init__()
        from pytorch_fid.inception import InceptionV3

        if isinstance(weights, dict):
            state = weights
        else:
            path = _weights_file(weights, FID_INCEPTION_FILE, FID_INCEPTION_URL, "FID/KID")
            state = torch.load(path, map_location="cpu", weights_only=True)
        with _local_state_dict(state):
            if dims not in InceptionV3.BLOCK_INDEX_BY_DIM:
                raise ValueError(f"dims must be one of {sorted(InceptionV3.BLOCK_INDEX_BY_DIM)}, got {dims}")
            self.network = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[dims]], resize_input=True, normalize_input=True)
        self.network.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Images (B,3,H,W) in [0,1] -> features (B, dims), pooled to 1x1 as pytorch-fid does."""
        features = self.network(images)[0]
        if features.shape[-2:] != (1, 1):
            features = torch.nn.functional.adaptive_avg_pool2d(features, (1, 1))
        return features.flatten(1)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets (N,D), (M,D): |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))."""
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    sigma_a, sigma_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(root).all():  # singular product: regularise as pytorch-fid does
        offset = np.eye(len(sigma_a)) * 1e-6
        root = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(root))


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, subset_size: int = 1000,
                              subsets: int = 100, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets): unbiased MMD^2 with the kernel k(x, y) = (x.y / D + 1)^3 (Binkowski et al.)."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(features_a), len(features_b))
    d = features_a.shape[1]
    values = []
    for _ in range(subsets):
        x = features_a[rng.choice(len(features_a), m, replace=False)]
        y = features_b[rng.choice(len(features_b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))
