"""MANO-HD: subdivision against trimesh's, blendshape/weight interpolation, smoothing, sealing, learned weights."""

import numpy as np
import pytest
import torch
import trimesh

from hands.mano import build_mano
from hands.mano.builtin import builtin_model
from hands.mano.layer import ManoLayer
from hands.ohta.manohd import ManoHD, mano_hd_model, midpoint_subdivision, one_ring_average

MODEL = builtin_model("right")


def test_subdivision_matches_trimesh_and_counts():
    vertices, faces = MODEL.v_template, MODEL.faces
    edges, children = midpoint_subdivision(faces)
    unique_edges = {tuple(sorted(e)) for f in faces.tolist() for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
    assert len(edges) == len(unique_edges) == len(vertices) + len(faces) - 1  # a disk: V - E + F = 1
    assert all(a < b for a, b in edges.tolist())
    grown = np.concatenate([vertices, vertices[edges].mean(axis=1)])
    reference_vertices, reference_faces = trimesh.remesh.subdivide(vertices, faces)
    assert len(children) == len(reference_faces) == 4 * len(faces)
    ours = {tuple(np.round(grown[f], 9).ravel()) for f in children}
    theirs = {tuple(np.round(reference_vertices[f], 9).ravel()) for f in reference_faces}
    # same triangles (as vertex-position triples, orientation included up to rotation of the corners)
    canonical = lambda t: min(t[i:] + t[:i] for i in range(0, 9, 3))  # noqa: E731
    assert {canonical(t) for t in ours} == {canonical(t) for t in theirs}
    # the release's numbering: the first face's first edge is the first new vertex
    a, b = sorted(faces[0, :2])
    assert edges[0].tolist() == [a, b] and children[0].tolist() == [faces[0, 0], len(vertices), len(vertices) + 2]


def test_one_ring_average_against_trimesh_neighbours():
    smoothed = one_ring_average(MODEL.v_template, MODEL.faces)
    mesh = trimesh.Trimesh(MODEL.v_template, MODEL.faces, process=False)
    for i in (0, 100, 500, 777):
        ring = mesh.vertex_neighbors[i]
        np.testing.assert_allclose(smoothed[i], MODEL.v_template[[i, *ring]].mean(axis=0), atol=1e-15)


def test_unsmoothed_mano_hd_keeps_mano_and_interpolates_blendshapes():
    hd = mano_hd_model(MODEL, levels=2, smooth=False)
    level1_edges, level1_faces = midpoint_subdivision(MODEL.faces)
    assert hd.num_vertices == 778 + len(level1_edges) + len(midpoint_subdivision(level1_faces)[0])
    assert len(hd.faces) == 16 * len(MODEL.faces)
    mano = build_mano("right", pose_convention="flat", dtype=torch.float64)
    mano_hd = ManoLayer(hd, pose_convention="flat", dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    orient, pose, betas = torch.randn(2, 3, generator=g) * 0.5, torch.randn(2, 45, generator=g) * 0.4, torch.randn(2, 10, generator=g)
    low, high = mano(orient, pose, betas), mano_hd(orient, pose, betas)
    torch.testing.assert_close(high.vertices[:, :778], low.vertices, rtol=0, atol=1e-12)  # old vertices unchanged
    torch.testing.assert_close(high.joints, low.joints, rtol=0, atol=1e-12)  # joints from the old vertices only
    # with no pose, skinning is the identity and every new vertex is the midpoint of its (shaped) edge
    rest_low, rest_high = mano(torch.zeros(2, 3), torch.zeros(2, 45), betas), mano_hd(torch.zeros(2, 3), torch.zeros(2, 45), betas)
    torch.testing.assert_close(rest_high.vertices[:, 778:778 + len(level1_edges)],
                               rest_low.vertices[:, level1_edges].mean(dim=2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(hd.weights.sum(axis=1), 1.0, atol=1e-12)


def test_sealed_mano_hd_is_watertight_and_in_ohta_frame():
    layer = ManoHD(MODEL, dtype=torch.float64)
    rest = (torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64))
    out = layer(*rest)
    assert out.vertices.shape == (1, layer.num_vertices, 3) and out.joints.shape == (1, 21, 3)
    torch.testing.assert_close(out.joints[0, 4], torch.zeros(3, dtype=torch.float64))  # centred on the middle MCP
    mesh = trimesh.Trimesh(out.vertices[0].numpy(), out.faces_sealed.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    metric = ManoHD(MODEL, ohta_frame=False, dtype=torch.float64)(*rest)
    centre = metric.joints[0, 4]
    torch.testing.assert_close((metric.vertices[0] - centre) * 10, out.vertices[0])  # decimetres


def test_learned_skinning_weights_file(tmp_path):
    count = mano_hd_model(MODEL).num_vertices
    weights = torch.rand(count, 16, generator=torch.Generator().manual_seed(0))
    torch.save(weights, tmp_path / "lbs_weights.pth")
    hd = mano_hd_model(MODEL, skinning_weights=tmp_path / "lbs_weights.pth")
    np.testing.assert_allclose(hd.weights, (weights / weights.sum(1, keepdim=True)).double().numpy(), atol=1e-7)
    torch.save(torch.rand(100, 16), tmp_path / "small.pth")
    with pytest.raises(ValueError, match=f"small.pth: expected a \\({count}, 16\\) tensor"):
        mano_hd_model(MODEL, skinning_weights=tmp_path / "small.pth")
    with pytest.raises(FileNotFoundError, match="lbs_weights.pth"):
        mano_hd_model(MODEL, skinning_weights=tmp_path / "none.pth")
