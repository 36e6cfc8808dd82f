"""OHTA prior learning: the texture field, albedo/shadow networks, identity codes, shape deformer and PairOF's
decoder learned on many hands (InterHand2.6M right hands, or a synthetic set) as a Lightning module.

Data: a folder of one-shot inputs (`hands prepare ohta --split train`), with captures.json giving each
input's capture (its identity row). Per sample, as the release: the crop composited over a random background colour,
2 patches of 32² (centred on the hand with p = 0.8, else on the box around it), the avatar posed with the deformer
driven by the capture's identity code. Losses (release weights): L1 + LPIPS (when its weights are present) on the
patches, 1 - soft IoU of the mesh silhouette against the mask dilated by 3 px (256²), occupancy MSE of the ray
samples against inside/outside of the sealed, deformed mesh (winding numbers on a random subset), and
0.1·mean|shadow - 1|. PairOF's encoders stay frozen; its decoder learns at a tenth of the rate.

Differences from the release: the silhouette is our soft mesh rasterizer rather than a point rasterizer of the
vertices; inside/outside uses winding numbers against the sealed coarse mesh (MANO's faces on MANO-HD's first
778 vertices, which the subdivision keeps: within ~0.5 mm of the HD surface, 16x fewer faces) rather than libmesh on
the HD mesh; samples lie in the thin band (VolumeConfig).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from hands.eval.image_metrics import LPIPS, MissingWeightsError
from hands.geometry.cameras import PerspectiveCamera, scale_intrinsics
from hands.geometry.mesh import boundary_fan
from hands.geometry.winding import inside_mesh
from hands.mano import load_mano_model
from hands.ohta.avatar import HandAvatar
from hands.ohta.checkpoint import load_avatar, save_avatar
from hands.ohta.creation import RELEASE_POSE_OFFSET
from hands.ohta.inputs import read_oneshot_input
from hands.ohta.volume import VolumeConfig, render_pixels
from hands.render.soft import soft_iou, soft_silhouette

log = logging.getLogger(__name__)


@dataclass
class PriorTrainConfig:
    """Prior learning (release values from ohta_train.yaml unless noted)."""

    data: str = "data/ohta_prior"
    """Folder of one-shot inputs (img/, mask/, anno/, captures.json)."""
    image_size: int = 256
    patch_size: int = 32
    patches: int = 2
    hand_patch_ratio: float = 0.8
    """Chance that a patch is centred on the hand (else on the box around it)."""
    pose_offset: float = RELEASE_POSE_OFFSET
    """Added to every hand-pose value of the training poses, as the release does (interhand/train.py); 0: none."""
    lr: float = 5e-4
    lr_pairof: float = 5e-5
    """Rate of PairOF (its decoder; its encoders too with train_pairof_encoders)."""
    lr_decay_rate: float = 0.1
    lr_decay_steps: int = 500_000
    """The rate falls by lr_decay_rate over this many optimiser steps (exponentially)."""
    accumulate: int = 8
    """Gradient accumulation (batches per optimiser step)."""
    l1_weight: float = 1.0
    lpips_weight: float = 1.0
    silhouette_weight: float = 1.0
    occupancy_weight: float = 1.0
    shadow_weight: float = 0.1
    lpips_weights: str | None = None
    """AlexNet weights for LPIPS (default checkpoints/metrics/); the term is off without them."""
    occupancy_points: int = 2048
    """Ray samples per image checked against the mesh for the occupancy loss."""
    silhouette_size: int = 64
    """Side of the silhouette comparison (the mask is resized to it)."""
    silhouette_dilation: float = 3 / 256
    """Mask dilation as a fraction of the image side (3 px at 256²)."""
    deformer: bool = True
    train_pairof_encoders: bool = False
    """The release freezes PairOF's encoders (they come pretrained from pairof.ckpt); train them when starting without it."""
    pairof_warmup_steps: int = 0
    """Occupancy-only steps on random poses before prior learning (`pretrain_pairof`; stands in for pairof.ckpt)."""
    init_checkpoint: str | None = None
    """Start from a prior: the release's .tar or an avatar folder (None: random initialisation)."""
    mano_dir: str | None = None
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    batch_size: int = 1
    num_workers: int = 0
    seed: int = 0


