"""ACR network: shapes, and loading a checkpoint laid out like the official wild.pkl (built here from the
architecture description: HRNet-W32 names, head indices, tensor shapes)."""

import pytest
import torch

from hands.acr.checkpoint import CheckpointError, load_official_checkpoint, ours_to_official
from hands.acr.model import ACRNet


def official_layout() -> dict[str, tuple]:
    """Key -> shape of the official ACR state dict (DataParallel `module.` prefix)."""
    keys: dict[str, tuple] = {}

    def conv(name, cin, cout, k, bias):
        keys[f"{name}.weight"] = (cout, cin, k, k)
        if bias:
            keys[f"{name}.bias"] = (cout,)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{name}.{p}"] = (c,)
        keys[f"{name}.num_batches_tracked"] = ()

    def basic(name, c):
        conv(f"{name}.conv1", c, c, 3, False), bn(f"{name}.bn1", c), conv(f"{name}.conv2", c, c, 3, False), bn(f"{name}.bn2", c)

    def hr_module(name, chans, all_outputs):
        for b, c in enumerate(chans):
            for k in range(4):
                basic(f"{name}.branches.{b}.{k}", c)
        for i in range(len(chans) if all_outputs else 1):
            for j in range(len(chans)):
                if j > i:
                    conv(f"{name}.fuse_layers.{i}.{j}.0", chans[j], chans[i], 1, False), bn(f"{name}.fuse_layers.{i}.{j}.1", chans[i])
                for k in range(i - j):
                    out = chans[i] if k == i - j - 1 else chans[j]
                    conv(f"{name}.fuse_layers.{i}.{j}.{k}.0", chans[j], out, 3, False), bn(f"{name}.fuse_layers.{i}.{j}.{k}.1", out)

    b = "backbone."
    conv(b + "conv1", 3, 64, 3, False), bn(b + "bn1", 64), conv(b + "conv2", 64, 64, 3, False), bn(b + "bn2", 64)
    for i in range(4):
        n, cin = f"{b}layer1.{i}", 64 if i == 0 else 256
        conv(f"{n}.conv1", cin, 64, 1, False), bn(f"{n}.bn1", 64), conv(f"{n}.conv2", 64, 64, 3, False), bn(f"{n}.bn2", 64)
        conv(f"{n}.conv3", 64, 256, 1, False), bn(f"{n}.bn3", 256)
        if i == 0:
            conv(f"{n}.downsample.0", 64, 256, 1, False), bn(f"{n}.downsample.1", 256)
    conv(b + "transition1.0.0", 256, 32, 3, False), bn(b + "transition1.0.1", 32)
    for name, cin, cout in (("transition1.1", 256, 64), ("transition2.2", 64, 128), ("transition3.3", 128, 256)):
        conv(f"{b}{name}.0.0", cin, cout, 3, False), bn(f"{b}{name}.0.1", cout)
    widths = [32, 64, 128, 256]
    hr_module(b + "stage2.0", widths[:2], True)
    for m in range(4):
        hr_module(f"{b}stage3.{m}", widths[:3], True)
    for m in range(3):
        hr_module(f"{b}stage4.{m}", widths, m < 2)
    s = b + "hand_segm.segm_head."
    conv(s + "upsampler.up1.conv.double_conv.0", 32, 16, 3, True), bn(s + "upsampler.up1.conv.double_conv.1", 16)
    conv(s + "upsampler.up1.conv.double_conv.3", 16, 64, 3, True), bn(s + "upsampler.up1.conv.double_conv.4", 64)
    conv(s + "segm_net.double_conv.0", 64, 33, 3, True), bn(s + "segm_net.double_conv.1", 33)
    conv(s + "segm_net.double_conv.3", 33, 33, 3, True)
    for side in "lr":
        for index, out in ((1, 106), (2, 1), (3, 3), (4, 106)):
            h = f"{side}_final_layers.{index}."
            conv(h + "0.0", 34, 64, 3, True), bn(h + "0.1", 64)
            for k in range(2):
                basic(f"{h}1.{k}.0", 64)
            conv(h + "2", 64, out, 1, True)
    conv("contact_layers.1.0", 34, 256, 3, True), bn("contact_layers.1.1", 256)
    keys["contact_layers.2.weight"] = keys["contact_layers.3.weight"] = (1, 6, 256, 16, 1, 1)
    conv("contact_layers.4", 218, 109, 1, True), conv("contact_layers.5", 218, 109, 1, True)
    conv("cam_shape_layers.1.0", 256, 64, 1, True)
    for k in (2, 3):
        keys[f"cam_shape_layers.{k}.weight"], keys[f"cam_shape_layers.{k}.bias"] = (10, 1024), (10,)
    conv("segmentation_layers.1.0", 34, 256, 3, True), bn("segmentation_layers.1.1", 256)  # built, never used
    conv("segmentation_layers.2.0", 256, 33, 1, True)
    return {"module." + k: v for k, v in keys.items()}


@pytest.fixture(scope="module")
def model():
    return ACRNet().eval()


def test_official_checkpoint_loads_with_nothing_missing_or_left_over(model, tmp_path):
    torch.manual_seed(0)
    layout = official_layout()
    state = {k: torch.tensor(3) if shape == () else torch.randn(shape) for k, shape in layout.items()}
    path = tmp_path / "wild.pkl"
    torch.save(state, path)
    load_official_checkpoint(model, path)
    ours = model.state_dict()
    assert torch.equal(ours["left_head.camera.2.weight"], state["module.l_final_layers.3.2.weight"])
    assert torch.equal(ours["parts.right_pose.weight"], state["module.contact_layers.3.weight"])
    assert torch.equal(ours["segmentation.classifier.3.bias"], state["module.backbone.hand_segm.segm_head.segm_net.double_conv.3.bias"])
    assert torch.equal(ours["backbone.stage4.2.fuse_layers.0.3.0.weight"], state["module.backbone.stage4.2.fuse_layers.0.3.0.weight"])
    exported = ours_to_official(ours)
    assert set(exported) == {k for k in layout if ".segmentation_layers." not in k}
    assert all(tuple(v.shape) == layout[k] for k, v in exported.items())


def test_checkpoint_errors_name_the_file(model, tmp_path):
    with pytest.raises(CheckpointError, match="wild.pkl"):
        load_official_checkpoint(model, tmp_path / "wild.pkl")
    (tmp_path / "broken.pkl").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.pkl"):
        load_official_checkpoint(model, tmp_path / "broken.pkl")
    torch.save({"module.backbone.conv1.weight": torch.zeros(64, 3, 3, 3), "module.head.weight": torch.zeros(1)}, tmp_path / "odd.pkl")
    with pytest.raises(CheckpointError, match="head.weight"):
        load_official_checkpoint(model, tmp_path / "odd.pkl")


def test_output_shapes(model):
    with torch.no_grad():
        maps = model(torch.rand(2, 3, 128, 128))
    assert maps.part_logits.shape == (2, 33, 64, 64)
    for side in ("right", "left"):
        assert maps.params[side].shape == (2, 109, 16, 16) and maps.centre[side].shape == (2, 1, 16, 16)
        assert maps.prior[side].shape == (2, 106, 16, 16)
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.rand(1, 3, 100, 128))
