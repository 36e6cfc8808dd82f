"""Method-specific training inputs made from an InterHand-format dataset (real or synthetic).

- AttentionHand: per image an RGB crop, the mesh image rendered from the 3D labels in the same crop camera, a
  template text prompt, and `modalities.json` (JSON lines: mesh, rgb, text, bbox), paths relative to the output
  folder's parent as in the original `data/modalities.json`.
- OHTA: one-shot inputs `img/`, `mask/` (rendered from MANO) and `anno/` pickles for right hands (left hands
  mirrored).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hands.data.interhand.dataset import InterHandDataset, mano_vector_split
from hands.data.interhand.format import JOINT_SLICE
from hands.data.ohta_oneshot import oneshot_annotation, write_oneshot_annotation
from hands.data.prompts import describe_pose, hand_prompt
from hands.geometry.cameras import scale_intrinsics
from hands.io.atomic import atomic_path, atomic_write_bytes, check_writable
from hands.io.images import write_image
from hands.mano.joints import convert_joints
from hands.mano.layer import ManoOutput
from hands.mano.model_file import SIDES
from hands.render import Meshes, PerspectiveCamera, Renderer, join_meshes
from hands.render.draw import to_uint8_image

log = logging.getLogger(__name__)


def sample_hands(sample: dict, layers: dict) -> dict[str, tuple[dict[str, torch.Tensor], ManoOutput]]:
    """MANO parameters and outputs (crop camera frame, meters) of the hands a dataset sample has fits for."""
    hands = {}
    for side in SIDES:
        if bool(sample[f"mano_valid_{side}"]):
            layer = layers[side]
            params = {k: v.to(layer.v_template)[None] for k, v in mano_vector_split(sample[f"mano_{side}"]).items()}
            with torch.no_grad():
                hands[side] = (params, layer(params["global_orient"], params["hand_pose"], params["betas"], params["transl"]))
    return hands


def samples_with_hands(dataset: InterHandDataset, limit: int | None, description: str):
    """(sample, hands, name) for the first `limit` samples that have at least one MANO fit, with a progress bar."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(count), desc=description, unit="img"):
        sample = dataset[i]
        hands = sample_hands(sample, dataset.layers)
        if hands:
            yield sample, hands, f"{int(sample['annotation_id']):012d}"


def export_attentionhand(dataset: InterHandDataset, output: str | Path, limit: int | None = None,
                         overwrite: bool = False) -> Path:
    """Write rgb/, mesh/, text/ and modalities.json for up to `limit` samples of `dataset` into `output`."""
    output = Path(output)
    manifest = output / "modalities.json"
    check_writable(manifest, overwrite)
    size = dataset.config.image_size
    renderer = Renderer(size)
    lines = []
    for sample, hands, name in samples_with_hands(dataset, limit, "attentionhand modalities"):
        meshes = join_meshes([Meshes(out.vertices.float(), dataset.layers[side].faces) for side, (_, out) in hands.items()])
        rendered = renderer.render(meshes, PerspectiveCamera(sample["K"]), ["mesh_image", "mask"])
        if not rendered.mask.any():
            continue
        poses = {side: describe_pose(params["hand_pose"][0].double().cpu().numpy(), side,
                                     out.joints[0].double().cpu().numpy()) for side, (params, out) in hands.items()}
        lines.append(write_modality_sample(output, name, to_uint8_image(sample["image"]), to_uint8_image(rendered.mesh_image[0]),
                                           rendered.mask[0].cpu().numpy(), hand_prompt(poses), overwrite))
    return write_modalities_manifest(manifest, lines, overwrite)


def write_modality_sample(output: Path, name: str, rgb: np.ndarray, mesh_image: np.ndarray, mask: np.ndarray, prompt: str,
                          overwrite: bool = False) -> str:
    """Write one AttentionHand sample (rgb/, mesh/ .jpg and text/ .txt under `output`) and return its modalities.json
    line: paths relative to output's parent and the hand box [x, y, w, h] of the mask (H, W)."""
    files = {"rgb": output / "rgb" / f"{name}.jpg", "mesh": output / "mesh" / f"{name}.jpg", "text": output / "text" / f"{name}.txt"}
    write_image(files["rgb"], rgb, overwrite)
    write_image(files["mesh"], mesh_image, overwrite)
    atomic_write_bytes(files["text"], (prompt + "\n").encode(), overwrite)
    ys, xs = np.nonzero(mask)
    entry = {key: str(files[key].relative_to(output.parent)) for key in ("mesh", "rgb", "text")}
    entry["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    return json.dumps(entry)


def write_modalities_manifest(manifest: Path, lines: list[str], overwrite: bool = False) -> Path:
    """Write modalities.json (one JSON object per line)."""
    with atomic_path(manifest, overwrite) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines))
    log.info("wrote %d AttentionHand samples to %s", len(lines), manifest.parent)
    return manifest