def label_faces(model, avatar: HandAvatar) -> torch.Tensor:
    """Faces (F, 3) of the sealed coarse mesh: MANO's faces on MANO-HD's first vertices (which subdivision keeps)
    and a fan from the wrist loop to MANO-HD's sealed centre (its last vertex)."""
    fan = boundary_fan(model.faces, avatar.mano.num_vertices - 1)
    return torch.as_tensor(np.concatenate([model.faces, fan]), dtype=torch.long)


def pretrain_pairof(avatar: HandAvatar, model, steps: int, seed: int = 0, lr: float = 1e-3,
                    progress: bool = True) -> list[float]:
    """Fit all of PairOF to inside/outside labels (winding numbers of the sealed coarse mesh) of points near the
    surface and in the box of random poses; returns the loss per step. COAP-style; the release ships this as
    pairof.ckpt, whose training code is not released."""
    from tqdm import tqdm

    rng = torch.Generator().manual_seed(seed)
    faces = label_faces(model, avatar)
    optimizer = torch.optim.Adam(avatar.pairof.parameters(), lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="PairOF warm-up", disable=not progress):
        hand_pose = torch.randn(1, 45, generator=rng) * 0.3
        posed = avatar.pose(torch.randn(1, 3, generator=rng), hand_pose, torch.zeros(1, 10), rng)
        vertices = posed.vertices[0].detach()
        near = vertices[torch.randint(len(vertices), (3072,), generator=rng)] + torch.randn(3072, 3, generator=rng) * 0.05
        box = vertices.amin(0) + torch.rand(1024, 3, generator=rng) * (vertices.amax(0) - vertices.amin(0))
        points = torch.cat([near, box])
        labels = inside_mesh(points, vertices, faces).float()
        loss = F.mse_loss(avatar.occupancy(points[None], posed).occupancy[0], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


class OneShotFolder(torch.utils.data.Dataset):
    """One-shot inputs of a folder as training samples: image (S, S, 3) float in [0, 1], mask (S, S) bool, K (3, 3),
    Th (3,) decimetres, pose (48,), betas (10,), identity (capture number)."""

    def __init__(self, root: str | Path, size: int, identities: int, pose_offset: float = RELEASE_POSE_OFFSET) -> None:
        self.root, self.pose_offset = Path(root), pose_offset
        annotations = sorted((self.root / "anno").glob("*.pkl"))
        if not annotations:
            raise FileNotFoundError(f"no one-shot inputs in {self.root}/anno (make them with `hands prepare ohta`)")
        self.names = [p.stem for p in annotations]
        captures_file = self.root / "captures.json"
        if captures_file.is_file():
            try:
                captures = json.loads(captures_file.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(f"{captures_file}: not JSON ({error})") from None
        else:
            log.warning("%s missing: every input gets identity 0", captures_file)
            captures = {}
        self.identity = [int(captures.get(name, 0)) for name in self.names]
        bad = sorted({i for i in self.identity if not 0 <= i < identities})
        if bad:
            raise ValueError(f"{captures_file}: captures {bad} do not fit the {identities} identity rows")
        self.size = size

    def __len__(self) -> int:
        return len(self.names)

    def _image_path(self, name: str) -> Path:
        for suffix in (".jpg", ".png"):
            if (path := self.root / "img" / f"{name}{suffix}").is_file():
                return path
        return self.root / "img" / f"{name}.jpg"  # reported as missing by the reader

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        sample = read_oneshot_input(self._image_path(self.names[item]), self.size, self.pose_offset)
        view = sample.view
        return {"image": torch.from_numpy(sample.image).float() / 255.0, "mask": torch.from_numpy(sample.mask),
                "K": view.K, "Th": view.Th, "pose": view.pose, "betas": view.betas,
                "identity": torch.tensor(self.identity[item])}


def step_rng(seed: int, rank: int, step: int, batch_index: int) -> np.random.Generator:
    """The random stream of one training step (patches, backgrounds, occupancy samples): different on every rank,
    and the same again when a resumed run reaches the same step."""
    return np.random.default_rng([seed, rank, step, batch_index])


def patch_pixels(mask: torch.Tensor, size: int, count: int, hand_ratio: float, rng: np.random.Generator) -> torch.Tensor:
    """(count·size², 2) integer (u, v) pixels of square patches centred on the hand (mask (H, W)) with probability
    `hand_ratio`, else on the hand's box outside the hand; patches are kept inside the image."""
    H, W = mask.shape
    hand = mask.cpu().numpy()
    rows, cols = np.nonzero(hand)
    box = np.zeros_like(hand)
    if len(rows):
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
    around = np.argwhere(box & ~hand)
    on_hand = np.stack([rows, cols], axis=1)
    pixels = []
    for _ in range(count):
        pool = on_hand if (rng.random() < hand_ratio or len(around) == 0) and len(on_hand) else around
        cy, cx = pool[rng.integers(len(pool))] if len(pool) else (H // 2, W // 2)
        top, left = int(np.clip(cy - size // 2, 0, H - size)), int(np.clip(cx - size // 2, 0, W - size))
        v, u = np.meshgrid(np.arange(top, top + size), np.arange(left, left + size), indexing="ij")
        pixels.append(np.stack([u.ravel(), v.ravel()], axis=1))
    return torch.from_numpy(np.concatenate(pixels)).long()


class OHTAPriorModule(pl.LightningModule):
    """The avatar and its prior-learning losses."""

    def __init__(self, config: PriorTrainConfig) -> None:
        super().__init__()
        self.config = config
        model = load_mano_model("right", config.mano_dir)
        self.avatar = load_avatar(config.init_checkpoint, model) if config.init_checkpoint else HandAvatar(model, seed=config.seed)
        if config.pairof_warmup_steps > 0:
            log.info("PairOF warm-up: %d occupancy steps on random poses", config.pairof_warmup_steps)
            pretrain_pairof(self.avatar, model, config.pairof_warmup_steps, seed=config.seed)
        self.avatar.pairof.requires_grad_(True)
        self.avatar.pairof.part_encoder.requires_grad_(config.train_pairof_encoders)
        self.avatar.pairof.local_encoder.requires_grad_(config.train_pairof_encoders)
        self.avatar.appearance.id_feature.requires_grad_(False)
        self.avatar.appearance.color_scale.requires_grad_(False)
        self.avatar.appearance.color_shift.requires_grad_(False)
        if not config.deformer:
            self.avatar.deformer.requires_grad_(False)
        self.lpips = None
        if config.lpips_weight > 0:
            try:
                self.lpips = LPIPS(config.lpips_weights)
            except MissingWeightsError as error:
                log.warning("LPIPS term off: %s", error)
        self.rng = step_rng(config.seed, 0, 0, 0)
        self.strict_loading = False  # checkpoints leave LPIPS out
        self.register_buffer("label_faces", label_faces(model, self.avatar), persistent=False)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # LPIPS is a fixed metric network: rebuilt from its own weight file, not stored in every checkpoint
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("lpips.")}

    def datasets(self) -> OneShotFolder:
        return OneShotFolder(self.config.data, self.config.image_size, self.avatar.appearance.config.identities,
                             self.config.pose_offset)

    def configure_optimizers(self):
        pairof = [p for p in self.avatar.pairof.parameters() if p.requires_grad]
        chosen = {id(p) for p in pairof}
        rest = [p for p in self.avatar.parameters() if p.requires_grad and id(p) not in chosen]
        optimizer = torch.optim.Adam([{"params": rest, "lr": self.config.lr},
                                      {"params": pairof, "lr": self.config.lr_pairof}])
        gamma = self.config.lr_decay_rate ** (1.0 / max(self.config.lr_decay_steps, 1))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma),
                                                         "interval": "step"}}

    def sample_losses(self, sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The weighted losses of one sample (tensors without a batch dimension)."""
        c, avatar = self.config, self.avatar
        size = tuple(sample["image"].shape[:2])
        identity = avatar.appearance.id_code[sample["identity"]][None]
        background = torch.rand(3, generator=torch.Generator().manual_seed(int(self.rng.integers(1 << 31)))).to(identity)
        mask = sample["mask"]
        target = torch.where(mask[..., None], sample["image"], background)
        pose = sample["pose"][None]
        posed = avatar.pose(pose[:, :3], pose[:, 3:], sample["betas"][None], deform_identity=identity if c.deformer else None)
        pixels = patch_pixels(mask, min(c.patch_size, *size), c.patches, c.hand_patch_ratio, self.rng).to(identity.device)
        K, Th = sample["K"][None], sample["Th"][None]
        out = render_pixels(avatar, posed, K, Th, pixels[None], identity, c.volume, size, background, keep_samples=True)
        wanted = target[pixels[:, 1], pixels[:, 0]]
        losses = {"l1": c.l1_weight * (out["rgb"][0] - wanted).abs().mean(),
                  "shadow": c.shadow_weight * (out["shadow"][0] - 1).abs().mean()}
        if self.lpips is not None:
            side = min(c.patch_size, *size)
            as_patches = lambda x: x.reshape(c.patches, side, side, 3).permute(0, 3, 1, 2)  # noqa: E731
            losses["lpips"] = c.lpips_weight * self.lpips(as_patches(out["rgb"][0]).clamp(0, 1), as_patches(wanted)).mean()
        # silhouette of the posed (deformed) mesh against the dilated mask, at a reduced size
        scale = c.silhouette_size / size[0]
        screen = PerspectiveCamera(scale_intrinsics(K, scale)).project(posed.vertices + Th[:, None])
        silhouette = soft_silhouette(screen, posed.faces, (c.silhouette_size, c.silhouette_size), sigma=1.0)[0]
        radius = max(1, round(c.silhouette_dilation * c.silhouette_size))
        goal = F.interpolate(mask[None, None].float(), size=(c.silhouette_size, c.silhouette_size), mode="area")
        goal = F.max_pool2d(goal, 2 * radius + 1, stride=1, padding=radius)[0, 0].clamp(0, 1)
        losses["silhouette"] = c.silhouette_weight * (1 - soft_iou(silhouette, goal))
        samples = out["samples"][0]
        usable = torch.nonzero(~samples["outside"])[:, 0]
        if len(usable) and c.occupancy_weight > 0:
            chosen = usable[torch.randperm(len(usable), generator=torch.Generator().manual_seed(int(self.rng.integers(1 << 31))))
                            [:c.occupancy_points].to(usable.device)]
            with torch.no_grad():
                inside = inside_mesh(samples["points"][chosen].detach(), posed.vertices[0].detach(), self.label_faces).float()
            losses["occupancy"] = c.occupancy_weight * F.mse_loss(samples["alpha"][chosen], inside)
        return losses

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        self.rng = step_rng(self.config.seed, self.global_rank, self.global_step, batch_index)
        B = batch["image"].shape[0]
        totals: dict[str, torch.Tensor] = {}
        for b in range(B):
            for key, value in self.sample_losses({k: v[b] for k, v in batch.items()}).items():
                totals[key] = totals.get(key, 0) + value / B
        loss = sum(totals.values())
        self.log_dict({f"train/{k}": v.detach() for k, v in totals.items()}, batch_size=B)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=B)
        return loss


def export_trained(module: OHTAPriorModule, output: Path, trainer: pl.Trainer) -> Path:
    """The registry's export: the learned prior as an avatar folder, <run>/prior (for `hands avatar create
    --checkpoint`)."""
    return save_avatar(module.avatar, output / "prior", {"trained_steps": trainer.global_step}, overwrite=True)
