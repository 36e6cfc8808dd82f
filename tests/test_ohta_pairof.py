"""PairOF on the built-in hand's MANO-HD: part partition, masked-softmax composition, rigid invariance."""

import numpy as np
import pytest
import torch

from hands.geometry.rotations import axis_angle_to_matrix
from hands.mano.builtin import builtin_model
from hands.ohta.manohd import ManoHD, mano_hd_model
from hands.ohta.pairof import PAIRS, PairOF, masked_softmax


@pytest.fixture(scope="module")
def hand():
    model = builtin_model("right")
    hd = mano_hd_model(model)
    torch.manual_seed(0)
    pairof = PairOF(hd.v_template, hd.faces, hd.weights, hd.parents)
    out = ManoHD(model)(torch.tensor([[0.3, -0.2, 0.1]]), torch.randn(1, 45, generator=torch.Generator().manual_seed(1)) * 0.3)
    return hd, pairof, out


def test_partition_covers_every_face_once(hand):
    hd, pairof, _ = hand
    tight = pairof.tight_faces.reshape(-1, 3)
    tight = tight[tight[:, 0] >= 0].numpy()
    assert len(tight) == len(hd.faces)
    assert {tuple(f) for f in tight.tolist()} == {tuple(f) for f in hd.faces.tolist()}
    labels = hd.weights.argmax(axis=1)
    for part in (0, 5, 15):
        own = pairof.tight_vertices[part].unique().numpy()
        assert set(own.tolist()) == set(np.nonzero(labels == part)[0].tolist())
        extended = pairof.extended_faces[part]
        assert len(extended[extended[:, 0] >= 0]) >= len(pairof.tight_faces[part][pairof.tight_faces[part][:, 0] >= 0])
    assert [p for p, _ in PAIRS] == [int(hd.parents[c]) for _, c in PAIRS]  # each pair is (parent, child)


def test_masked_softmax_formula():
    values = torch.tensor([[0.9, 0.2, 0.0], [0.0, 0.0, 0.0]])
    out = masked_softmax(values, values > 0, dim=1, sigma=0.05)
    w = np.exp(np.array([0.9, 0.2]) / 0.05)
    expected = (w * np.array([0.9, 0.2])).sum() / (w.sum() + 1e-5)
    torch.testing.assert_close(out, torch.tensor([expected, 0.0], dtype=torch.float32))


def test_occupancy_shapes_and_rigid_invariance(hand):
    _, pairof, out = hand
    vertices, frames = out.vertices[:, :-1], out.bone_to_world
    points = torch.cat([vertices[:, ::40] + 0.02 * torch.randn(1, len(vertices[0, ::40]), 3), torch.full((1, 5, 3), 50.0)], dim=1)
    with torch.no_grad():
        result = pairof.query(points, pairof.encode(vertices, frames, torch.Generator().manual_seed(0)))
        assert result.occupancy.shape == points.shape[:2] and result.parts.shape == (1, 16, points.shape[1])
        assert bool(result.outside[0, -5:].all()) and float(result.occupancy[0, -5:].abs().max()) == 0.0
        assert 0 <= float(result.occupancy.min()) and float(result.occupancy.max()) <= 1
        assert not result.outside[0, :-5].all() and float(result.occupancy[0, :-5].max()) > 0
        # moving the hand, its frames and the points rigidly changes nothing: everything is read in bone frames
        rotation = axis_angle_to_matrix(torch.tensor([[0.4, 1.1, -0.7]]))[0]
        shift = torch.tensor([1.0, -2.0, 3.0])
        moved_frames = frames.clone()
        moved_frames[..., :3, :3] = rotation @ frames[..., :3, :3]
        moved_frames[..., :3, 3] = frames[..., :3, 3] @ rotation.T + shift
        moved = pairof.query(points @ rotation.T + shift,
                             pairof.encode(vertices @ rotation.T + shift, moved_frames, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(moved.occupancy, result.occupancy, atol=2e-4, rtol=0)


def test_occupancy_is_differentiable(hand):
    _, pairof, out = hand
    code = pairof.encode(out.vertices[:, :-1].detach(), out.bone_to_world.detach())
    points = out.vertices[:, :-1:50].detach()
    pairof.query(points, code).occupancy.sum().backward()
    assert pairof.decoder.lin0.weight.grad is not None and float(pairof.decoder.lin0.weight.grad.abs().sum()) > 0
    assert pairof.part_encoder.fc_pos.weight.grad is not None
    pairof.zero_grad()
