"""The Generate tab's jobs: a hand condition (from a photo's fit or a preset pose) and AttentionHand's images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hands.app.config import AppConfig
from hands.app.jobs import AppError, copy_upload, missing_file, new_run_folder, run_verb, safe_name
from hands.io.atomic import atomic_write_bytes
from hands.prediction.types import HandPrediction

PRESETS = ("rest", "fist", "point", "two hands interacting")
FINGERS_UP = (("x", np.pi), ("z", np.pi / 2), ("y", -np.pi / 2))
"""Rotations (camera axes, applied in order) that turn MANO's rest hand to show the palm with the fingers up."""
PRESET_DEPTH = 0.5
"""Meters from the camera to the preset hands' centre."""
INTERACTING_SEED = 7
"""Seed of the synthetic generator's two-hand scene (hands in contact) used as the 'two hands interacting' preset."""


@dataclass
class Condition:
    """A condition ready to sample: its run folder, modalities file, mesh image and the suggested prompt."""

    folder: Path
    manifest: Path
    mesh_image: Path
    prompt: str


def generation_status(config: AppConfig) -> str | None:
    """None when AttentionHand's weights are present, else the sentence naming the missing file."""
    return missing_file(config.attentionhand, "AttentionHand's weights (attentionhand.ckpt)", "--attentionhand")


def _posed(layer, orient: np.ndarray, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray):
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=layer.v_template.dtype)[None]  # noqa: E731
    with torch.no_grad():
        out = layer(as_t(orient), as_t(pose), as_t(betas), as_t(transl))
    return out.vertices[0].double().numpy(), out.joints[0].double().numpy()


def preset_hands(name: str, K: np.ndarray) -> list[HandPrediction]:
    """The preset's hands in the camera frame (meters, centred `PRESET_DEPTH` in front of the camera, palms to
    it, fingers up): a right hand in a named pose, or the synthetic generator's two hands in contact."""
    from scipy.spatial.transform import Rotation

    from hands.data.synthetic.scene import SceneSampler
    from hands.mano import build_mano
    from hands.mano.poses import named_hand_pose
    from hands.prediction.smoothing import project_points

    if name not in PRESETS:
        raise AppError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    layers = {side: build_mano(side, pose_convention="flat", dtype=torch.float64) for side in ("right", "left")}
    if name == "two hands interacting":
        scene = SceneSampler(layers, orientation_range=0.0).sample(np.random.default_rng(INTERACTING_SEED), "interacting",
                                                                   np.zeros(10), contact=True)
        placed = {side: (hand.global_orient, hand.hand_pose, hand.transl) for side, hand in scene.hands.items()}
    else:
        placed = {"right": (np.zeros(3), named_hand_pose(name), np.zeros(3))}
    turn = Rotation.identity()
    for axis, angle in FINGERS_UP:
        turn = Rotation.from_euler(axis, angle) * turn
    posed = {}
    for side, (orient, pose, transl) in placed.items():
        world, _ = _posed(layers[side], orient, pose, np.zeros(10), transl)
        orient = (turn * Rotation.from_rotvec(orient)).as_rotvec()
        unmoved, _ = _posed(layers[side], orient, pose, np.zeros(10), np.zeros(3))
        posed[side] = (orient, pose, turn.apply(world).mean(0) - unmoved.mean(0))
    centre = np.mean([_posed(layers[s], *p[:2], np.zeros(10), p[2])[0].mean(0) for s, p in posed.items()], 0)
    hands = []
    for side, (orient, pose, transl) in posed.items():
        transl = transl - centre + [0.0, 0.0, PRESET_DEPTH]
        vertices, joints = _posed(layers[side], orient, pose, np.zeros(10), transl)
        hands.append(HandPrediction(side, orient, np.asarray(pose, float), np.zeros(10), transl, K, vertices, joints,
                                    project_points(joints, K)))
    return hands


def read_condition(folder: str | Path) -> Condition:
    """The condition written in a run folder of the Generate tab."""
    folder = Path(folder)
    manifest = folder / "condition" / "modalities.json"
    entry = json.loads(manifest.read_text().splitlines()[0])
    return Condition(folder, manifest, folder / entry["mesh"], (folder / entry["text"]).read_text().strip())


def condition_from_preset(config: AppConfig, preset: str) -> Condition:
    """The preset's mesh image, mask box and pose prompt written as a one-line modalities file (AttentionHand's
    input layout, as `hands prepare modalities` writes it) in a new run folder `<out>/generate/<time>_<preset>/`."""
    from hands.attentionhand.interhand_inputs import write_modalities_manifest, write_modality_sample
    from hands.cli.photo_inputs import modality_sample
    from hands.mano import build_mano

    size = config.image_size
    K = np.array([[1.2 * size, 0, (size - 1) / 2], [0, 1.2 * size, (size - 1) / 2], [0, 0, 1]])
    hands = preset_hands(preset, K)
    faces = {side: build_mano(side, pose_convention="flat").faces for side in ("right", "left")}
    rgb, mesh_image, mask, prompt = modality_sample(hands, faces, np.zeros((size, size, 3), np.uint8), size)
    folder = new_run_folder(config.out, "generate", preset)
    line = write_modality_sample(folder / "condition", safe_name(preset), rgb, mesh_image, mask, prompt)
    write_modalities_manifest(folder / "condition" / "modalities.json", [line])
    return read_condition(folder)


def condition_from_photo(config: AppConfig, upload: str) -> Condition:
    """A photo's fitted hands as AttentionHand's condition (`hands prepare modalities`) in a new run folder."""
    if not upload:
        raise AppError("upload a photo first, or choose a preset")
    folder = new_run_folder(config.out, "generate", Path(upload).name)
    photo = copy_upload(upload, folder / "input", config.max_upload_bytes)
    run_verb(["prepare", "modalities", str(photo), "--out", str(folder / "condition"), "--size", str(config.image_size),
              "--device", config.device])
    return read_condition(folder)


def generate(config: AppConfig, condition: Condition, prompt: str, steps: int, guidance: float, seed: int,
             samples: int, attention_guidance: bool) -> tuple[Path, list[Path]]:
    """`hands generate` on the condition with the given prompt and settings into `<run>/generated_<k>/` (images,
    records.jsonl, config.yaml); returns that folder and its images."""
    missing = generation_status(config)
    if missing:
        raise AppError(missing)
    if not prompt.strip():
        raise AppError("enter a prompt")
    entry = json.loads(condition.manifest.read_text().splitlines()[0])
    atomic_write_bytes(condition.folder / entry["text"], (prompt.strip() + "\n").encode(), overwrite=True)
    k = 1 + sum(1 for p in condition.folder.glob("generated_*") if p.is_dir())
    out = condition.folder / f"generated_{k}"
    argv = ["generate", "--sample_path", str(condition.manifest), "--weights", config.attentionhand, "--architecture",
            config.architecture, "--out", str(out), "--device", config.device, "--image_size", str(config.image_size),
            "--steps", str(int(steps)), "--guidance", str(float(guidance)), "--seed", str(int(seed)),
            "--num_samples", str(int(samples)), "--attention_guidance" if attention_guidance else "--no-attention_guidance"]
    run_verb(argv)
    return out, sorted(out.glob("*.png"))
