"""OHTA one-shot avatar creation from one image, and what to do with an avatar afterwards.

    python create.py --input data/in_the_wild/img/02023.jpg --checkpoint checkpoints/ohta/pretrained_prior_learning.tar \\
        [--edit] [--out outputs/ohta] [--config configs/ohta/create.yaml] [key=value ...]
    python create.py --text "a hand with a red nail polish" --attentionhand weights/attentionhand.ckpt \\
        [--input POSE_SOURCE.jpg]                                                       # text-to-avatar
    python create.py animate --avatar outputs/ohta/02023/avatar [--poses poses.npy] [--turntable 36] --out hand.mp4
    python create.py export --avatar outputs/ohta/02023/avatar --out hand.glb          # or .obj; vertex colours
    python create.py interpolate --avatars A B [--prior PRIOR] [--steps 8] --out DIR   # identity interpolation
    python create.py sample --prior PRIOR [--count 8] --out DIR                         # new identities
    python create.py evaluate --avatar outputs/ohta/NAME/avatar --frames data/ohta_eval --out metrics.json

The input follows the original's layout: `<root>/img/<name>.jpg`, `<root>/mask/<name>.png` and
`<root>/anno/<name>.pkl` (camera, MANO pose and shape, Th). The prior is the official
`pretrained_prior_learning.tar`, an avatar folder written by this project (a prior from train.py, or a created
avatar to edit further), or `--no_prior` for a randomly initialised one (smoke tests only). `--edit` paints the
masked content of the input into the avatar (the mask covers the painted strokes only).

Results go to `<out>/<name>/`: input.png, reference_<k>.png (the views the fitting used), final_<k>.png (the same
views after creation), avatar/ (load with `hands.ohta.checkpoint.load_avatar`), history.json and config.yaml.
An existing result is replaced only with --overwrite.

animate renders the avatar in the creation's camera (or a framing camera) through a pose sequence (.npy/.npz/.json,
(N, 45) or (N, 48); default: rest, fist, point, spread) and/or a turntable, to .mp4. export writes the sealed mesh
in meters with colours baked at its vertices. interpolate and sample render identity codes through a prior's
networks (the first avatar's by default): codes between two avatars, or drawn from a Gaussian fitted to the
prior's identity rows. evaluate reports PSNR/SSIM/LPIPS(VGG) over full 256² frames masked to the hand on black
(the release's protocol; make the frames with `hands prepare ohta` --split test --path_contains
Capture0/ROM03_RT_No_Occlusion --every 200).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hands.cli.options import config_epilog
from hands.cli.text_to_avatar import TextInputConfig, generate_input
from hands.config import load_config, save_config
from hands.eval.image_metrics import LPIPS, MissingWeightsError
from hands.io.atomic import atomic_directory, check_writable
from hands.io.home import home_file
from hands.io.images import encode_image
from hands.mano import load_mano_model
from hands.mano.poses import named_hand_pose
from hands.ohta.animation import PALM_TO_CAMERA, framing_view, render_view
from hands.ohta.avatar import HandAvatar
from hands.ohta.checkpoint import load_avatar, save_avatar
from hands.ohta.creation import CreationConfig, ViewGeometry, create_avatar
from hands.ohta.inputs import OneShotInput, annotation_for_view, read_oneshot_input, write_oneshot_input
from hands.render.draw import to_uint8_image
from hands.utils.device import resolve_device

log = logging.getLogger("create")

DEFAULT_PRIOR = str(home_file("ohta", "pretrained_prior_learning.tar"))
TOOLS = ("animate", "export", "interpolate", "sample", "evaluate")


@dataclasses.dataclass
class CreateConfig:
    """What `create.py` ran with (written to <out>/<name>/config.yaml)."""

    size: int | None = 256
    """Image side the creation runs at (the input and its camera are resized; null keeps the input's size)."""
    checkpoint: str | None = DEFAULT_PRIOR
    """The prior: the release's .tar or an avatar folder; null for a random one (smoke tests only)."""
    lpips_weights: str | None = None
    """Backbone weights of the LPIPS term (default checkpoints/metrics/); without them the fitting uses L1 only."""
    lpips_net: str = "vgg"
    """LPIPS backbone of the texture fitting: vgg (the release, vgg16-397923af.pth) or alex (alexnet-owt-7be5be79.pth)."""
    mano_dir: str | None = None
    """Folder with MANO_RIGHT.pkl (default: $HANDS_MANO_DIR, $HANDS_HOME/mano, else the built-in hand)."""
    device: str = "auto"
    creation: CreationConfig = dataclasses.field(default_factory=CreationConfig)
    text_input: TextInputConfig = dataclasses.field(default_factory=TextInputConfig)
    """--text: how AttentionHand makes the input image."""


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, CreateConfig]:
    parser = argparse.ArgumentParser(prog="hands avatar create", description=__doc__,
                                     epilog=config_epilog(CreateConfig, "config keys (key=value overrides):"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="<root>/img/<name>.jpg with <root>/mask and <root>/anno beside")
    parser.add_argument("--text", help="text-to-avatar: make the input with AttentionHand from this prompt (the pose and "
                                       "camera from --input's annotation when given, else text_input.pose palm-on)")
    parser.add_argument("--attentionhand", help="AttentionHand weights for --text (ldm .ckpt or diffusers folder)")
    parser.add_argument("--checkpoint", help=f"prior .tar or avatar folder (default {DEFAULT_PRIOR})")
    parser.add_argument("--no_prior", action="store_true", help="start from a random avatar (no checkpoint)")
    parser.add_argument("--edit", action="store_true", help="paint the masked region of the input into the avatar")
    parser.add_argument("--out", default="outputs/ohta", help="output folder (results in <out>/<name>/)")
    parser.add_argument("--config", default=None, help="YAML config (configs/ohta/create.yaml)")
    parser.add_argument("--device", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing result")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. creation.finetune_steps=50 size=128")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may come before or after options
    if not args.input and not args.text:
        parser.error("give --input (an image with its mask and annotation) or --text (a prompt)")
    config = load_config(CreateConfig, args.config, args.overrides)
    if args.attentionhand:
        config.text_input.weights = args.attentionhand
    if args.checkpoint:
        config.checkpoint = args.checkpoint
    if args.no_prior:
        config.checkpoint = None
    if args.device:
        config.device = args.device
    return args, config


def perceptual_loss(weights: str | None, device: torch.device, net: str = "vgg"):
    """LPIPS on [-1, 1] images (one value per image) when its weights are present, else None (logged)."""
    try:
        lpips = LPIPS(weights, net=net).to(device)
    except MissingWeightsError as error:
        log.warning("LPIPS term off: %s", error)
        return None
    return lambda a, b: lpips.model(a, b)


def write_png(path: Path, image: np.ndarray) -> None:
    path.write_bytes(encode_image(image, ".png"))


def text_to_input(avatar: HandAvatar, name: str, given: OneShotInput | None, prompt: str, config: CreateConfig,
                  device: torch.device) -> OneShotInput:
    """The one-shot input of a text-to-avatar run: AttentionHand's image of the hand in the given view (or the
    configured pose, palm to the camera), the render's silhouette and the matching annotation."""
    if given is not None:
        view = given.view
    else:
        pose = torch.cat([torch.tensor(PALM_TO_CAMERA), torch.as_tensor(named_hand_pose(config.text_input.pose)).float()])
        view = framing_view(avatar, pose.to(device), torch.zeros(10, device=device), config.size or 256)
        view = ViewGeometry(view.K.cpu(), view.transl.cpu(), view.pose.cpu(), view.betas.cpu(), view.size)
    image, mask, _ = generate_input(avatar, view, prompt, config.text_input, device)
    return OneShotInput(name, image, mask, view, annotation_for_view(view, config.creation.pose_offset))


def main(argv: list[str] | None = None) -> Path:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        from hands.ohta.avatar_tools import run_tool

        return run_tool(argv[0], argv[1:])
    args, config = parse_args(argv)
    device = resolve_device(config.device)
    oneshot = read_oneshot_input(args.input, config.size, config.creation.pose_offset) if args.input else None
    name = f"text_{re.sub(r'[^a-z0-9]+', '_', args.text.lower()).strip('_')[:48]}" if args.text else oneshot.name
    result_dir = check_writable(Path(args.out) / name, args.overwrite)
    model = load_mano_model("right", config.mano_dir)
    if config.checkpoint is None:
        log.warning("no prior: the avatar starts from random networks; its texture will not generalise. Pass "
                    "--checkpoint %s for real use", DEFAULT_PRIOR)
        avatar = HandAvatar(model)
    else:
        avatar = load_avatar(config.checkpoint, model)
    avatar = avatar.to(device).train()
    if args.text:
        oneshot = text_to_input(avatar, name, oneshot, args.text, config, device)
    log.info("creating %s at %dx%d on %s (%s)", oneshot.name, oneshot.view.size[1], oneshot.view.size[0], device,
             "edit" if args.edit else "inversion + texture fitting")
    start = time.perf_counter()
    perceptual = perceptual_loss(config.lpips_weights, device, config.lpips_net)
    matte = oneshot.matte if oneshot.matte is not None else oneshot.mask
    result = create_avatar(avatar, oneshot.image, matte, oneshot.view, config.creation, edit=args.edit,
                           perceptual=perceptual, progress=not args.quiet)
    seconds = time.perf_counter() - start
    log.info("created in %.1f s", seconds)
    with atomic_directory(result_dir, args.overwrite) as tmp:
        write_png(tmp / "input.png", oneshot.image)
        if args.text:  # the generated input, reusable with --input
            write_oneshot_input(tmp / "text_input", name, oneshot.image, oneshot.mask, oneshot.annotation)
        for k, (view, target, mask) in enumerate(zip(result.views, result.targets, result.masks)):
            write_png(tmp / f"reference_{k}.png", to_uint8_image(target * mask[..., None]))
            write_png(tmp / f"final_{k}.png", render_view(avatar, view, config=config.creation))
        view = oneshot.view
        save_avatar(avatar, tmp / "avatar", {"input": str(args.input), "text": args.text, "edit": args.edit,
                                             "prior": config.checkpoint,
                                             "view": {"K": view.K.tolist(), "transl": view.transl.tolist(), "pose": view.pose.tolist(),
                                                      "betas": view.betas.tolist(), "size": list(view.size)}})
        (tmp / "history.json").write_text(json.dumps({"seconds": seconds, **result.history}))
        save_config(config, tmp / "config.yaml")
    log.info("wrote %s", result_dir)
    return result_dir
