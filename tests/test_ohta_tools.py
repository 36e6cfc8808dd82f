"""Using avatars: baked views against the full band renderer, pose sequences, turntables, identity interpolation
and sampling, vertex-colour export, and the create.py animate/export/interpolate/sample commands."""

import json
import math

import cv2
import numpy as np
import pytest
import torch
import trimesh

import create
from hands.geometry.rotations import axis_angle_to_matrix
from hands.mano.builtin import builtin_model
from hands.ohta.animation import framing_view, interpolate_identities, read_pose_sequence, sample_identities, turned, vertex_colours
from hands.ohta.avatar import HandAvatar
from hands.ohta.checkpoint import save_avatar
from hands.ohta.creation import CachedView, CreationConfig
from hands.ohta.volume import VolumeConfig, render_image

MODEL = builtin_model("right")


@pytest.fixture(scope="module")
def avatar():
    torch.manual_seed(0)
    return HandAvatar(MODEL)


def flat_view(avatar, size=32):
    return framing_view(avatar, torch.cat([torch.tensor([math.pi, 0.0, 0.0]), torch.zeros(45)]), torch.zeros(10), size)


def test_baked_view_matches_the_band_renderer(avatar):
    view = flat_view(avatar)
    config = CreationConfig()
    cached = CachedView(avatar, view, config)
    with torch.no_grad():
        baked = cached.render(avatar, avatar.appearance.id_feature, calibrate=False)
        posed = avatar.pose(view.pose[None, :3], view.pose[None, 3:], view.betas[None], torch.Generator().manual_seed(0))
        full = render_image(avatar, posed, view.K[None], view.Th[None], view.size, avatar.appearance.id_feature[None],
                            VolumeConfig(perturb=False))
    # pruned samples carry at most 1 % of a ray's weight; early termination at 0.1 % transmittance
    assert float((baked - full["rgb"][0]).abs().max()) < 0.012
    assert float((cached.opacity - full["opacity"][0]).abs().max()) < 0.012
    assert float(cached.opacity.max()) > 0.9


