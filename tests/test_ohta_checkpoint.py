"""Avatar files: our folder format and the release's `.tar` key map round-trip to the same renders; bad files give
clear errors."""

import math

import pytest
import torch

from hands.mano.builtin import builtin_model
from hands.ohta.avatar import HandAvatar
from hands.ohta.checkpoint import AVATAR_WEIGHTS, AvatarCheckpointError, load_avatar, load_release_checkpoint, ours_to_release, save_avatar

MODEL = builtin_model("right")


@pytest.fixture(scope="module")
def avatar():
    torch.manual_seed(0)
    avatar = HandAvatar(MODEL, seed=7)
    with torch.no_grad():  # make every learned tensor distinct from a fresh initialisation
        for p in avatar.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return avatar


def colours(avatar):
    pose = torch.cat([torch.tensor([[math.pi, 0.1, 0.0]]), torch.zeros(1, 45)], dim=1)
    posed = avatar.pose(pose[:, :3], pose[:, 3:], torch.zeros(1, 10), torch.Generator().manual_seed(0))
    points = posed.vertices[:, ::97] * 1.02
    with torch.no_grad():
        shaded = avatar.shade(points, posed, avatar.appearance.id_code[2:3], calibrate=True)
        occupancy = avatar.occupancy(points, posed).occupancy
    return torch.cat([shaded["colour"][0], occupancy[0, :, None]], dim=1)


def test_our_format_round_trips(avatar, tmp_path):
    folder = save_avatar(avatar, tmp_path / "avatar", {"made_by": "test"})
    loaded = load_avatar(folder, MODEL)
    torch.testing.assert_close(colours(loaded), colours(avatar), atol=0, rtol=0)
    with pytest.raises(FileExistsError):
        save_avatar(avatar, folder)
    (folder / AVATAR_WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(AvatarCheckpointError, match="cannot be read"):
        load_avatar(folder, MODEL)
    with pytest.raises(FileNotFoundError, match="avatar.safetensors"):
        load_avatar(tmp_path / "nowhere", MODEL)


def test_release_key_map_round_trips(avatar, tmp_path):
    network = ours_to_release(avatar)
    assert "smpl_body.coap.partitioner.sample_face_tensor_4096" in network
    assert "id_net_list.0.lin0.weight_g" in network and "dict_fusion.4.weight" in network
    assert network["color_dict_list.4"].shape == (4096, 128)
    path = tmp_path / "pretrained_prior_learning.tar"
    torch.save({"iter": 1, "network": network, "optimizer": {}}, path)
    loaded = load_release_checkpoint(path, MODEL)
    torch.testing.assert_close(colours(loaded), colours(avatar), atol=1e-6, rtol=0)
    # anchors are loaded, not re-sampled: a different seed would place them elsewhere
    torch.testing.assert_close(loaded.appearance.anchors.weights_512, avatar.appearance.anchors.weights_512)
    network["something.new"] = torch.zeros(1)
    torch.save({"network": network}, path)
    with pytest.raises(AvatarCheckpointError, match="something.new"):
        load_release_checkpoint(path, MODEL)
    del network["something.new"], network["color_dict_list.1"]
    torch.save({"network": network}, path)
    with pytest.raises(AvatarCheckpointError, match="missing.*features.1"):
        load_release_checkpoint(path, MODEL)
    with pytest.raises(FileNotFoundError, match="pretrained_prior_learning.tar"):
        load_release_checkpoint(tmp_path / "absent.tar", MODEL)
