"""ACR training: targets, mirrored samples, a loss that falls, and train.py with checkpoints and resume."""

import pytest
import torch

from hands.acr.data import ACRTrainingSet, mirror_sample
from hands.acr.losses import acr_losses
from hands.acr.model import ACRNetConfig
from hands.acr.training import ACRModule, ACRTrainConfig
from hands.mano import build_mano
from hands.mano.joints import convert_joints
from scripts.prepare import main as prepare
from train import main as train

TINY = ACRNetConfig(backbone_width=8, head_width=16, pose_width=32, shape_width=16)


@pytest.fixture(scope="module")
def acr_index(synthetic_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("acr") / "index"
    prepare(["acr", "--root", str(synthetic_root), "--out", str(folder), "--size", "128"])
    return folder


def test_samples_and_their_mirror_images_agree_with_mano(acr_index):
    layers = {side: build_mano(side, pose_convention="flat") for side in ("right", "left")}
    data = ACRTrainingSet(acr_index, 64)
    checked = 0
    for i in range(len(data)):
        original = data[i]
        assert original["image"].shape == (3, 64, 64) and original["parts"].shape == (32, 32)
        assert original["centre_maps"].shape == (2, 8, 8)
        for sample in (original, mirror_sample(original)):
            for s, side in enumerate(("right", "left")):
                if not sample["present"][s]:
                    continue
                pose = sample["pose"][s]
                out = layers[side](pose[None, :3], pose[None, 3:], sample["betas"][s][None])
                joints = out.joints[0] - out.joints[0, 9]
                gt = convert_joints(sample["joints_3d"][slice(0, 21) if s == 0 else slice(21, 42)], "interhand", "canonical")
                assert (joints - (gt - gt[9])).norm(dim=-1).max() < 3e-3  # the same hand (middle tip: vertex 444 vs 445)
                parts = sample["parts"]
                assert ((parts >= 1) & (parts <= 16)).any() == bool(sample["present"][0])
                checked += 1
    assert checked >= 20


def test_loss_falls_on_a_fixed_batch(acr_index):
    torch.manual_seed(0)
    config = ACRTrainConfig(data=str(acr_index), input_size=64, net=TINY)
    module = ACRModule(config)
    data = ACRTrainingSet(acr_index, 64)
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    optimiser = torch.optim.Adam(module.model.parameters(), lr=1e-3)
    history = []
    for _ in range(40):
        losses = acr_losses(module.model(batch["image"]), batch, module.layers, config.losses)
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    assert history[-1]["total"] < 0.2 * history[0]["total"]
    assert history[-1]["joints_3d"] < 0.5 * history[0]["joints_3d"]
    assert history[-1]["segmentation"] < 0.5 * history[0]["segmentation"]


def test_train_script_writes_checkpoints_and_resumes(acr_index, tmp_path):
    output = tmp_path / "run"
    args = ["--config", "configs/acr/synthetic.yaml", f"trainer.output={output}", "trainer.accelerator=cpu",
            "trainer.val_every_steps=2", "trainer.checkpoint_every_steps=2", "trainer.log_every_steps=1",
            f"acr.data={acr_index}", "acr.input_size=64", "acr.batch_size=4", "acr.num_workers=0",
            "acr.net.backbone_width=8", "acr.net.head_width=16", "acr.net.pose_width=32", "acr.net.shape_width=16"]
    train(args + ["trainer.max_steps=2"])
    last = output / "checkpoints" / "last.ckpt"
    assert last.is_file() and (output / "config.yaml").is_file()
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 2
    with pytest.raises(SystemExit):
        train(args + ["trainer.max_steps=4"])  # the folder holds a run: neither --resume nor --overwrite
    train(args + ["trainer.max_steps=4", "--resume"])
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 4
    with pytest.raises(SystemExit):
        train(args + ["trainer.max_step=4"])  # unknown key


@pytest.mark.slow
def test_acr_learns_on_synthetic_hands(tmp_path):
    """A few hundred steps on a small synthetic set bring held-out MPJPE well below the untrained model's."""
    from hands.acr.losses import LossWeights
    from hands.acr.training import root_relative_mpjpe
    from scripts.make_synthetic import main as make_synthetic

    make_synthetic(["--output", str(tmp_path / "synthetic"), "--device", "cpu", "num_images=160", "image_width=96",
                    "image_height=128", "orientation_range_deg=30", "camera_cone_deg=30", "hand_type_weights=[1,1,0.5]"])
    prepare(["acr", "--root", str(tmp_path / "synthetic"), "--output", str(tmp_path / "acr"), "--size", "128"])
    torch.manual_seed(0)
    # 2D keypoints weigh less than ACR's 400 here: the absolute camera offsets take thousands of steps to learn
    config = ACRTrainConfig(data=str(tmp_path / "acr"), input_size=64, net=TINY, lr=2e-3, val_fraction=0.2,
                            losses=LossWeights(joints_2d=20.0))
    module = ACRModule(config)
    train_set, val_set = module.datasets()
    held_out = torch.utils.data.default_collate([val_set[i] for i in range(len(val_set))])

    def mpjpe():
        module.eval()
        with torch.no_grad():
            total, hands = root_relative_mpjpe(module, held_out)
        module.train()
        return total / hands

    untrained = mpjpe()
    optimiser = torch.optim.Adam(module.model.parameters(), lr=config.lr)
    loader = torch.utils.data.DataLoader(train_set, batch_size=8, shuffle=True, drop_last=True)
    step = 0
    while step < 300:
        for batch in loader:
            loss = acr_losses(module.model(batch["image"]), batch, module.layers, config.losses)["total"]
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            if step == 300:
                break
    trained = mpjpe()
    assert trained < 0.75 * untrained, (untrained, trained)
