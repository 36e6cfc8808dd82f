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

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hands.data.interhand.dataset import InterHandDataset, mano_vector_split
from hands.data.ohta_oneshot import oneshot_annotation, write_oneshot_annotation
from hands.data.prompts import describe_pose, hand_prompt
from hands.io.atomic import atomic_path, atomic_write_bytes, check_writable
from hands.mano.joints import convert_joints
from hands.mano.layer import ManoOutput
from hands.render import Meshes, PerspectiveCamera, Renderer, join_meshes
from hands.render.draw import to_uint8_image

log = logging.getLogger(__name__)
SIDES = ("right", "left")


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


def encode_image(image_rgb: np.ndarray, suffix: str) -> bytes:
    """uint8 RGB image -> encoded bytes (.jpg or .png)."""
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR) if image_rgb.ndim == 3 else image_rgb)
    if not ok:
        raise OSError(f"could not encode a {suffix} image")
    return encoded.tobytes()


def export_attentionhand(dataset: InterHandDataset, output: str | Path, limit: int | None = None,
                         overwrite: bool = False) -> Path:
    """Write rgb/, mesh/, text/ and modalities.json for up to `limit` samples of `dataset` into `output`."""
    output = Path(output)
    manifest = output / "modalities.json"
    check_writable(manifest, overwrite)
    size = dataset.config.image_size
    renderer = Renderer(size)
    lines = []
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(count), desc="attentionhand modalities", unit="img"):
        sample = dataset[i]
        hands = sample_hands(sample, dataset.layers)
        if not hands:
            continue
        meshes = join_meshes([Meshes(out.vertices.float(), dataset.layers[side].faces) for side, (_, out) in hands.items()])
        rendered = renderer.render(meshes, PerspectiveCamera(sample["K"]), ["mesh_image", "mask"])
        if not rendered.mask.any():
            continue
        name = f"{int(sample['annotation_id']):012d}"
        poses = {side: describe_pose(params["hand_pose"][0].double().cpu().numpy(), side,
                                     out.joints[0].double().cpu().numpy()) for side, (params, out) in hands.items()}
        ys, xs = np.nonzero(rendered.mask[0].cpu().numpy())
        files = {"rgb": output / "rgb" / f"{name}.jpg", "mesh": output / "mesh" / f"{name}.jpg", "text": output / "text" / f"{name}.txt"}
        atomic_write_bytes(files["rgb"], encode_image(to_uint8_image(sample["image"]), ".jpg"), overwrite)
        atomic_write_bytes(files["mesh"], encode_image(to_uint8_image(rendered.mesh_image[0]), ".jpg"), overwrite)
        atomic_write_bytes(files["text"], (hand_prompt(poses) + "\n").encode(), overwrite)
        entry = {key: str(path.relative_to(output.parent)) for key, path in files.items()}
        entry["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        lines.append(json.dumps({"mesh": entry["mesh"], "rgb": entry["rgb"], "text": entry["text"], "bbox": entry["bbox"]}))
    with atomic_path(manifest, overwrite) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines))
    log.info("wrote %d AttentionHand samples to %s", len(lines), output)
    return manifest


def export_ohta(dataset: InterHandDataset, output: str | Path, limit: int | None = None, overwrite: bool = False) -> list[Path]:
    """Write OHTA one-shot inputs (img/, mask/, anno/) for right hands of `dataset` (use `mirror_left` to include
    left hands as mirrored right hands); returns the annotation files."""
    output = Path(output)
    size = dataset.config.image_size
    renderer = Renderer(size)
    layer = dataset.layers["right"]
    written = []
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(count), desc="ohta one-shot inputs", unit="img"):
        sample = dataset[i]
        if not bool(sample["mano_valid_right"]) or bool(sample["mano_valid_left"]):
            continue  # one right hand only
        params, out = sample_hands(sample, dataset.layers)["right"]
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
        name = f"{int(sample['annotation_id']):012d}"
        atomic_write_bytes(output / "img" / f"{name}.jpg", encode_image(to_uint8_image(sample["image"]), ".jpg"), overwrite)
        atomic_write_bytes(output / "mask" / f"{name}.png", encode_image(mask.cpu().numpy().astype(np.uint8) * 255, ".png"), overwrite)
        written.append(write_oneshot_annotation(annotation, output / "anno" / f"{name}.pkl", overwrite))
    log.info("wrote %d OHTA one-shot inputs to %s", len(written), output)
    return written
