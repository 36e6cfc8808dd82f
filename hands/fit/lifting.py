"""Learned lifting: a small MLP from the detector's 21 keypoints and metric landmarks to MANO parameters.

It is trained by the project, for a given hand model, on hands sampled from the MANO pose space (the fit's PCA
prior clamped to the joint limits, both sides, random shapes, orientations and cameras) seen through simulated
detector noise and occlusion, with the project's own MANO layer (fingertips-only skinning). Inputs per hand:
the keypoints normalised to their box (42), the landmarks centred and in decimeters (63), the box's viewing ray
and size over the focal length (3), the side (1). Outputs: the camera-frame orientation (6D), the articulation
as the prior's 45 PCA coefficients in units of their prior deviation, betas (10). The translation then follows
from the keypoints by linear least squares (`hands.geometry.pnp.solve_translation`).

Weights are keyed by the hand model (`model_digest`): for the built-in hand they ship in `hands/fit/assets/`;
for a user's official MANO files they are trained on first use (about two minutes on two CPU cores) and cached
in `$HANDS_HOME/lifting/`. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from hands.fit.mano_fit import FitConfig, PosePrior, project
from hands.fit.solver import HandParameters
from hands.geometry.pnp import solve_translation
from hands.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
)
from hands.io.atomic import atomic_path
from hands.io.home import home_file
from hands.mano.layer import ManoLayer
from hands.mano.limits import clamp_to_limits

log = logging.getLogger(__name__)

VERSION = 1  # bump when the features, outputs or training distribution change: cached weights are retrained
ASSETS = Path(__file__).resolve().parent / "assets"
NUM_FEATURES = 42 + 63 + 3 + 1
IMAGE_SIZE = 256.0  # pixels of the training cameras' images (only ratios matter)


@dataclass
class LiftingConfig:
    """The lifting network and its training on sampled hands."""

    hidden: int = 256
    """Width of the MLP's hidden layers."""
    depth: int = 3
    """Hidden layers."""
    steps: int = 4000
    """Training steps (Adam, cosine decay)."""
    batch: int = 512
    lr: float = 1e-3
    pose_scale: float = 1.0
    """Standard deviation (radians) of the first sampled PCA coefficient (later ones decay by 0.8 each)."""
    keypoint_noise: float = 0.015
    """Detector noise of the 2D keypoints, as a fraction of the hand's box."""
    occlusion: float = 0.3
    """Share of hands with 1-5 keypoints displaced by 8% of the box (occluded or mislocated joints)."""
    landmark_noise: float = 0.004
    """Noise of the metric landmarks, meters."""
    seed: int = 0


