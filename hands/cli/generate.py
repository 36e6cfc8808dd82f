"""AttentionHand inference: hand images from mesh renders and prompts.

    python inference.py --sample_path samples/modalities.json --weights weights/attentionhand.ckpt \\
        [--steps 20 --guidance 9.0 --num_samples 4 --seed 42 --out outputs/attentionhand] [--attention_guidance]

--weights is the official ldm-format checkpoint (attentionhand.ckpt, or sd15_ini.ckpt for the untrained start) or
a diffusers Stable Diffusion 1.5 folder; --controlnet swaps in a ControlNet saved by `train.py` or
`save_pretrained`. Each line of the modalities file gives images <out>/<sample id>_<k>.png, one line of
records.jsonl (prompt, seed, settings) and, once, config.yaml. Existing outputs are never replaced without
--overwrite; --skip_existing continues an interrupted run. With several processes (RANK / WORLD_SIZE set, e.g. by
torchrun) each takes every WORLD_SIZE-th sample. --export_controlnet DIR writes the ControlNet with
`save_pretrained` so any diffusers pipeline can load it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from hands.attentionhand.components import DEFAULT_WEIGHTS, load_parts
from hands.attentionhand.data import ModalitiesError, read_modalities, read_prompt
from hands.attentionhand.pipeline import SamplingConfig, build_pipeline, read_mesh_hint, sample_images
from hands.cli.options import add_dataclass_arguments, dataclass_from_arguments
from hands.config import save_config
from hands.io.atomic import OutputExistsError, atomic_directory, atomic_write_bytes, check_writable
from hands.io.images import encode_image
from hands.utils.device import resolve_device

log = logging.getLogger("inference")


@dataclasses.dataclass
class InferenceConfig:
    """What `inference.py` ran with (written to <out>/config.yaml)."""

    sample_path: str = "samples/modalities.json"
    """Modalities file (JSON lines: mesh, rgb, text)."""
    weights: str = DEFAULT_WEIGHTS
    """ldm-format .ckpt (attentionhand.ckpt) or a diffusers Stable Diffusion 1.5 folder."""
    controlnet: str | None = None
    """A ControlNet folder (`save_pretrained`) replacing the one in `weights`."""
    architecture: Literal["sd15", "tiny"] = "sd15"
    """Layout of an ldm checkpoint: sd15, or tiny (the test models)."""
    device: str = "auto"
    """auto (CUDA when available), cpu or cuda[:N]."""
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, InferenceConfig]:
    parser = argparse.ArgumentParser(prog="hands generate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample_path", default="samples/modalities.json", help="modalities file (JSON lines)")
    parser.add_argument("--weights", "--checkpoint", dest="weights", default=DEFAULT_WEIGHTS,
                        help="ldm .ckpt or diffusers SD folder (the release's --weights; --checkpoint as in the other verbs)")
    parser.add_argument("--controlnet", help="ControlNet folder written by save_pretrained (overrides the one in --weights)")
    parser.add_argument("--architecture", default="sd15", choices=["sd15", "tiny"], help="layout of an ldm checkpoint")
    parser.add_argument("--out", default="outputs/attentionhand", help="output folder")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--skip_existing", action="store_true", help="skip samples whose images and record exist (resume)")
    parser.add_argument("--allow_outside_paths", action="store_true",
                        help="let the modalities file name files outside its sample folder (absolute or ../ paths)")
    parser.add_argument("--export_controlnet", help="also save the ControlNet (save_pretrained) to this folder")
    add_dataclass_arguments(parser.add_argument_group("sampling (SamplingConfig)"), SamplingConfig)
    args = parser.parse_args(argv)
    sampling = dataclass_from_arguments(SamplingConfig, args)
    config = InferenceConfig(args.sample_path, args.weights, args.controlnet, args.architecture, args.device, sampling)
    return args, config


def main(argv: list[str] | None = None) -> Path:
    args, config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        entries = read_modalities(config.sample_path, args.allow_outside_paths)[rank::world]
        prompts = [read_prompt(entry.text) for entry in entries]
    except ModalitiesError as error:
        raise SystemExit(f"hands generate: {error}") from None
    count = config.sampling.num_samples
    targets = {entry.file_id: [out / f"{entry.file_id}_{k}.png" for k in range(count)] for entry in entries}
    log_path = out / ("records.jsonl" if world == 1 else f"records.rank{rank}.jsonl")
    recorded = recorded_ids(log_path) if args.skip_existing else set()
    todo = [(e, p) for e, p in zip(entries, prompts)
            if not (e.file_id in recorded and all(t.exists() for t in targets[e.file_id]))]
    try:
        if not (args.overwrite or args.skip_existing):
            check_writable(log_path, False)
            for paths in targets.values():
                for path in paths:
                    check_writable(path, False)
        if args.export_controlnet:
            check_writable(args.export_controlnet, args.overwrite)
    except OutputExistsError as error:
        raise SystemExit(f"hands generate: {error}") from None

    device = resolve_device(config.device)
    try:
        parts = load_parts(config.weights, config.controlnet, config.architecture)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"hands generate: {error}") from None
    parts.freeze().to(device)
    if args.export_controlnet:
        with atomic_directory(args.export_controlnet, args.overwrite) as tmp:
            parts.controlnet.save_pretrained(tmp)
        log.info("saved the ControlNet to %s", args.export_controlnet)
    if not todo:
        log.info("nothing to sample: every sample's images and record exist in %s", out)
        return out
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml", overwrite=True)
    pipeline = build_pipeline(parts)
    log.info("sampling %d image(s) for each of %d sample(s) into %s", count, len(todo), out)
    # One record per sample, appended (and flushed to disk) as soon as its images are written: a killed run keeps
    # every finished sample's record, and --skip_existing redoes only the samples without one.
    if args.skip_existing:
        drop_partial_line(log_path)
    with open(log_path, "a" if args.skip_existing else "w") as records:
        for entry, prompt in tqdm(todo, desc="attentionhand", unit="sample"):
            images, record = sample_images(parts, read_mesh_hint(entry.mesh), prompt, config.sampling, pipeline)
            for path, image in zip(targets[entry.file_id], images):
                atomic_write_bytes(path, encode_image(image, ".png"), overwrite=True)
            records.write(json.dumps({"id": entry.file_id, "mesh": str(entry.mesh),
                                      "images": [p.name for p in targets[entry.file_id]], **record}) + "\n")
            records.flush()
            os.fsync(records.fileno())
    return out


def drop_partial_line(path: Path) -> None:
    """Cut a last line a kill left without its newline, so that appended records start on a line of their own."""
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            atomic_write_bytes(path, data[: data.rfind(b"\n") + 1], overwrite=True)


def recorded_ids(path: Path) -> set[str]:
    """The sample ids of a records.jsonl (a line cut short by a kill is ignored)."""
    ids = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                continue
    return ids


if __name__ == "__main__":
    main()
