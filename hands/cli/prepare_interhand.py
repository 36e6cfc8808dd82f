"""Make method-specific training inputs from an InterHand-format dataset (InterHand2.6M or a synthetic set).

    hands prepare attentionhand --root data/InterHand2.6M --split train --out data/attentionhand
    hands prepare ohta --root data/InterHand2.6M --split test --out data/ohta_oneshot
    hands prepare ohta --root data/InterHand2.6M --split test --path_contains Capture0/ROM03_RT_No_Occlusion \
        --every 200 --out data/ohta_eval          # OHTA's evaluation frames
    hands prepare acr --root data/InterHand2.6M --split train --out data/acr_train

attentionhand: RGB crops, mesh images rendered from the 3D labels, template prompts and modalities.json.
ohta: one-shot inputs (img/, mask/, anno/*.pkl) for single hands, left hands mirrored to right.
acr: whole images padded to 512 x 512, 33-class part-label maps and index.npz (cameras, poses, centres, joints).
"""

from __future__ import annotations

import argparse
import logging

from hands.acr.interhand_inputs import export_acr
from hands.attentionhand.interhand_inputs import export_attentionhand
from hands.data.hand_samples import Shard
from hands.data.interhand.dataset import InterHandDataConfig, InterHandDataset
from hands.data.interhand.index import InterHandFormatError
from hands.io.atomic import OutputExistsError
from hands.ohta.interhand_inputs import export_ohta

DEFAULTS = {"attentionhand": {"image_size": 512, "bbox_scale": 2.0}, "ohta": {"image_size": 256, "bbox_scale": 1.5},
            "acr": {"image_size": 512, "bbox_scale": 1.0}}


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(prog="hands prepare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=sorted(DEFAULTS))
    parser.add_argument("--root", required=True, help="dataset folder with images/ and annotations/")
    parser.add_argument("--split", default="train")
    parser.add_argument("--index_dir", default=None,
                        help="annotation index folder (default: beside the annotations; read-only sets: $HANDS_HOME/cache)")
    parser.add_argument("--out", "--output", dest="out", required=True, help="output folder")
    parser.add_argument("--size", type=int, default=None, help="crop side in pixels (attentionhand 512, ohta 256)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples")
    parser.add_argument("--path_contains", help="only images whose path contains this (e.g. Capture0/ROM03_RT_No_Occlusion)")
    parser.add_argument("--every", type=int, default=1, help="every n-th selected annotation (OHTA's evaluation: 200)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--shard", default=None, help="RANK/COUNT: this process's share (default: $RANK/$WORLD_SIZE, "
                                                      "else all); the last shard to finish merges the manifest")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    defaults = DEFAULTS[args.method]
    config = InterHandDataConfig(root=args.root, split=args.split, image_size=args.size or defaults["image_size"],
                                 bbox_scale=defaults["bbox_scale"], require_mano=True,
                                 hand_types=["right", "left"] if args.method == "ohta" else ["right", "left", "interacting"],
                                 mirror_left=args.method == "ohta", full_image=args.method == "acr",
                                 path_contains=args.path_contains, every=args.every, cache_dir=args.index_dir)
    try:
        dataset = InterHandDataset(config)
        exporter = {"attentionhand": export_attentionhand, "ohta": export_ohta, "acr": export_acr}[args.method]
        return exporter(dataset, args.out, args.limit, args.overwrite, Shard.parse(args.shard))
    except (InterHandFormatError, OutputExistsError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
