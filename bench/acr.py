"""ACR speed on this machine: the network alone and end to end, beside a ResNet-50 forward in the same run, then
the CPU runtimes (`hands.acr.runtime`) against eager in the same run.

    python bench/acr.py [--repeats 5] [--threads N] [--device cpu|cuda] [--runtimes eager,channels_last,compile,onnx]

End to end = read a JPEG -> letterbox -> network -> decode (MANO) -> render the overlay -> write a JPEG, with a
random-weight full-size ACRNet (the speed does not depend on the weights). Printed as frames per second and as
the ratio to torchvision's ResNet-50 at the same input size (a familiar yardstick: >1 means faster).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision
from timing import median_seconds

from hands.acr.model import ACRNet
from hands.acr.postprocess import PostprocessConfig
from hands.acr.predictor import ACRPredictor
from hands.prediction.runner import draw_predictions
from hands.utils.device import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runtimes", default="eager,channels_last,compile,onnx",
                        help="comma-separated runtimes to compare (compile takes minutes to build)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    model = ACRNet().to(device).eval()
    resnet = torchvision.models.resnet50(weights=None).to(device).eval()
    config = PostprocessConfig(threshold=-1e9)  # random weights: force detections so decoding and rendering run
    predictor = ACRPredictor(model, 512, config, device=device)
    print(f"torch {torch.__version__} on {device}, {args.threads} threads, median of {args.repeats}")
    print(f"{'input':>6s} {'ACR net fps':>12s} {'ResNet-50 fps':>14s} {'ratio':>6s} {'end-to-end fps':>15s}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        source = Path(folder) / "frame.jpg"
        cv2.imwrite(str(source), rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
        for size in (256, 512):
            x = torch.rand(1, 3, size, size, device=device)
            ours = median_seconds(lambda: (model(x), sync()), args.repeats, warmup=1)
            reference = median_seconds(lambda: (resnet(x), sync()), args.repeats, warmup=1)
            predictor.input_size = size

            def end_to_end():
                frame = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB)
                picture = draw_predictions(frame, predictor.predict(frame), predictor.faces)
                cv2.imwrite(str(Path(folder) / "out.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))

            full = median_seconds(end_to_end, args.repeats, warmup=1)
            print(f"{size:6d} {1 / ours:12.2f} {1 / reference:14.2f} {reference / ours:6.2f} {1 / full:15.2f}")
    if device.type == "cpu":
        compare_runtimes(model, args.runtimes.split(","), args.repeats)


def compare_runtimes(model: ACRNet, names: list[str], repeats: int) -> None:
    """Network fps of each runtime at 256 and 512 px, its largest output difference to eager (relative to the
    largest eager output) and its speed-up; ends with the fastest exact runtime at 256 px."""
    from hands.acr.runtime import FlatOutputs, build_runtime

    flat = FlatOutputs(model)
    print(f"\n{'runtime':>14s} {'input':>6s} {'fps':>7s} {'speed-up':>8s} {'max rel diff':>12s}")
    exact = []
    with torch.no_grad(), tempfile.TemporaryDirectory() as folder:
        for size in (256, 512):
            x = torch.rand(1, 3, size, size)
            reference = flat(x)
            scale = max(float(t.abs().max()) for t in reference)
            eager = median_seconds(lambda: model(x), repeats, warmup=1)
            for name in names:
                runtime = build_runtime(model, name, size, "cpu", folder)
                outputs = FlatOutputs(lambda images: runtime(images))(x)  # noqa: B023 - used at once
                diff = max(float((a - b).abs().max()) for a, b in zip(outputs, reference)) / scale
                seconds = median_seconds(lambda: runtime(x), repeats, warmup=1)  # noqa: B023
                print(f"{name:>14s} {size:6d} {1 / seconds:7.2f} {eager / seconds:7.2f}x {diff:12.1e}")
                if diff <= 1e-4 and size == 256:
                    exact.append((eager / seconds, name, 1 / seconds, 1 / eager))
    ratio, name, fps, eager_fps = max(exact)
    print(f"\nacr: {name} {fps:.2f} fps vs eager {eager_fps:.2f} fps at 256 px ({ratio:.2f}x)")

if __name__ == "__main__":
    main()