def model_digest(layers: dict[str, ManoLayer]) -> str:
    """A digest (hex) of the hand models' arrays: the same files give the same weights."""
    digest = hashlib.sha256(f"lifting-v{VERSION}".encode())
    for side in ("right", "left"):
        layer = layers[side]
        for name in ("v_template", "shapedirs", "J_regressor", "weights", "hand_components", "hands_mean"):
            digest.update(getattr(layer, name).detach().double().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def lifting_features(keypoints: Tensor, landmarks: Tensor, K: Tensor, left: Tensor) -> Tensor:
    """(B, NUM_FEATURES) network inputs from keypoints (B,21,2) pixels, landmarks (B,21,3) meters about any
    centre, cameras K (B,3,3) and a (B,) bool of left hands."""
    lo, hi = keypoints.min(1).values, keypoints.max(1).values
    centre, size = (lo + hi) / 2, (hi - lo).max(-1).values.clamp_min(1.0)
    focal = (K[:, 0, 0] + K[:, 1, 1]) / 2
    ray = (centre - K[:, :2, 2]) / focal[:, None]
    normalised = (keypoints - centre[:, None]) / size[:, None, None]
    centred = (landmarks - landmarks.mean(1, keepdim=True)) * 10
    return torch.cat([normalised.flatten(1), centred.flatten(1), ray, (size / focal)[:, None] * 4,
                      left.to(keypoints.dtype)[:, None] * 2 - 1], 1)


class LiftingNet(nn.Module):
    """MLP: features (B, NUM_FEATURES) -> orientation 6D (B,6), PCA coefficients / sigma (B,45), betas (B,10)."""

    def __init__(self, hidden: int = 256, depth: int = 3, num_betas: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = NUM_FEATURES
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, 6 + 45 + num_betas)
        self.num_betas = num_betas
        with torch.no_grad():  # start at the identity rotation, mean pose, mean shape
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            self.head.bias[:6] = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.head(self.body(features))
        # Bounded like the training hands: PCA coefficients within 4 prior deviations, betas within +-3.
        return out[:, :6], 4 * torch.tanh(out[:, 6:51] / 4), 3 * torch.tanh(out[:, 51:] / 3)


class HandSampler:
    """Random hands of both sides seen by random cameras, with simulated detections (float32 on the CPU)."""

    def __init__(self, layers: dict[str, ManoLayer], config: LiftingConfig) -> None:
        self.layers, self.config = layers, config
        fit = FitConfig()
        self.priors = {side: PosePrior(layer, fit) for side, layer in layers.items()}
        self.generator = torch.Generator().manual_seed(config.seed)

    def _randn(self, *shape: int) -> Tensor:
        return torch.randn(*shape, generator=self.generator, dtype=torch.float64)

    def _rand(self, *shape: int) -> Tensor:
        return torch.rand(*shape, generator=self.generator, dtype=torch.float64)

    def draw(self, batch: int, side: str) -> dict[str, Tensor]:
        """Random hands and cameras: `hand_pose` (B,45) within the joint limits, `rotation` (B,3,3), `betas`,
        `transl` (B,3) meters and `focal` (B,) pixels of a 256 px image, the hand filling 25-90% of it."""
        layer, prior = self.layers[side], self.priors[side]
        dtype = prior.mean.dtype
        sigma = self.config.pose_scale * 0.8 ** torch.arange(45, dtype=torch.float64)
        drawn = prior.pose((self._randn(batch, 45) * sigma.clamp_min(0.05)).to(dtype))
        pose = torch.as_tensor(clamp_to_limits(drawn.cpu().numpy(), side), dtype=dtype)
        rotation = quaternion_to_matrix(self._randn(batch, 4)).to(dtype)
        betas = (self._randn(batch, layer.num_betas) * 1.2).clamp(-3, 3).to(dtype)
        with torch.no_grad():
            joints = layer(global_orient=matrix_to_axis_angle(rotation), hand_pose=pose, betas=betas,
                           joints_only=True).joints.double()
        focal = IMAGE_SIZE * (0.8 + 2.2 * self._rand(batch))
        span = (joints.amax(1) - joints.amin(1))[:, :2].max(-1).values
        fill = 0.25 + 0.65 * self._rand(batch)
        depth = focal * span / (fill * IMAGE_SIZE)
        where = (self._rand(batch, 2) - 0.5) * (1 - fill[:, None]) * IMAGE_SIZE / focal[:, None] * depth[:, None]
        transl = torch.cat([where, depth[:, None]], 1) - joints.mean(1)
        return {"hand_pose": pose, "rotation": rotation, "betas": betas, "transl": transl, "focal": focal}

    def observe(self, hands: dict[str, Tensor], side: str) -> dict[str, Tensor]:
        """`hands` (as `draw` returns) seen through the simulated detector: adds `features`, `keypoints`
        (B,21,2), `landmarks` (B,21,3), `K` (B,3,3), `joints` (B,21,3) relative to the wrist, `coefficients`
        (B,45) in units of the prior's sigma."""
        c, layer, prior = self.config, self.layers[side], self.priors[side]
        batch = hands["hand_pose"].shape[0]
        with torch.no_grad():
            joints = layer(global_orient=matrix_to_axis_angle(hands["rotation"]), hand_pose=hands["hand_pose"],
                           betas=hands["betas"], joints_only=True).joints.double()
        K = torch.zeros(batch, 3, 3, dtype=torch.float64)
        K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = hands["focal"], hands["focal"], 1.0
        K[:, :2, 2] = (IMAGE_SIZE - 1) / 2
        keypoints = project(joints + hands["transl"][:, None], K)
        box = (keypoints.amax(1) - keypoints.amin(1)).max(-1).values[:, None, None]
        keypoints = keypoints + self._randn(batch, 21, 2) * c.keypoint_noise * box
        occluded = (self._rand(batch) < c.occlusion)[:, None] & (self._rand(batch, 21) < 3 / 21)
        keypoints = keypoints + occluded[..., None] * self._randn(batch, 21, 2) * 0.08 * box
        scale = 1 + 0.08 * self._randn(batch, 1, 1)  # the detector's landmarks are a generic hand's size
        landmarks = (joints - joints.mean(1, keepdim=True)) * scale + self._randn(batch, 21, 3) * c.landmark_noise
        left = torch.full((batch,), side == "left")
        coefficients = (hands["hand_pose"] - prior.mean) @ prior.directions.T / prior.sigma
        return {**hands, "features": lifting_features(keypoints, landmarks, K, left), "keypoints": keypoints,
                "landmarks": landmarks, "K": K, "joints": joints - joints[:, :1], "coefficients": coefficients.double()}

    def sample(self, batch: int, side: str) -> dict[str, Tensor]:
        """A training batch of one side: `observe(draw(batch, side))`."""
        return self.observe(self.draw(batch, side), side)

    def sequence(self, frames: int, side: str, turn: float = 1.0) -> dict[str, Tensor]:
        """`frames` consecutive frames of one hand (one shape and camera) moving smoothly between two random
        hands (orientation turned by up to `turn` radians), seen through the simulated detector."""
        a, b = self.draw(1, side), self.draw(1, side)
        t = torch.linspace(0, 1, frames, dtype=torch.float64)
        t = t * t * (3 - 2 * t)  # ease in and out
        axis = self._randn(3)
        turn_by = axis_angle_to_matrix(axis / axis.norm() * turn * t[:, None]).to(a["rotation"])
        mix = lambda x, y: x + (y - x) * t.view(-1, *[1] * (x.dim() - 1))  # noqa: E731
        hands = {"hand_pose": mix(a["hand_pose"], b["hand_pose"]), "rotation": turn_by @ a["rotation"],
                 "betas": a["betas"].expand(frames, -1), "transl": mix(a["transl"], b["transl"] * 0.3 + a["transl"] * 0.7),
                 "focal": a["focal"].expand(frames)}
        return self.observe(hands, side)


class KeypointLifter:
    """The trained network with the hand models it was trained for: detections -> `HandParameters`."""

    def __init__(self, net: LiftingNet, layers: dict[str, ManoLayer]) -> None:
        self.net = net.eval()
        self.layers = layers
        self.priors = {side: PosePrior(layer, FitConfig()) for side, layer in layers.items()}

    def decode(self, outputs: tuple[Tensor, Tensor, Tensor], side: str) -> tuple[Tensor, Tensor, Tensor]:
        """Network outputs -> global_orient (B,3), hand_pose (B,45), betas (B,10) in the layer's dtype."""
        rot6d, coefficients, betas = outputs
        prior = self.priors[side]
        dtype = prior.mean.dtype
        rotation = rotation_6d_to_matrix(rot6d.to(dtype))
        return matrix_to_axis_angle(rotation), prior.pose(coefficients.to(dtype) * prior.sigma), betas.to(dtype)

    @torch.no_grad()
    def lift(self, keypoints: Tensor, landmarks: Tensor, K: Tensor, side: str) -> HandParameters:
        """MANO parameters of B hands of one side from keypoints (B,21,2) pixels, landmarks (B,21,3) meters and
        cameras K (B,3,3); the translation solves the projection of the lifted hand onto the keypoints."""
        layer = self.layers[side]
        dtype = layer.v_template.dtype
        keypoints, landmarks, K = (t.to(layer.v_template.device, dtype) for t in (keypoints, landmarks, K))
        left = torch.full((keypoints.shape[0],), side == "left", device=keypoints.device)
        features = lifting_features(keypoints, landmarks, K, left).to(next(self.net.parameters()))
        orient, pose, betas = self.decode(self.net(features), side)
        joints = layer(global_orient=orient, hand_pose=pose, betas=betas, joints_only=True).joints
        transl = solve_translation(joints, keypoints, K)
        transl[:, 2] = transl[:, 2].clamp_min(0.05 - joints[..., 2].min(1).values)
        return HandParameters(orient, pose, betas, transl)


def lifting_loss(net: LiftingNet, lifter: KeypointLifter, batch: dict[str, Tensor], side: str) -> Tensor:
    """Root-relative joint error (cm, squared) + rotation, coefficient and shape terms of one side's batch."""
    rot6d, coefficients, betas = net(batch["features"].float())
    rotation = rotation_6d_to_matrix(rot6d.double())
    orient, pose, betas64 = lifter.decode((rot6d, coefficients, betas), side)
    joints = lifter.layers[side](global_orient=orient, hand_pose=pose, betas=betas64, joints_only=True).joints
    joints = joints - joints[:, :1]
    joint_term = ((joints - batch["joints"]) * 100).pow(2).sum(-1).mean()
    rotation_term = (rotation - batch["rotation"]).pow(2).sum((-1, -2)).mean()
    pose_term = (coefficients.double() - batch["coefficients"]).pow(2).mean()
    shape_term = (betas.double() - batch["betas"]).pow(2).mean()
    return joint_term + rotation_term + 0.1 * pose_term + 0.1 * shape_term


def train_lifter(layers: dict[str, ManoLayer], config: LiftingConfig | None = None,
                 progress: bool = True) -> tuple[LiftingNet, list[float]]:
    """Train a `LiftingNet` for these hand models (both sides); returns it and the mean loss of every 50 steps."""
    from tqdm import tqdm

    config = config or LiftingConfig()
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's random state
        torch.manual_seed(config.seed)
        net = LiftingNet(config.hidden, config.depth, layers["right"].num_betas)
    lifter = KeypointLifter(net, layers)
    sampler = HandSampler(layers, config)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps, eta_min=config.lr * 0.02)
    history, running = [], 0.0
    net.train()
    for step in tqdm(range(config.steps), desc="training the keypoint lifter", disable=not progress, unit="step"):
        loss = sum(lifting_loss(net, lifter, sampler.sample(config.batch // 2, side), side) for side in ("right", "left"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        running += float(loss.detach())
        if (step + 1) % 50 == 0 or step + 1 == config.steps:
            history.append(running / ((step % 50) + 1))
            running = 0.0
    return net.eval(), history


def save_lifter(net: LiftingNet, config: LiftingConfig, digest: str, path: str | Path, overwrite: bool = False) -> Path:
    """Write the weights as safetensors (float32) with the config and model digest in its metadata."""
    from safetensors.torch import save_file

    metadata = {"digest": digest, "version": str(VERSION), **{k: str(v) for k, v in asdict(config).items()}}
    with atomic_path(path, overwrite) as tmp:
        save_file({k: v.detach().float().contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata)
    return Path(path)


def read_lifter(path: str | Path, digest: str) -> LiftingNet | None:
    """The network stored at `path` if it was trained for `digest` (else None); a corrupt file is an error."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except Exception as error:  # noqa: BLE001 - safetensors raises several kinds for a damaged file
        raise ValueError(f"{path}: not a readable lifting network ({error}); delete it to retrain") from None
    if metadata.get("digest") != digest:
        return None
    net = LiftingNet(int(metadata.get("hidden", 256)), int(metadata.get("depth", 3)), state["head.bias"].shape[0] - 51)
    net.load_state_dict(state)
    return net.eval()


def lifter_paths(digest: str) -> tuple[Path, Path]:
    """(shipped asset, cache file) where the weights for a model digest are looked for."""
    return ASSETS / f"lifting_{digest}.safetensors", home_file("lifting", f"lifting_{digest}.safetensors")


def load_lifter(layers: dict[str, ManoLayer], config: LiftingConfig | None = None) -> KeypointLifter:
    """The lifter for these hand models: shipped, cached, or trained now (logged, once) and cached."""
    digest = model_digest(layers)
    shipped, cached = lifter_paths(digest)
    for path in (shipped, cached):
        net = read_lifter(path, digest)
        if net is not None:
            return KeypointLifter(net, layers)
    config = config or LiftingConfig()
    log.info("training the keypoint lifter for this hand model once (%d steps, about %d min on 2 CPU cores); "
             "it is cached as %s", config.steps, math.ceil(config.steps / 2000), cached)
    net, history = train_lifter(layers, config)
    log.info("keypoint lifter trained: loss %.3f -> %.3f", history[0], history[-1])
    cached.parent.mkdir(parents=True, exist_ok=True)
    save_lifter(net, config, digest, cached, overwrite=True)
    return KeypointLifter(net, layers)
