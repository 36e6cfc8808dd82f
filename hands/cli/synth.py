"""Write a labelled synthetic hand dataset in the InterHand2.6M file format.

    hands synth --out data/synthetic [--config configs/synthetic.yaml] [key=value ...]           # rendered images
    hands synth --out data/synthetic --num 10000 --seed 0
    hands synth --out data/ah --source attentionhand --weights attentionhand.ckpt --num 1000 \\
        [--prompts prompts.txt] [--steps 20 --guidance 9] [--quality --min_consistency 0.5] [--shard 0/4]

Scenes (one hand, two hands with and without contact, poses within joint limits, shapes, camera rigs) come from
the synthetic generator; keys are the fields of `hands.data.synthetic.generator.SyntheticConfig`. With `--source
render` (default) the generator renders each view. With `--source attentionhand` each view's mesh image (the
hands in that camera) and a prompt go to AttentionHand, whose image is written instead: the labels (MANO fits,
joints, cameras, hand types) are the scene's, exact for that image. The mesh images land in `conditions/`, the
prompt, seed and settings of every sample in `generation.jsonl`. `--quality` re-detects and fits every image and
records hand confidence, keypoint PCK and PA-MPJPE; `--min_consistency` drops samples below that PCK from the
annotations (their images go to `rejected/`).

An interrupted run resumes when started again with the same settings (finished frames are never redone);
--overwrite starts over. `--shard R/N` (or RANK / WORLD_SIZE) writes every N-th frame from R; shards run on
several GPUs or machines into one folder, and the last to finish writes the annotations.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Literal

from hands.cli.options import add_dataclass_arguments, config_epilog, dataclass_from_arguments
from hands.config import ConfigError, load_config, save_config
from hands.data.hand_samples import Shard
from hands.data.synthetic.generator import DONE_FILE, PROGRESS_FILE, SyntheticConfig, SyntheticWriter
from hands.io.atomic import OutputExistsError
from hands.utils.device import resolve_device

log = logging.getLogger("synth")


@dataclasses.dataclass
class GenerationSettings:
    """How `hands synth` makes its pictures (written to <out>/generation.yaml)."""

    source: Literal["render", "attentionhand"] = "render"
    weights: str | None = None
    controlnet: str | None = None
    architecture: str = "sd15"
    prompts: str | None = None
    batch_size: int = 4
    sampling: dict = dataclasses.field(default_factory=dict)
    quality: dict | None = None


def parse_args(argv: list[str] | None):
    from hands.attentionhand.pipeline import SamplingConfig
    from hands.fit.quality import QualityConfig

    parser = argparse.ArgumentParser(prog="hands synth", description=__doc__,
                                     epilog=config_epilog(SyntheticConfig, "config keys (key=value overrides):"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", "--output", dest="out", required=True, help="dataset folder (images/ and annotations/ are created in it)")
    parser.add_argument("--config", default=None, help="YAML file with SyntheticConfig fields")
    parser.add_argument("--overwrite", action="store_true", help="start over, replacing an existing dataset")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (rendering, generation, the quality check)")
    parser.add_argument("--num", type=int, default=None, help="number of images (same as num_images=N)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (same as seed=N)")
    parser.add_argument("--shard", default=None, help="RANK/COUNT: this process's share (default $RANK/$WORLD_SIZE)")
    source = parser.add_argument_group("pictures")
    source.add_argument("--source", default="render", choices=["render", "attentionhand"], help="who makes each view's image")
    source.add_argument("--weights", default=None, help="AttentionHand: ldm .ckpt or diffusers SD1.5 folder "
                        "(default $HANDS_HOME/attentionhand/attentionhand.ckpt)")
    source.add_argument("--controlnet", default=None, help="AttentionHand: a ControlNet folder replacing the one in --weights")
    source.add_argument("--architecture", default="sd15", choices=["sd15", "tiny"], help="layout of an ldm checkpoint")
    source.add_argument("--prompts", default=None, help="prompt file, one per line ({hands} = the pose sentence); default: templates")
    source.add_argument("--batch_size", type=int, default=4, help="views sampled together")
    add_dataclass_arguments(parser.add_argument_group("sampling (SamplingConfig; --source attentionhand)"), SamplingConfig,
                            skip=("num_samples", "seed"))  # one image per view, seeded by the view
    check = parser.add_argument_group("quality check (re-detect and fit every image)")
    check.add_argument("--quality", action="store_true", help="score every image (on by default with --min_consistency)")
    add_dataclass_arguments(check, QualityConfig)
    parser.add_argument("overrides", nargs="*", help="key=value overrides of SyntheticConfig")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may come before or after options
    return parser, args, dataclass_from_arguments(SamplingConfig, args), dataclass_from_arguments(QualityConfig, args)


def main(argv: list[str] | None = None) -> list[Path]:
    parser, args, sampling, quality_config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    overrides = list(args.overrides)
    overrides += [f"num_images={args.num}"] if args.num is not None else []
    overrides += [f"seed={args.seed}"] if args.seed is not None else []
    if args.source == "attentionhand" and not any(o.startswith(("image_width=", "image_height=")) for o in overrides):
        overrides += [f"image_width={sampling.image_size}", f"image_height={sampling.image_size}"]  # square, as generated
    try:
        config = load_config(SyntheticConfig, args.config, overrides)
        shard = Shard.parse(args.shard)
    except (ConfigError, ValueError) as error:
        parser.error(str(error))
    use_quality = args.quality or quality_config.min_consistency > 0
    settings = GenerationSettings(args.source, args.weights, args.controlnet, args.architecture, args.prompts, args.batch_size,
                                  dataclasses.asdict(sampling) if args.source == "attentionhand" else {},
                                  dataclasses.asdict(quality_config) if use_quality else None)
    device = resolve_device(args.device)
    out = Path(args.out)
    check_same_settings(out, settings, shard, args.overwrite)
    source = quality = None
    try:
        if args.source == "attentionhand":
            source = attentionhand_source(settings, sampling, config, device)
        if use_quality:
            from hands.fit.quality import FitQuality

            quality = FitQuality(quality_config, str(device))
        out.mkdir(parents=True, exist_ok=True)
        save_config(settings, out / "generation.yaml", overwrite=True)
        written = SyntheticWriter(config, out, device, source, quality, shard).run(overwrite=args.overwrite)
    except (ConfigError, OutputExistsError) as error:
        parser.exit(2, f"error: {error}\n")
    finally:
        if quality is not None:
            quality.close()
    report_kept(out)
    return written


def check_same_settings(out: Path, settings: GenerationSettings, shard: Shard, overwrite: bool) -> None:
    """Refuse to resume an unfinished run that made its pictures another way (its generation.yaml differs)."""
    recorded = out / "generation.yaml"
    unfinished = any(shard.part(out / name).exists() for name in (PROGRESS_FILE, DONE_FILE))
    if overwrite or not unfinished or not recorded.is_file():
        return
    previous = dataclasses.asdict(load_config(GenerationSettings, recorded))
    if previous != dataclasses.asdict(settings):
        changed = sorted(k for k in previous if previous[k] != dataclasses.asdict(settings)[k])
        raise ConfigError(f"{out} holds an unfinished run made with other picture settings ({', '.join(changed)} differ "
                          f"from {recorded}); rerun with the same settings to resume, or pass --overwrite")


def attentionhand_source(settings: GenerationSettings, sampling, config: SyntheticConfig, device):
    from hands.attentionhand.components import DEFAULT_WEIGHTS, load_parts
    from hands.attentionhand.synthetic_source import AttentionHandSource, read_prompt_file

    if config.image_width != config.image_height:
        raise ConfigError(f"--source attentionhand makes square images: image_width ({config.image_width}) and "
                          f"image_height ({config.image_height}) must be equal")
    prompts = read_prompt_file(settings.prompts) if settings.prompts else None
    parts = load_parts(settings.weights or DEFAULT_WEIGHTS, settings.controlnet, settings.architecture)
    parts.freeze().to(device)
    parts.controlnet.eval()
    return AttentionHandSource(parts, sampling, prompts, settings.batch_size)


def report_kept(out: Path) -> None:
    """Log the share of samples the quality check kept (from generation.jsonl, once the annotations exist)."""
    import json

    samples = out / "generation.jsonl"
    if samples.is_file():
        lines = [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]
        scored = [s for s in lines if "quality" in s]
        if scored:
            kept = sum(s["kept"] for s in scored)
            log.info("quality check: kept %d of %d samples (%.1f %%)", kept, len(scored), 100.0 * kept / len(scored))


if __name__ == "__main__":
    main()
