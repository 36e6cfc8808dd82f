"""The rasterizer against exact geometry: an analytic triangle and ray casting (trimesh + embree) on posed hands."""

import numpy as np
import pytest
import torch
import trimesh

from hands.mano import build_mano
from hands.mano.poses import named_hand_pose
from hands.render.rasterizer import rasterize

F64 = torch.float64


def test_triangle_coverage_and_depth_are_exact():
    K = torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]], dtype=F64)
    # A plane z = 2 + 0.5 x seen by the camera; its triangle projects to pixels (12,12), (52,12), (12,52).
    corners = torch.tensor([[12, 12], [52, 12], [12, 52]], dtype=F64)
    rays = torch.cat([(corners - 32) / 100.0, torch.ones(3, 1, dtype=F64)], 1)
    z = 2.0 / (1 - 0.5 * rays[:, 0])
    verts = rays * z[:, None]
    frags = rasterize(verts, torch.tensor([[0, 1, 2]]), K, (64, 64))
    v, u = np.mgrid[0:64, 0:64]
    inside = (u >= 12) & (v >= 12) & (u - 12 + v - 12 <= 40)
    np.testing.assert_array_equal(frags.mask.numpy(), inside)
    x_over_z = (u - 32) / 100.0
    expected_depth = 2.0 / (1 - 0.5 * x_over_z)
    np.testing.assert_allclose(frags.depth.numpy()[inside], expected_depth[inside], atol=1e-12)
    # perspective-correct barycentrics reproduce the 3D point
    point = (frags.barycentrics[..., None] * verts[None, None]).sum(-2)
    np.testing.assert_allclose(point[..., 2].numpy()[inside], expected_depth[inside], atol=1e-12)


@pytest.mark.parametrize("size", [96, 200])
def test_matches_ray_casting_on_two_posed_hands(size):
    right = build_mano("right", pose_convention="flat", dtype=F64)
    left = build_mano("left", pose_convention="flat", dtype=F64)
    r = right(torch.tensor([[0.3, 2.0, 0.2]], dtype=F64), torch.tensor(named_hand_pose("point"), dtype=F64)[None],
              transl=torch.tensor([[0.03, 0.0, 0.45]], dtype=F64)).vertices[0]
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=F64).repeat(15)
    l = left(torch.tensor([[0.1, -1.6, -0.3]], dtype=F64), torch.tensor(named_hand_pose("fist"), dtype=F64)[None] * flip,
             transl=torch.tensor([[-0.04, 0.01, 0.42]], dtype=F64)).vertices[0]
    verts = torch.cat([r, l])
    faces = torch.cat([right.faces, left.faces + r.shape[0]])
    f = 1.4 * size
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], dtype=F64)
    frags = rasterize(verts, faces, K, (size, size))

    mesh = trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False)
    v, u = np.mgrid[0:size, 0:size]
    dirs = np.stack([(u - size / 2) / f, (v - size / 2) / f, np.ones_like(u, dtype=float)], -1).reshape(-1, 3)
    tri_ids, ray_ids, hits = mesh.ray.intersects_id(np.zeros_like(dirs), dirs, multiple_hits=False, return_locations=True)
    ref_depth = np.zeros(size * size)
    ref_depth[ray_ids] = hits[:, 2]
    ref_mask = ref_depth > 0
    ours_mask = frags.mask.numpy().reshape(-1)
    iou = (ref_mask & ours_mask).sum() / (ref_mask | ours_mask).sum()
    assert iou >= 0.995
    assert ours_mask.sum() > 0.05 * size * size  # the hands are really in view
    both = ref_mask & ours_mask
    depth_err = np.abs(frags.depth.numpy().reshape(-1)[both] - ref_depth[both])
    assert np.median(depth_err) < 1e-6 and np.mean(depth_err < 1e-4) > 0.995
    # both hands visible and occluding correctly: pixels from each mesh
    ids = frags.face_ids.numpy().reshape(-1)
    assert (ids[ours_mask] < len(right.faces)).any() and (ids[ours_mask] >= len(right.faces)).any()


def test_depth_gradients_reach_vertices():
    right = build_mano("right", pose_convention="flat", dtype=F64)
    verts = (right().vertices[0] + torch.tensor([0.0, 0.0, 0.4], dtype=F64)).requires_grad_()
    K = torch.tensor([[150.0, 0, 64], [0, 150.0, 64], [0, 0, 1]], dtype=F64)
    frags = rasterize(verts, right.faces, K, (128, 128))
    frags.depth.sum().backward()
    assert verts.grad[:, 2].abs().sum() > 0


def test_faces_off_screen_are_clipped_or_skipped():
    K = torch.tensor([[50.0, 0, 16], [0, 50.0, 16], [0, 0, 1]], dtype=F64)
    square = torch.tensor([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=F64) * torch.tensor([0.2, 0.2, 1.0], dtype=F64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    v, u = np.mgrid[0:32, 0:32]
    for shift_px, expected_cols in ((0.0, (u >= 6) & (u <= 26)), (20.0, (u >= 26)), (40.0, u < 0), (-40.0, u < 0)):
        shifted = square + torch.tensor([shift_px / 50.0, 0.0, 0.0], dtype=F64)
        frags = rasterize(shifted, faces, K, (32, 32))
        np.testing.assert_array_equal(frags.mask.numpy(), expected_cols & (v >= 6) & (v <= 26), err_msg=str(shift_px))


def test_bad_shapes():
    K = torch.eye(3)
    with pytest.raises(ValueError, match="vertices_cam"):
        rasterize(torch.zeros(5, 2), torch.zeros(1, 3, dtype=torch.long), K, (8, 8))