def test_views_poses_and_identities(avatar, tmp_path):
    view = flat_view(avatar)
    around = turned(turned(view, math.pi), math.pi)
    torch.testing.assert_close(axis_angle_to_matrix(around.pose[None, :3]), axis_angle_to_matrix(view.pose[None, :3]),
                               atol=1e-5, rtol=0)
    half = axis_angle_to_matrix(turned(view, math.pi).pose[None, :3])[0] @ axis_angle_to_matrix(view.pose[None, :3])[0].T
    torch.testing.assert_close(half, torch.diag(torch.tensor([-1.0, 1.0, -1.0])), atol=1e-5, rtol=0)  # about camera y
    poses = np.random.default_rng(0).normal(size=(3, 48))
    (tmp_path / "p.json").write_text(json.dumps(poses.tolist()))
    np.save(tmp_path / "p.npy", poses[:, 3:])
    torch.testing.assert_close(read_pose_sequence(tmp_path / "p.json"), read_pose_sequence(tmp_path / "p.npy"))
    np.save(tmp_path / "bad.npy", np.zeros((3, 7)))
    with pytest.raises(ValueError, match="bad.npy"):
        read_pose_sequence(tmp_path / "bad.npy")
    a, b = torch.zeros(33), torch.ones(33)
    codes = interpolate_identities(a, b, 5)
    assert torch.equal(codes[0], a) and torch.equal(codes[-1], b) and torch.allclose(codes[2], torch.full((33,), 0.5))
    rows = torch.randn(30, 33, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.1, 2, 33)
    drawn = sample_identities(rows, 20000, torch.Generator().manual_seed(2))
    torch.testing.assert_close(drawn.mean(0), rows.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(drawn.std(0), rows.std(0), atol=0.05, rtol=0.05)


def test_vertex_colour_export_round_trips(avatar, tmp_path):
    vertices, faces, colours = vertex_colours(avatar)
    assert vertices.shape == (avatar.mano.num_vertices, 3) and colours.min() >= 0 and colours.max() <= 1
    assert 0.1 < float(np.ptp(vertices[:, :2], axis=0).max()) < 0.3  # a hand, in meters
    from hands.io.mesh import save_glb, save_obj

    loaded = trimesh.load(save_obj(tmp_path / "hand.obj", vertices, faces, colors=colours), process=False)
    np.testing.assert_allclose(loaded.vertices, vertices, atol=1e-6)
    np.testing.assert_allclose(loaded.visual.vertex_colors[:, :3] / 255.0, colours, atol=1 / 255 + 1e-6)
    glb = trimesh.load(save_glb(tmp_path / "hand.glb", vertices, faces, colours), process=False, force="mesh")
    np.testing.assert_allclose(glb.vertices, vertices, atol=1e-6)
    np.testing.assert_allclose(glb.visual.vertex_colors[:, :3] / 255.0, colours, atol=1 / 255 + 1e-6)


def test_create_tools(avatar, tmp_path):
    folder = save_avatar(avatar, tmp_path / "avatar")
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps([[0.0] * 45, [0.3] * 45]))
    video = create.main(["animate", "--avatar", str(folder), "--poses", str(poses), "--turntable", "2", "--size", "24",
                         "--out", str(tmp_path / "hand.mp4")])
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4 and int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 24
    mesh = create.main(["export", "--avatar", str(folder), "--out", str(tmp_path / "hand.glb")])
    assert trimesh.load(mesh, force="mesh").vertices.shape[0] == avatar.mano.num_vertices
    with pytest.raises(FileExistsError):
        create.main(["export", "--avatar", str(folder), "--out", str(tmp_path / "hand.glb")])
    strip = create.main(["interpolate", "--avatars", str(folder), str(folder), "--steps", "2", "--size", "24",
                         "--out", str(tmp_path / "between")])
    assert sorted(p.name for p in strip.iterdir()) == ["codes.npy", "identity_00.png", "identity_01.png", "strip.png"]
    drawn = create.main(["sample", "--prior", str(folder), "--count", "2", "--size", "24", "--out", str(tmp_path / "new")])
    codes = np.load(drawn / "codes.npy")
    assert codes.shape == (2, 33) and not np.allclose(codes[0], codes[1])


def test_evaluation_protocol_on_frames_the_avatar_rendered(avatar, tmp_path):
    from hands.ohta.animation import render_view
    from hands.ohta.evaluation import evaluate_avatar, evaluation_frames
    from hands.ohta.inputs import annotation_for_view, read_oneshot_input, write_oneshot_input

    for k, angle in enumerate((0.0, 0.5)):
        view = turned(flat_view(avatar, 32), angle)
        mask = CachedView(avatar, view, CreationConfig()).opacity.numpy() > 0.5
        write_oneshot_input(tmp_path, f"f{k}", render_view(avatar, view), mask, annotation_for_view(view))
    frames = evaluation_frames(tmp_path)
    same = evaluate_avatar(avatar, frames, size=None)
    assert same["count"] == 2 and same["mean"]["psnr"] > 35 and same["mean"]["ssim"] > 0.95, same
    other = HandAvatar(MODEL, seed=5)
    with torch.no_grad():
        other.appearance.dict_fusion[4].bias.add_(1.0)
    worse = evaluate_avatar(other, frames, size=None)
    assert worse["mean"]["psnr"] < same["mean"]["psnr"] - 10
    # psnr_hand: the error over the hand mask alone, against numpy on the same images
    frame = read_oneshot_input(frames[1])
    rendered, target = render_view(other, frame.view) / 255.0, frame.image * frame.mask[..., None] / 255.0
    expected = -10 * np.log10(((rendered - target)[frame.mask] ** 2).mean())
    assert worse["frames"][1]["psnr_hand"] == pytest.approx(expected, abs=0.05)
    assert worse["frames"][1]["psnr_hand"] < worse["frames"][1]["psnr"]  # the black background flatters the full frame
