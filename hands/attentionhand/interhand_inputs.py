"""AttentionHand's training inputs from an InterHand-format dataset: per image an RGB crop, the mesh image rendered
from the 3D labels in the same crop camera, a template text prompt, and `modalities.json` (JSON lines: mesh, rgb,
text, bbox), paths relative to the output folder's parent as in the original `data/modalities.json`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from hands.attentionhand.prompts import describe_pose, hand_prompt
from hands.data.hand_samples import ONE_SHARD, Shard, samples_with_hands
from hands.data.interhand.dataset import InterHandDataset
from hands.io.atomic import atomic_path, atomic_write_bytes, check_writable
from hands.io.images import write_image
from hands.render import Meshes, PerspectiveCamera, Renderer, join_meshes
from hands.render.draw import to_uint8_image

log = logging.getLogger(__name__)


def export_attentionhand(dataset: InterHandDataset, output: str | Path, limit: int | None = None,
                         overwrite: bool = False, shard: Shard = ONE_SHARD) -> Path:
    """Write rgb/, mesh/, text/ and modalities.json for up to `limit` samples of `dataset` into `output` (this
    shard's share; the last shard merges the manifest)."""
    output = Path(output)
    manifest = output / "modalities.json"
    check_writable(manifest, overwrite)
    check_writable(shard.part(manifest), overwrite)
    size = dataset.config.image_size
    renderer = Renderer(size)
    lines = []
    for sample, hands, name in samples_with_hands(dataset, limit, "attentionhand modalities", shard):
        meshes = join_meshes([Meshes(out.vertices.float(), dataset.layers[side].faces) for side, (_, out) in hands.items()])
        rendered = renderer.render(meshes, PerspectiveCamera(sample["K"]), ["mesh_image", "mask"])
        if not rendered.mask.any():
            continue
        poses = {side: describe_pose(params["hand_pose"][0].double().cpu().numpy(), side,
                                     out.joints[0].double().cpu().numpy()) for side, (params, out) in hands.items()}
        lines.append(write_modality_sample(output, name, to_uint8_image(sample["image"]), to_uint8_image(rendered.mesh_image[0]),
                                           rendered.mask[0].cpu().numpy(), hand_prompt(poses), overwrite))
    write_modalities_manifest(shard.part(manifest), lines, overwrite)
    return shard.finish(manifest, lambda parts, final: merge_modalities(parts, final, overwrite), overwrite)


def merge_modalities(parts: list[Path], final: Path, overwrite: bool = False) -> Path:
    """One modalities.json from the shards' parts, ordered by sample name (as one process writes it)."""
    lines = [line for part in parts for line in part.read_text().splitlines() if line.strip()]
    return write_modalities_manifest(final, sorted(lines, key=lambda line: Path(json.loads(line)["text"]).stem), overwrite)


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
