"""Write a synthetic dataset in the InterHand2.6M v1.0 file format (images + the four annotation files).

Layout: captures (one subject each: shape, skin tone, a camera rig) hold sequences of one hand type (right,
left, interacting with or without contact), and every frame of a sequence is seen by every camera of the rig.
Everything about frame f is drawn from a generator seeded by (seed, f), so a run is deterministic and can be
resumed: finished frames are listed in `.synthetic_progress.jsonl` and skipped; the annotation files are
written at the end.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from hands.config import ConfigError, check_fields, load_config, save_config
from hands.data.hand_samples import ONE_SHARD, Shard
from hands.data.interhand.format import (
    HAND_TYPES,
    JOINT_SLICE,
    NUM_JOINTS,
    InterHandCamera,
    annotation_path,
    flat_to_neuralannot,
    image_relpath,
)
from hands.data.synthetic.appearance import procedural_background, sample_skin_tone, sample_style
from hands.data.synthetic.scene import HandScene, SceneSampler, sample_cameras
from hands.data.synthetic.sources import ImageSource, QualityCheck, ViewCondition, ViewHand
from hands.io.atomic import atomic_path, atomic_write_bytes, check_writable
from hands.io.images import encode_image
from hands.mano import build_mano
from hands.mano.joints import convert_joints
from hands.mano.model_file import SIDES
from hands.render import Meshes, PerspectiveCamera, Renderer, join_meshes
from hands.render.draw import to_uint8_image
from hands.render.shading import MeshImageStyle, mesh_image

log = logging.getLogger(__name__)
PROGRESS_FILE = ".synthetic_progress.jsonl"
DONE_FILE = ".synthetic_done.jsonl"
"""A shard's finished records wait here (`.synthetic_done.shard<r>of<n>.jsonl`) until the last shard merges them."""
SAMPLES_FILE = "generation.jsonl"
"""One line per sample of an image source or quality check: ids, source record, condition, quality, kept."""
SEED_KIND = {"capture": 1, "sequence": 2, "frame": 3, "lighting": 4, "view": 5}


@dataclass
class SyntheticConfig:
    """What `hands synth` generates."""

    num_images: int = 48
    """Images to write (rounded up to whole frames of `cameras_per_capture` views)."""
    split: str = "train"
    """InterHand2.6M split folder: train, val or test."""
    image_width: int = 334
    """Image width in pixels (InterHand2.6M: 334)."""
    image_height: int = 512
    """Image height in pixels (InterHand2.6M: 512)."""
    cameras_per_capture: int = 4
    """Cameras per capture rig; every frame is rendered from each."""
    frames_per_sequence: int = 4
    """Frames per sequence (one hand type per sequence)."""
    sequences_per_capture: int = 5
    """Sequences per capture (one subject per capture)."""
    hand_type_weights: list[float] = field(default_factory=lambda: [0.3, 0.3, 0.4])
    """Relative frequency of right, left and interacting sequences."""
    contact_fraction: float = 0.5
    """Share of interacting sequences whose hands touch."""
    pose_components: int = 12
    """PCA components the poses are sampled from (then clamped to joint limits)."""
    pose_scale: float = 0.9
    """Standard deviation (radians) of the first PCA coefficient; later ones decay by 0.8 each."""
    shape_std: float = 1.0
    """Standard deviation of the betas (clipped to +-2.5)."""
    camera_distance: list[float] = field(default_factory=lambda: [0.45, 0.9])
    """Range of camera distances from the hands in meters."""
    hand_fill: list[float] = field(default_factory=lambda: [0.35, 0.7])
    """Range of the fraction of the image height a 28 cm scene (two hands side by side) spans."""
    orientation_range_deg: float = 180.0
    """Hands turn by up to this angle from MANO's rest orientation (180: uniformly random)."""
    camera_cone_deg: float = 180.0
    """Cameras sit within this angle of the world +z axis (180: anywhere around the hands)."""
    lighting: Literal["image", "capture"] = "image"
    """"image": new lights, ambient and roughness for every image (augmentation); "capture": one fixed lighting
    (in camera axes) per capture, so a subject looks the same in every frame up to its pose (appearance checks)."""
    jpeg_quality: int = 92
    seed: int = 0
    mano_dir: str | None = None
    """Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (default: models/mano, $HANDS_MANO_DIR, else built-in)."""

    @property
    def num_frames(self) -> int:
        return math.ceil(self.num_images / self.cameras_per_capture)

    def __post_init__(self) -> None:
        check_fields(self, at_least={"num_images": 1, "image_width": 16, "image_height": 16, "cameras_per_capture": 1,
                                     "frames_per_sequence": 1, "sequences_per_capture": 1, "jpeg_quality": 1})

    @property
    def frames_per_capture(self) -> int:
        return self.frames_per_sequence * self.sequences_per_capture


