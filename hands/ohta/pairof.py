"""PairOF: the pairwise occupancy field of a posed hand (COAP-style, as OHTA uses it).

The hand is split into MANO's 16 parts (a vertex belongs to its largest skinning weight; a face to the majority of
its vertices). Per pose, each part gets a code from a point-set encoder over surface points sampled in the part's
bone frame; query points are moved into every bone frame and tested against the parts' padded boxes. For each of
the 15 parent-child pairs whose boxes hold a point, a second point-set encoder mixes the two parts' (code, local
point) and an implicit decoder gives one occupancy per part. A masked softmax (temperature σ) merges the pairs,
then the parts. Units follow the caller (OHTA: decimetres centred on the middle MCP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.spatial import cKDTree

#: Parent-child part pairs of MANO's kinematic tree, in the release's order.
PAIRS = ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (0, 10), (10, 11), (11, 12), (0, 13),
         (13, 14), (14, 15))


@dataclass
class PairOFConfig:
    """PairOF sizes (release values)."""

    part_code: int = 64
    local_code: int = 64
    decoder_layers: int = 4
    decoder_width: int = 128
    samples_per_part: int = 256
    """Surface points per part for its code: half on its own faces, half on the extended faces."""
    extended_distance: float = 0.01
    """Neighbouring parts' faces within this distance (template units, meters) join a part's extended faces."""
    box_padding: float = 2.0
    sigma: float = 0.05
    """Temperature of the masked softmax that merges pairs and parts."""


class ResnetBlock(nn.Module):
    """x -> shortcut(x) + fc_1(relu(fc_0(relu(x)))), fc_1 zero-initialised."""

    def __init__(self, size_in: int, size_out: int) -> None:
        super().__init__()
        self.fc_0 = nn.Linear(size_in, min(size_in, size_out))
        self.fc_1 = nn.Linear(min(size_in, size_out), size_out)
        self.shortcut = nn.Linear(size_in, size_out, bias=False) if size_in != size_out else None
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return skip + self.fc_1(F.relu(self.fc_0(F.relu(x))))


class PointSetEncoder(nn.Module):
    """ResNet-PointNet over a set (B, N, dim): four blocks, each followed by max-pooling over the set concatenated
    back to every element. Output (B, out) with `pool`, else per element (B, N, out)."""

    def __init__(self, dim: int, hidden: int, out: int, pool: bool = True) -> None:
        super().__init__()
        self.fc_pos = nn.Linear(dim, 2 * hidden)
        self.block_0, self.block_1 = ResnetBlock(2 * hidden, hidden), ResnetBlock(2 * hidden, hidden)
        self.block_3, self.block_4 = ResnetBlock(2 * hidden, hidden), ResnetBlock(2 * hidden, hidden)
        self.fc_c = nn.Linear(hidden, out)
        self.pool = pool

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        net = self.fc_pos(points)
        for block in (self.block_0, self.block_1, self.block_3):
            net = block(net)
            net = torch.cat([net, net.max(dim=1, keepdim=True).values.expand_as(net)], dim=-1)
        net = self.block_4(net)
        if self.pool:
            net = net.max(dim=1).values
        return self.fc_c(F.relu(net))


class ImplicitDecoder(nn.Module):
    """IGR-style MLP with a skip connection from the input into the middle layer, Softplus(β=100) and geometric
    initialisation: lin0..lin{n}."""

    def __init__(self, d_in: int, width: int, layers: int, d_out: int = 1, radius: float = 1.0) -> None:
        super().__init__()
        dims = [d_in] + [width] * layers + [d_out]
        self.skip = layers // 2
        self.count = len(dims) - 1
        for i in range(self.count):
            out = dims[i + 1] - d_in if i + 1 == self.skip else dims[i + 1]
            linear = nn.Linear(dims[i], out)
            if i == self.count - 1:
                nn.init.normal_(linear.weight, mean=math.sqrt(math.pi) / math.sqrt(dims[i]), std=1e-5)
                nn.init.constant_(linear.bias, -radius)
            else:
                nn.init.normal_(linear.weight, 0.0, math.sqrt(2) / math.sqrt(out))
                nn.init.zeros_(linear.bias)
            setattr(self, f"lin{i}", linear)
        self.activation = nn.Softplus(beta=100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x
        for i in range(self.count):
            if i == self.skip:
                x = torch.cat([x, inputs], dim=-1) / math.sqrt(2)
            x = getattr(self, f"lin{i}")(x)
            if i < self.count - 1:
                x = self.activation(x)
        return x


def masked_softmax(values: torch.Tensor, mask: torch.Tensor, dim: int, sigma: float) -> torch.Tensor:
    """Σ w·v with w ∝ exp(v/σ) over the masked entries (the release's composition; ε = 1e-5 in the normaliser)."""
    weights = torch.exp(values / sigma) * mask
    return (weights / (weights.sum(dim, keepdim=True) + 1e-5) * values).sum(dim)


def partition_parts(vertices: np.ndarray, faces: np.ndarray, weights: np.ndarray, parents: np.ndarray,
                    extended_distance: float) -> dict[str, torch.Tensor]:
    """Per-part tight faces (own label), extended faces (own, parent's and children's within `extended_distance` of
    the part's own vertices) and tight vertices, padded: {'tight_faces' (16, Ft, 3), 'extended_faces' (16, Fe, 3)
    with -1 padding, 'tight_vertices' (16, Vt) padded by repeating the first}."""
    vertex_label = weights.argmax(axis=1)
    face_label = np.array([np.bincount(vertex_label[f], minlength=16).argmax() for f in faces])
    parts = len(parents)
    tight, extended, own_vertices = [], [], []
    for part in range(parts):
        own = face_label == part
        family = own | (face_label == parents[part]) if parents[part] >= 0 else own.copy()
        for child in np.nonzero(parents == part)[0]:
            family |= face_label == child
        corner_distance, _ = cKDTree(vertices[np.unique(faces[own])]).query(vertices[faces[family]].reshape(-1, 3))
        corner_distance = corner_distance.reshape(-1, 3)
        keep = family.copy()
        keep[family] = (corner_distance < extended_distance).all(axis=1)
        tight.append(faces[own])
        extended.append(faces[keep])
        own_vertices.append(np.nonzero(vertex_label == part)[0])

    def pad(groups: list[np.ndarray], fill) -> torch.Tensor:
        size = max(len(g) for g in groups)
        out = []
        for g in groups:
            extra = np.full((size - len(g),) + g.shape[1:], g[0] if fill is None else fill, dtype=np.int64)
            out.append(np.concatenate([g.astype(np.int64), extra]))
        return torch.as_tensor(np.stack(out))

    return {"tight_faces": pad(tight, -1), "extended_faces": pad(extended, -1), "tight_vertices": pad(own_vertices, None)}


def sample_surface(vertices: torch.Tensor, faces: torch.Tensor, count: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-weighted random points and their face normals on padded face sets: vertices (B, V, 3), faces (P, F, 3)
    with -1 rows ignored -> points, normals (B, P, count, 3)."""
    valid = faces[..., 0] >= 0
    corners = vertices[:, faces.clamp_min(0)]  # (B, P, F, 3, 3)
    cross = torch.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :], dim=-1)
    area = cross.norm(dim=-1) * valid
    B, P, Fc = area.shape
    odds = (area.detach() + 1e-12 * valid).reshape(B * P, Fc)
    chosen = torch.multinomial(odds, count, replacement=True, generator=generator).reshape(B, P, count)
    u, v = torch.rand(2, B, P, count, 1, generator=generator, dtype=vertices.dtype).to(vertices.device)
    root = u.sqrt()
    w0, w1, w2 = 1 - root, root * (1 - v), root * v
    picked = torch.gather(corners, 2, chosen[..., None, None].expand(-1, -1, -1, 3, 3))
    points = w0 * picked[..., 0, :] + w1 * picked[..., 1, :] + w2 * picked[..., 2, :]
    normals = F.normalize(torch.gather(cross, 2, chosen[..., None].expand(-1, -1, -1, 3)), dim=-1)
    return points, normals


@dataclass
class PoseCode:
    """PairOF's encoding of one pose: pair codes (B, 15, 2, C), world-to-bone transforms (B, 16, 4, 4), padded
    part boxes in bone frames: centre and size (B, 16, 3)."""

    pair_codes: torch.Tensor
    to_bone: torch.Tensor
    box_centre: torch.Tensor
    box_size: torch.Tensor


@dataclass
class Occupancy:
    """Occupancy (B, T) in [0, 1], per-part occupancy (B, 16, T), the part with the highest one (B, T) and whether
    a point lies outside every part box (B, T)."""

    occupancy: torch.Tensor
    parts: torch.Tensor
    part_index: torch.Tensor
    outside: torch.Tensor


class PairOF(nn.Module):
    """Pairwise occupancy of a posed hand mesh. Build with the template's vertices (meters), faces, skinning
    weights and kinematic parents."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, weights: np.ndarray, parents: np.ndarray,
                 config: PairOFConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or PairOFConfig()
        for name, value in partition_parts(vertices, faces, weights, np.asarray(parents), config.extended_distance).items():
            self.register_buffer(name, value)
        self.register_buffer("connect", torch.as_tensor(PAIRS).reshape(-1))
        self.part_encoder = PointSetEncoder(6, config.part_code, config.part_code, pool=True)
        self.local_encoder = PointSetEncoder(config.part_code + 3, config.local_code, config.local_code, pool=False)
        self.decoder = ImplicitDecoder(config.local_code, config.decoder_width, config.decoder_layers)

    def encode(self, vertices: torch.Tensor, bone_to_world: torch.Tensor, generator: torch.Generator | None = None) -> PoseCode:
        """vertices (B, V, 3) posed (unsealed part), bone_to_world (B, 16, 4, 4): rotation of each joint's frame
        and its posed position, in the same units."""
        to_bone = torch.linalg.inv(bone_to_world)
        B = vertices.shape[0]
        tight = vertices[:, self.tight_vertices]  # (B, 16, Vt, 3)
        local = (to_bone[:, :, None, :3, :3] @ tight[..., None])[..., 0] + to_bone[:, :, None, :3, 3]
        low, high = local.amin(dim=2), local.amax(dim=2)
        half = self.config.samples_per_part // 2
        points, normals = zip(sample_surface(vertices, self.tight_faces, half, generator),
                              sample_surface(vertices, self.extended_faces, half, generator))
        points, normals = torch.cat(points, dim=2), torch.cat(normals, dim=2)
        rotation = to_bone[:, :, None, :3, :3]
        local_points = (rotation @ points[..., None])[..., 0] + to_bone[:, :, None, :3, 3]
        local_normals = (rotation @ normals[..., None])[..., 0]
        codes = self.part_encoder(torch.cat([local_points, local_normals], -1).flatten(0, 1)).reshape(B, 16, -1)
        return PoseCode(codes[:, self.connect].reshape(B, len(PAIRS), 2, -1), to_bone, (low + high) / 2,
                        (high - low).abs() * self.config.box_padding)

    def query(self, points: torch.Tensor, code: PoseCode) -> Occupancy:
        """Occupancy of points (B, T, 3) for an encoded pose."""
        B, T, _ = points.shape
        pairs = len(PAIRS)
        local = (code.to_bone[:, :, None, :3, :3] @ points[:, None, :, :, None])[..., 0] + code.to_bone[:, :, None, :3, 3]
        inside = ((local - code.box_centre[:, :, None]).abs() < code.box_size[:, :, None] / 2).all(dim=-1)  # (B, 16, T)
        pair_inside = inside[:, self.connect].reshape(B, pairs, 2, T)
        valid = pair_inside.any(dim=2)  # (B, 15, T)
        pair_occupancy = points.new_zeros(B, pairs, T, 2)
        if valid.any():
            pair_local = local[:, self.connect].reshape(B, pairs, 2, T, 3).permute(0, 1, 3, 2, 4)  # (B, 15, T, 2, 3)
            codes = code.pair_codes[:, :, None].expand(-1, -1, T, -1, -1)
            features = torch.cat([codes, pair_local], dim=-1)[valid]  # (N, 2, C+3)
            logits = self.decoder(self.local_encoder(features))[..., 0]
            pair_occupancy = pair_occupancy.index_put((valid,), torch.sigmoid(-logits))
        part_values = points.new_zeros(B, pairs, T, 16)
        pair_ids = torch.arange(pairs, device=points.device).repeat_interleave(2)
        part_values[:, pair_ids, :, self.connect] = pair_occupancy.permute(1, 3, 0, 2).reshape(2 * pairs, B, T)
        sigma = self.config.sigma
        parts = masked_softmax(part_values, part_values > 0, dim=1, sigma=sigma).permute(0, 2, 1) * inside
        occupancy = masked_softmax(parts, parts > 0, dim=1, sigma=sigma)
        return Occupancy(occupancy, parts, parts.argmax(dim=1), ~inside.any(dim=1))
