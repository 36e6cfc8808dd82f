"""OHTA's training and evaluation inputs from an InterHand-format dataset: one-shot inputs `img/`, `mask/`
(rendered from MANO) and `anno/` pickles for right hands (left hands mirrored by the dataset's `mirror_left`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from hands.data.hand_samples import ONE_SHARD, Shard, samples_with_hands
from hands.data.interhand.dataset import InterHandDataset
from hands.io.atomic import atomic_write_bytes, check_writable
from hands.io.images import write_image
from hands.mano.joints import convert_joints
from hands.ohta.oneshot import oneshot_annotation, write_oneshot_annotation
from hands.render import Meshes, PerspectiveCamera, Renderer
from hands.render.draw import to_uint8_image

log = logging.getLogger(__name__)


def export_ohta(dataset: InterHandDataset, output: str | Path, limit: int | None = None, overwrite: bool = False,
                shard: Shard = ONE_SHARD) -> list[Path]:
    """Write OHTA one-shot inputs (img/, mask/, anno/) for right hands of `dataset` (use `mirror_left` to include
    left hands as mirrored right hands) and captures.json (input name -> capture number: the identity for prior
    learning); returns the annotation files."""
    output = Path(output)
    check_writable(output / "captures.json", overwrite)
    check_writable(shard.part(output / "captures.json"), overwrite)
    captures = {}
    size = dataset.config.image_size
    renderer = Renderer(size)
    layer = dataset.layers["right"]
    written = []
    for sample, hands, name in samples_with_hands(dataset, limit, "ohta one-shot inputs", shard):
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
    atomic_write_bytes(shard.part(output / "captures.json"), json.dumps(captures, indent=0).encode(), overwrite)
    shard.finish(output / "captures.json", lambda parts, final: merge_captures(parts, final, overwrite), overwrite)
    log.info("wrote %d OHTA one-shot inputs to %s", len(written), output)
    return written


def merge_captures(parts: list[Path], final: Path, overwrite: bool = False) -> Path:
    """One captures.json from the shards' parts."""
    captures = {name: capture for part in parts for name, capture in json.loads(part.read_text()).items()}
    return atomic_write_bytes(final, json.dumps(dict(sorted(captures.items())), indent=0).encode(), overwrite)