def _rng(config: SyntheticConfig, kind: str, *ids: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, SEED_KIND[kind], *ids])


def camera_name(index: int) -> str:
    """InterHand-style numeric camera name."""
    return str(400000 + index)


class SyntheticWriter:
    """Renders frames of a `SyntheticConfig` into `output` and assembles the annotation files.

    `source` replaces the renderer's pictures (e.g. AttentionHand's images of each view's condition); `quality`
    scores every picture and drops those it does not keep; `shard` writes every `count`-th frame from `rank`
    (shards of one dataset run at once or one after another into the same folder; the last merges the
    annotations)."""

    def __init__(self, config: SyntheticConfig, output: str | Path, device: torch.device | str = "cpu",
                 source: ImageSource | None = None, quality: QualityCheck | None = None, shard: Shard = ONE_SHARD) -> None:
        if config.split not in ("train", "val", "test"):
            raise ConfigError(f"split should be train, val or test, got {config.split!r}")
        if config.lighting not in ("image", "capture"):
            raise ConfigError(f"lighting should be image or capture, got {config.lighting!r}")
        if len(config.hand_type_weights) != 3 or min(config.hand_type_weights) < 0 or sum(config.hand_type_weights) <= 0:
            raise ConfigError(f"hand_type_weights should be 3 non-negative weights, got {config.hand_type_weights}")
        self.config = config
        self.output = Path(output)
        self.device = torch.device(device)
        self.layers = {side: build_mano(side, config.mano_dir, pose_convention="flat", dtype=torch.float64)
                       for side in ("right", "left")}
        self.sampler = SceneSampler(self.layers, config.pose_components, config.pose_scale,
                                    np.deg2rad(config.orientation_range_deg))
        self.renderer = Renderer((config.image_height, config.image_width))
        self.source, self.quality, self.shard = source, quality, shard
        self._captures: dict[int, dict] = {}

    # --- what each capture, sequence and frame is -------------------------------------------------------------
    def capture(self, index: int) -> dict:
        """Subject (betas, skin tone) and camera rig of a capture."""
        if index not in self._captures:
            rng = _rng(self.config, "capture", index)
            c = self.config
            betas = np.clip(rng.normal(0, c.shape_std, 10), -2.5, 2.5)
            cameras = sample_cameras(rng, c.cameras_per_capture, (c.image_height, c.image_width),
                                     tuple(c.camera_distance), tuple(c.hand_fill), cone_angle=np.deg2rad(c.camera_cone_deg))
            skin = sample_skin_tone(rng)
            style = sample_style(_rng(c, "lighting", index), skin) if c.lighting == "capture" else None
            self._captures[index] = {"betas": betas, "skin": skin, "cameras": cameras, "style": style}
        return self._captures[index]

    def sequence(self, capture: int, index: int) -> tuple[str, bool]:
        """Hand type and contact flag of a sequence."""
        rng = _rng(self.config, "sequence", capture, index)
        weights = np.asarray(self.config.hand_type_weights, dtype=float)
        hand_type = HAND_TYPES[rng.choice(3, p=weights / weights.sum())]
        return hand_type, bool(hand_type == "interacting" and rng.uniform() < self.config.contact_fraction)

    def frame_layout(self, frame: int) -> tuple[int, str, str, bool]:
        """(capture, sequence name, hand type, contact) of a global frame index."""
        capture, within = divmod(frame, self.config.frames_per_capture)
        sequence = within // self.config.frames_per_sequence
        hand_type, contact = self.sequence(capture, sequence)
        suffix = ("_contact" if contact else "_apart") if hand_type == "interacting" else ""
        return capture, f"{sequence:04d}_{hand_type}{suffix}", hand_type, contact

    # --- rendering and annotation of one frame ----------------------------------------------------------------
    def render_view(self, scene: HandScene, camera: InterHandCamera, rng: np.random.Generator, skin,
                    style: MeshImageStyle | None = None) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB image (H,W,3) and mask (H,W) of the scene seen by one camera (lit by `style`, else a random one)."""
        H, W = self.config.image_height, self.config.image_width
        background = procedural_background(rng, H, W)
        random_style = sample_style(rng, skin)  # drawn either way so the images' other randomness does not change
        style = style or random_style
        meshes = join_meshes([
            Meshes(torch.as_tensor(scene.hands[side].vertices @ camera.R.T + camera.t_meters, dtype=torch.float32,
                                   device=self.device)[None], self.layers[side].faces.to(self.device))
            for side in SIDES if side in scene.hands])
        K = torch.as_tensor(camera.K, dtype=torch.float32, device=self.device)
        fragments = self.renderer.rasterize(meshes, PerspectiveCamera(K))
        colour = mesh_image(fragments, meshes.vertices, meshes.faces, True, style)[0].permute(1, 2, 0).cpu().numpy()
        mask = fragments.mask[0].cpu().numpy()
        image = np.where(mask[..., None], np.round(colour * 255), background).astype(np.uint8)
        return image, mask

    def view_condition(self, scene: HandScene, camera: InterHandCamera, image_id: int, file_name: str, contact: bool,
                       skin: np.ndarray) -> ViewCondition:
        """One view's hands in its camera frame, their mesh image and mask (AttentionHand's condition) and labels."""
        c = self.config
        hands, meshes = [], []
        for side in SIDES:
            if side not in scene.hands:
                continue
            hand = scene.hands[side]
            vertices = hand.vertices @ camera.R.T + camera.t_meters
            joints = hand.joints @ camera.R.T + camera.t_meters
            pixels = camera.project(np.where(joints[:, 2:3] > 0, joints, 1.0))
            visible = (joints[:, 2] > 0) & (pixels >= 0).all(1) & (pixels[:, 0] <= c.image_width - 1) & (pixels[:, 1] <= c.image_height - 1)
            hands.append(ViewHand(side, hand.hand_pose, vertices, joints, pixels, visible))
            meshes.append(Meshes(torch.as_tensor(vertices, dtype=torch.float32, device=self.device)[None],
                                 self.layers[side].faces.to(self.device)))
        K = torch.as_tensor(camera.K, dtype=torch.float32, device=self.device)
        rendered = self.renderer.render(join_meshes(meshes), PerspectiveCamera(K), ["mesh_image", "mask"])
        mask = rendered.mask[0].cpu().numpy()
        ys, xs = np.nonzero(mask)
        box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)] if len(xs) else [0.0] * 4
        seed = int(np.random.SeedSequence([c.seed, SEED_KIND["view"], image_id]).generate_state(1)[0])
        return ViewCondition(image_id, file_name, camera.K, scene.hand_type, contact, hands,
                             to_uint8_image(rendered.mesh_image[0]), mask, box, np.asarray(skin, float), seed)

    def _pictures(self, frame: int, scene: HandScene, capture: dict, names: list[tuple[int, str]],
                  contact: bool) -> list[tuple[np.ndarray, np.ndarray, dict | None]]:
        """(image, mask, sample record or None) per camera: the renderer's pictures, or the source's."""
        c = self.config
        rngs = [np.random.default_rng([c.seed, SEED_KIND["frame"], frame, k]) for k in range(len(names))]
        cameras = capture["cameras"]
        if self.source is None and self.quality is None:
            return [(*self.render_view(scene, camera, rng, capture["skin"], capture["style"]), None)
                    for camera, rng in zip(cameras, rngs)]
        conditions = [self.view_condition(scene, camera, image_id, name, contact, capture["skin"])
                      for camera, (image_id, name) in zip(cameras, names)]
        if self.source is None:
            made = [(self.render_view(scene, camera, rng, capture["skin"], capture["style"])[0], {})
                    for camera, rng in zip(cameras, rngs)]
        else:
            made = self.source.images(conditions)
        pictures = []
        for condition, (image, record) in zip(conditions, made):
            if image.shape != (c.image_height, c.image_width, 3) or image.dtype != np.uint8:
                raise ValueError(f"image source {getattr(self.source, 'name', 'render')}: {condition.file_name} came back "
                                 f"{image.dtype} {image.shape}, expected uint8 ({c.image_height}, {c.image_width}, 3)")
            sample = {"source": getattr(self.source, "name", "render"), "hand_box": [round(v, 1) for v in condition.hand_box],
                      **record}
            if self.source is not None:  # the condition the picture was made from, beside the dataset
                mesh = Path("conditions") / c.split / Path(condition.file_name).with_suffix(".png")
                atomic_write_bytes(self.output / mesh, encode_image(condition.mesh_image, ".png"), overwrite=True)
                sample["mesh"] = str(mesh)
            if self.quality is not None:
                sample["quality"] = self.quality(image, condition)
            pictures.append((image, condition.mask, sample))
        return pictures

    def frame_records(self, frame: int, write_images: bool = True) -> dict:
        """Render (or have the source make) all views of a frame when `write_images`, and return its records."""
        c = self.config
        capture_id, seq_name, hand_type, contact = self.frame_layout(frame)
        capture = self.capture(capture_id)
        rng = _rng(c, "frame", frame)
        scene = self.sampler.sample(rng, hand_type, capture["betas"], contact)
        world_joints = np.zeros((NUM_JOINTS, 3))
        annotated = np.zeros(NUM_JOINTS, dtype=bool)
        mano: dict[str, dict | None] = {"right": None, "left": None}
        for side, hand in scene.hands.items():
            world_joints[JOINT_SLICE[side]] = convert_joints(hand.joints, "canonical", "interhand") * 1000.0
            annotated[JOINT_SLICE[side]] = True
            pose = flat_to_neuralannot(np.concatenate([hand.global_orient, hand.hand_pose]),
                                       self.layers[side].hands_mean.cpu().numpy())
            mano[side] = {"pose": pose.tolist(), "shape": hand.betas.tolist(), "trans": hand.transl.tolist()}
        cameras = capture["cameras"]
        names = [(frame * c.cameras_per_capture + k, image_relpath(capture_id, seq_name, camera_name(k), frame))
                 for k in range(len(cameras))]
        pictures = self._pictures(frame, scene, capture, names, contact) if write_images else [None] * len(cameras)
        images, annotations, samples = [], [], []
        for k, (camera, (image_id, file_name), picture) in enumerate(zip(cameras, names, pictures)):
            cam_joints = camera.world_to_camera(world_joints)
            pixels = camera.project(np.where(cam_joints[:, 2:3] > 0, cam_joints, 1.0))
            inside = (pixels[:, 0] >= 0) & (pixels[:, 0] <= c.image_width - 1) & (pixels[:, 1] >= 0) & (pixels[:, 1] <= c.image_height - 1)
            joint_valid = annotated & (cam_joints[:, 2] > 0) & inside
            ys, xs = np.zeros(0), np.zeros(0)
            if picture is not None:
                image, mask, sample = picture
                kept = sample is None or sample.get("quality", {}).get("keep", True)
                encoded = encode_image(image, ".jpg", c.jpeg_quality)
                atomic_write_bytes(self.output / ("images" if kept else "rejected") / c.split / file_name, encoded, overwrite=True)
                ys, xs = np.nonzero(mask)
                if sample is not None:
                    samples.append({"image_id": image_id, "file_name": file_name, "kept": bool(kept), **sample})
            if len(xs):
                bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            elif joint_valid.any():
                lo, hi = pixels[joint_valid].min(0), pixels[joint_valid].max(0)
                bbox = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
            else:
                bbox = [0.0, 0.0, 0.0, 0.0]
            images.append({"id": image_id, "file_name": file_name, "width": c.image_width, "height": c.image_height,
                           "capture": capture_id, "subject": capture_id, "seq_name": seq_name, "camera": camera_name(k),
                           "frame_idx": frame})
            valid_type = hand_type != "interacting" or int(joint_valid.sum()) > 30
            annotations.append({"id": image_id, "image_id": image_id, "bbox": bbox,
                                "joint_valid": joint_valid.astype(int).tolist(), "hand_type": hand_type,
                                "hand_type_valid": int(valid_type)})
        joint_3d = {"world_coord": world_joints.tolist(), "joint_valid": annotated.astype(int).tolist(),
                    "hand_type": hand_type, "hand_type_valid": 1, "seq": seq_name}
        record = {"frame": frame, "capture": capture_id, "images": images, "annotations": annotations,
                  "joint_3d": joint_3d, "mano": mano}
        if samples:
            record["samples"] = samples
        return record

    # --- the whole run ---------------------------------------------------------------------------------------
    def annotation_files(self) -> list[Path]:
        return [annotation_path(self.output, self.config.split, kind) for kind in ("data", "camera", "joint_3d", "MANO_NeuralAnnot")]

    def run(self, overwrite: bool = False) -> list[Path]:
        """Generate (or resume) this shard's frames; returns the annotation files once every shard has finished
        (the last shard to finish writes them), else this shard's finished-records file."""
        progress = self.shard.part(self.output / PROGRESS_FILE)
        finished = self.shard.part(self.output / DONE_FILE)
        config_file = self.output / "config.yaml"
        if overwrite:
            progress.unlink(missing_ok=True)
            finished.unlink(missing_ok=True)
        else:
            for path in self.annotation_files():
                check_writable(path, overwrite=False)
        if (progress.exists() or finished.exists()) and config_file.exists():
            previous = load_config(SyntheticConfig, config_file)
            if asdict(previous) != asdict(self.config):
                raise ConfigError(f"{self.output} holds an unfinished run with a different config ({config_file}); "
                                  "rerun with the same settings to resume, or pass --overwrite to start over")
        save_config(self.config, config_file, overwrite=True)
        mine = [f for f in range(self.config.num_frames) if f % self.shard.count == self.shard.rank]
        if finished.exists():
            log.info("shard %d/%d: its frames are finished; merging", self.shard.rank, self.shard.count)
        else:
            done = self._read_progress(progress)
            todo = [f for f in mine if f not in done]
            if done:
                log.info("resuming: %d of %d frames already written", len(done), len(mine))
            with open(progress, "a", encoding="utf-8") as stream:
                for frame in tqdm(todo, desc="synthetic frames", unit="frame"):
                    record = self.frame_records(frame)
                    stream.write(json.dumps(record) + "\n")
                    stream.flush()
                    done[frame] = record
            progress.replace(finished)
        if self.shard.count == 1:
            records = self._read_progress(finished)
            written = self._write_annotations([records[f] for f in sorted(records)], overwrite)
            finished.unlink()
            return written
        merged = self.shard.finish(self.output / DONE_FILE, lambda parts, _: self._merge(parts, overwrite), overwrite)
        return self.annotation_files() if merged == self.output / DONE_FILE else [finished]

    def _merge(self, parts: list[Path], overwrite: bool) -> None:
        records: dict[int, dict] = {}
        for part in parts:
            records.update(self._read_progress(part))
        missing = sorted(set(range(self.config.num_frames)) - set(records))
        if missing:
            raise ValueError(f"the shards' records lack frames {missing[:5]}: rerun the shard that wrote them")
        self._write_annotations([records[f] for f in sorted(records)], overwrite)

    @staticmethod
    def _read_progress(path: Path) -> dict[int, dict]:
        records: dict[int, dict] = {}
        if not path.exists():
            return records
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short by an interruption: that frame is redone
                records[int(record["frame"])] = record
        return records

    def _write_annotations(self, records: list[dict], overwrite: bool) -> list[Path]:
        samples = [sample for r in records for sample in r.get("samples", [])]
        dropped = {sample["image_id"] for sample in samples if not sample["kept"]}
        data = {"images": [i for r in records for i in r["images"] if i["id"] not in dropped],
                "annotations": [a for r in records for a in r["annotations"] if a["image_id"] not in dropped],
                "categories": [{"id": 1, "name": "hand"}]}
        cameras, joints, mano = {}, {}, {}
        for record in records:
            capture = str(record["capture"])
            joints.setdefault(capture, {})[str(record["frame"])] = record["joint_3d"]
            mano.setdefault(capture, {})[str(record["frame"])] = record["mano"]
            if capture not in cameras:
                rig = self.capture(record["capture"])["cameras"]
                cameras[capture] = {key: {camera_name(k): getattr(cam, attr).tolist() for k, cam in enumerate(rig)}
                                    for key, attr in (("campos", "campos"), ("camrot", "R"), ("focal", "focal"),
                                                      ("princpt", "princpt"))}
        written = []
        for path, content in zip(self.annotation_files(), (data, cameras, joints, mano)):
            with atomic_path(path, overwrite=True) as tmp:
                tmp.write_text(json.dumps(content))
            written.append(path)
        if samples:
            with atomic_path(self.output / SAMPLES_FILE, overwrite=True) as tmp:
                tmp.write_text("".join(json.dumps(sample) + "\n" for sample in samples))
        kept = len(data["images"])
        log.info("wrote %d images%s and %s", kept, f" ({len(dropped)} of {len(samples)} dropped by the quality check)"
                 if dropped else "", self.output / "annotations")
        return written
