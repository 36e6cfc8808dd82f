"""ACR's training inputs from an InterHand-format dataset: whole images padded to a square, 33-class part-label
maps and `index.npz` (cameras, poses, centres, joints)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from hands.acr.targets import centre_radius, fit_weak_perspective, separate_centres, to_normalised
from hands.data.hand_samples import ONE_SHARD, Shard, samples_with_hands
from hands.data.interhand.dataset import InterHandDataset
from hands.data.interhand.format import JOINT_SLICE
from hands.geometry.cameras import scale_intrinsics
from hands.io.atomic import atomic_path, check_writable
from hands.io.images import write_image
from hands.mano.model_file import SIDES
from hands.render import PerspectiveCamera, Renderer, hand_meshes, join_meshes
from hands.render.draw import to_uint8_image

log = logging.getLogger(__name__)

ACR_PART_SIZE = 256


def export_acr(dataset: InterHandDataset, output: str | Path, limit: int | None = None, overwrite: bool = False,
               shard: Shard = ONE_SHARD) -> Path:
    """ACR training index: square input images, 33-class part-label maps (256 x 256 PNG) and `index.npz` with per
    sample and side: presence, weak-perspective camera (s, tx, ty), MANO pose (48, flat, camera-frame global
    orient), betas, normalised centres and heatmap radii, plus 42 normalised 2D joints, camera-frame 3D joints
    (meters) and their validity. Centre heatmaps are made on the fly from the centres (hands.acr.targets)."""
    output = Path(output)
    index_path = output / "index.npz"
    check_writable(index_path, overwrite)
    check_writable(shard.part(index_path), overwrite)
    size = dataset.config.image_size
    scale = ACR_PART_SIZE / size
    renderer = Renderer(ACR_PART_SIZE)
    rows: dict[str, list] = {key: [] for key in ("name", "present", "camera", "pose", "betas", "centre", "radius",
                                                  "joints_2d", "joints_3d", "joint_valid")}
    for sample, hands, name in samples_with_hands(dataset, limit, "acr index", shard):
        K = scale_intrinsics(sample["K"].double(), scale)
        meshes = join_meshes([hand_meshes(out.vertices.float(), dataset.layers[side]) for side, (_, out) in hands.items()])
        labels = renderer.render(meshes, PerspectiveCamera(K.float()), ["part_labels"]).part_labels[0]
        joints_2d = to_normalised(sample["joints_2d"].double().numpy(), size)
        joints_3d, valid = sample["joints_cam"].double().numpy(), sample["joint_valid"].numpy()
        present, camera, pose, betas = np.zeros(2, bool), np.zeros((2, 3)), np.zeros((2, 48)), np.zeros((2, 10))
        centre, radius = np.full((2, 2), -2.0), np.zeros(2, dtype=np.int64)
        for s, side in enumerate(SIDES):
            if side not in hands:
                continue
            params, out = hands[side]
            hand = JOINT_SLICE[side]
            present[s] = True
            pose[s] = torch.cat([params["global_orient"][0], params["hand_pose"][0]]).double().cpu().numpy()
            betas[s] = params["betas"][0].double().cpu().numpy()
            # 3D joints relative to the middle MCP (InterHand index 11), ACR's alignment joint (canonical 9)
            camera[s] = fit_weak_perspective(joints_3d[hand] - joints_3d[hand][11], joints_2d[hand], valid[hand])
            seen = joints_2d[hand][valid[hand]] if valid[hand].any() else joints_2d[hand]
            lo, hi = seen.min(0), seen.max(0)
            centre[s] = (lo + hi) / 2
            radius[s] = centre_radius((hi - lo)[::-1])
        if present.all():
            centre = separate_centres(centre, radius)
        write_image(output / "images" / f"{name}.jpg", to_uint8_image(sample["image"]), overwrite)
        write_image(output / "parts" / f"{name}.png", labels.cpu().numpy().astype(np.uint8), overwrite)
        for key, value in (("name", name), ("present", present), ("camera", camera), ("pose", pose), ("betas", betas),
                           ("centre", centre), ("radius", radius), ("joints_2d", joints_2d), ("joints_3d", joints_3d),
                           ("joint_valid", valid)):
            rows[key].append(value)
    write_index(shard.part(index_path), {key: np.asarray(values) for key, values in rows.items()}, overwrite)
    log.info("wrote an ACR index of %d samples to %s", len(rows["name"]), shard.part(index_path))
    return shard.finish(index_path, lambda parts, final: merge_indexes(parts, final, overwrite), overwrite)


def write_index(path: Path, arrays: dict[str, np.ndarray], overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, **arrays)
    return path


def merge_indexes(parts: list[Path], final: Path, overwrite: bool = False) -> Path:
    """One index.npz from the shards' parts, rows ordered by sample name."""
    loaded = []
    for part in parts:
        with np.load(part, allow_pickle=False) as data:
            loaded.append({key: data[key] for key in data.files})
    arrays = {key: np.concatenate([part[key] for part in loaded if len(part["name"])]) for key in loaded[0]}
    order = np.argsort(arrays["name"], kind="stable")
    return write_index(final, {key: value[order] for key, value in arrays.items()}, overwrite)
