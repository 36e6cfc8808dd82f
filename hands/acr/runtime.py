"""Faster ways to run the ACR network on the CPU, each equal to the eager model within 1e-4 (relative to the
largest output): `channels_last` memory, `torch.compile` (inductor), and an ONNX Runtime export.

    runtime = build_runtime(model, "onnx", input_size=256)
    maps = runtime(images)          # the same ACRMaps as model(images)

`auto` is ONNX Runtime on the CPU when `onnxruntime` is installed (the fastest exact path measured by
`bench/acr.py`), eager otherwise and on CUDA. bf16 autocast is not offered: on random full-size weights its
outputs differ from float32 by 7e-3 of their range, far beyond the 1e-4 bar.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from hands.acr.model import ACRMaps, ACRNet
from hands.mano.model_file import SIDES

log = logging.getLogger(__name__)

Runtime = Literal["auto", "eager", "channels_last", "compile", "onnx"]
OUTPUT_NAMES = ["part_logits"] + [f"{kind}_{side}" for kind in ("params", "centre", "prior") for side in SIDES]


class FlatOutputs(nn.Module):
    """The network with its outputs as a tuple of tensors (for tracing and export)."""

    def __init__(self, model: ACRNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        maps = self.model(images)
        return (maps.part_logits, *(getattr(maps, kind)[side] for kind in ("params", "centre", "prior") for side in SIDES))


def as_maps(outputs: list[Tensor] | tuple[Tensor, ...]) -> ACRMaps:
    """ACRMaps from the tensors in `OUTPUT_NAMES` order."""
    named = dict(zip(OUTPUT_NAMES, outputs))
    return ACRMaps(named["part_logits"], *({side: named[f"{kind}_{side}"] for side in SIDES} for kind in ("params", "centre", "prior")))


class EagerRuntime:
    """The model as it is, or a channels_last copy of it (`Module.to(memory_format=...)` converts in place, which
    would change the caller's model and every runtime built from it later)."""

    def __init__(self, model: ACRNet, channels_last: bool = False) -> None:
        self.model = copy.deepcopy(model).to(memory_format=torch.channels_last) if channels_last else model
        self.channels_last = channels_last

    def __call__(self, images: Tensor) -> ACRMaps:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.model(images)


class CompiledRuntime:
    """`torch.compile` (inductor); compiles on the first call of each input shape."""

    def __init__(self, model: ACRNet) -> None:
        self.compiled = torch.compile(FlatOutputs(model), dynamic=False)

    def __call__(self, images: Tensor) -> ACRMaps:
        return as_maps(self.compiled(images))


def weights_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class OnnxRuntime:
    """The network exported to ONNX (once per weights and input size, into `folder`) run by ONNX Runtime."""

    def __init__(self, model: ACRNet, input_size: int, folder: str | Path | None = None, threads: int | None = None) -> None:
        import onnxruntime

        folder = Path(folder) if folder is not None else Path(tempfile.gettempdir()) / "hands-acr-onnx"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"acr_{weights_digest(model)}_{input_size}.onnx"
        if not path.is_file():
            export_onnx(model, input_size, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_size = input_size

    def __call__(self, images: Tensor) -> ACRMaps:
        if tuple(images.shape[2:]) != (self.input_size, self.input_size):
            raise ValueError(f"this ONNX export takes {self.input_size}x{self.input_size} inputs, got {tuple(images.shape[2:])}")
        outputs = self.session.run(OUTPUT_NAMES, {"images": images.detach().cpu().float().contiguous().numpy()})
        return as_maps([torch.from_numpy(o) for o in outputs])


def export_onnx(model: ACRNet, input_size: int, path: Path) -> Path:
    """Write the network as ONNX (opset 17, batch dimension dynamic) through a temporary file."""
    tmp = path.with_name(f".{path.name}.tmp")
    example = torch.zeros(1, 3, input_size, input_size)
    # The exporter follows the wrapper's train/eval mode (and leaves the model in it): export in eval mode, as
    # the model runs, and give the model back in the mode it came in.
    was_training = model.training
    with torch.no_grad():
        torch.onnx.export(FlatOutputs(model.cpu()).eval(), (example,), str(tmp), input_names=["images"],
                          output_names=OUTPUT_NAMES, opset_version=17, dynamo=False,
                          dynamic_axes={"images": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUT_NAMES}})
    model.train(was_training)
    tmp.replace(path)
    return path


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def build_runtime(model: ACRNet, runtime: Runtime = "auto", input_size: int = 512, device: torch.device | str = "cpu",
                  folder: str | Path | None = None):
    """A callable images (B,3,S,S) -> ACRMaps running `model` the chosen way (see the module docstring)."""
    device = torch.device(device)
    if runtime == "auto":
        runtime = "onnx" if device.type == "cpu" and onnx_available() else "eager"
    if runtime in ("onnx", "compile") and device.type != "cpu":
        log.warning("ACR runtime %s is for the CPU; using eager on %s", runtime, device)
        runtime = "eager"
    if runtime == "onnx":
        if not onnx_available():
            raise ValueError("runtime onnx needs `pip install onnx onnxruntime` (requirements.txt pins them)")
        return OnnxRuntime(model, input_size, folder)
    if runtime == "compile":
        return CompiledRuntime(model)
    if runtime in ("eager", "channels_last"):
        return EagerRuntime(model, runtime == "channels_last")
    raise ValueError(f"runtime should be one of auto, eager, channels_last, compile, onnx; got {runtime!r}")