def export_ohta(dataset: InterHandDataset, output: str | Path, limit: int | None = None, overwrite: bool = False) -> list[Path]:
    """Write OHTA one-shot inputs (img/, mask/, anno/) for right hands of `dataset` (use `mirror_left` to include
    left hands as mirrored right hands) and captures.json (input name -> capture number: the identity for prior
    learning); returns the annotation files."""
    output = Path(output)
    check_writable(output / "captures.json", overwrite)
    captures = {}
    size = dataset.config.image_size
    renderer = Renderer(size)
    layer = dataset.layers["right"]
    written = []
    for sample, hands, name in samples_with_hands(dataset, limit, "ohta one-shot inputs"):
        if set(hands) != {"right"}:
            continue  # one right hand only
        params, out = hands["right"]
        mask = renderer.render(Meshes(out.vertices.float(), layer.faces), PerspectiveCamera(sample["K"]), ["mask"]).mask[0]
        if int(mask.sum()) < 100:
            continue
        with torch.no_grad():
            rest = layer(betas=params["betas"]).joints[0]
        pose = torch.cat([params["global_orient"][0], params["hand_pose"][0]]).double().cpu().numpy()
        annotation = oneshot_annotation(
            pose, params["betas"][0].double().cpu().numpy(), out.joints[0].double().cpu().numpy(), rest.double().cpu().numpy(),
            out.vertices[0].double().cpu().numpy(), convert_joints(sample["joints_cam"][:21].double().numpy(), "interhand", "canonical"),
            convert_joints(sample["joint_valid"][:21, None].numpy(), "interhand", "canonical")[:, 0], sample["K"].double().numpy(),
            sample["crop_box"].double().numpy())
        write_image(output / "img" / f"{name}.jpg", to_uint8_image(sample["image"]), overwrite)
        write_image(output / "mask" / f"{name}.png", mask.cpu().numpy().astype(np.uint8) * 255, overwrite)
        written.append(write_oneshot_annotation(annotation, output / "anno" / f"{name}.pkl", overwrite))
        captures[name] = int(sample["capture"])
    atomic_write_bytes(output / "captures.json", json.dumps(captures, indent=0).encode(), overwrite)
    log.info("wrote %d OHTA one-shot inputs to %s", len(written), output)
    return written


ACR_PART_SIZE = 256


def export_acr(dataset: InterHandDataset, output: str | Path, limit: int | None = None, overwrite: bool = False) -> Path:
    """ACR training index: square input images, 33-class part-label maps (256 x 256 PNG) and `index.npz` with per
    sample and side: presence, weak-perspective camera (s, tx, ty), MANO pose (48, flat, camera-frame global
    orient), betas, normalised centres and heatmap radii, plus 42 normalised 2D joints, camera-frame 3D joints
    (meters) and their validity. Centre heatmaps are made on the fly from the centres (acr_targets)."""
    from hands.data.acr_targets import centre_radius, fit_weak_perspective, separate_centres, to_normalised
    from hands.render import hand_meshes

    output = Path(output)
    index_path = output / "index.npz"
    check_writable(index_path, overwrite)
    size = dataset.config.image_size
    scale = ACR_PART_SIZE / size
    renderer = Renderer(ACR_PART_SIZE)
    rows: dict[str, list] = {key: [] for key in ("name", "present", "camera", "pose", "betas", "centre", "radius",
                                                  "joints_2d", "joints_3d", "joint_valid")}
    for sample, hands, name in samples_with_hands(dataset, limit, "acr index"):
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
    arrays = {key: np.asarray(values) for key, values in rows.items()}
    with atomic_path(index_path, overwrite) as tmp:
        with open(tmp, "wb") as stream:
            np.savez(stream, **arrays)
    log.info("wrote an ACR index of %d samples to %s", len(rows["name"]), output)
    return index_path
