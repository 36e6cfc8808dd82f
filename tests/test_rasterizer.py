"""The rasterizer against exact geometry: analytic triangles and a cube, and ray casting (trimesh + embree)."""

import numpy as np
import pytest
import torch
import trimesh

from hands.geometry.cameras import PerspectiveCamera, WeakPerspectiveCamera
from hands.geometry.rotations import axis_angle_to_matrix
from hands.mano import build_mano
from hands.mano.poses import named_hand_pose
from hands.render.rasterizer import rasterize
from tests.scenes import joined, posed_two_hands

F64 = torch.float64


def camera(focal: float, cx: float, cy: float) -> PerspectiveCamera:
    return PerspectiveCamera.from_focal(focal, (cx, cy), dtype=F64)


def test_triangle_coverage_and_depth_are_exact():
    cam = camera(100.0, 32, 32)
    # A plane z = 2 + 0.5 x seen by the camera; its triangle projects to pixels (12,12), (52,12), (12,52).
    corners = torch.tensor([[12, 12], [52, 12], [12, 52]], dtype=F64)
    rays = torch.cat([(corners - 32) / 100.0, torch.ones(3, 1, dtype=F64)], 1)
    verts = rays * (2.0 / (1 - 0.5 * rays[:, 0]))[:, None]
    frags = rasterize(cam.project(verts[None]), torch.tensor([[0, 1, 2]]), (64, 64))
    v, u = np.mgrid[0:64, 0:64]
    inside = (u >= 12) & (v >= 12) & (u - 12 + v - 12 <= 40)
    np.testing.assert_array_equal(frags.mask[0].numpy(), inside)
    expected_depth = 2.0 / (1 - 0.5 * (u - 32) / 100.0)
    np.testing.assert_allclose(frags.depth[0].numpy()[inside], expected_depth[inside], atol=1e-12)
    # perspective-correct barycentrics reproduce the 3D point
    point = (frags.barycentrics[0, ..., None] * verts[None, None]).sum(-2)
    np.testing.assert_allclose(point[..., 2].numpy()[inside], expected_depth[inside], atol=1e-12)


def unit_cube() -> tuple[torch.Tensor, torch.Tensor]:
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    return torch.tensor(box.vertices, dtype=F64), torch.tensor(box.faces)


@pytest.mark.parametrize("cull", [False, True])
def test_cube_face_on_is_exact(cull):
    verts, faces = unit_cube()
    verts = verts * 0.2 + torch.tensor([0.0, 0.0, 1.0], dtype=F64)  # front face at z = 0.9, sides 0.2 m
    frags = rasterize(camera(200.0, 40, 30).project(verts[None]), faces, (60, 80), cull_backfaces=cull)
    v, u = np.mgrid[0:60, 0:80]
    # the front face spans x, y in [-0.1, 0.1] at z = 0.9: pixels within 200 * 0.1 / 0.9 = 22.2 of the centre
    inside = (np.abs(u - 40) <= 22.2) & (np.abs(v - 30) <= 22.2)
    np.testing.assert_array_equal(frags.mask[0].numpy(), inside)
    np.testing.assert_allclose(frags.depth[0].numpy()[inside], 0.9, atol=1e-12)
    front = torch.nonzero((verts[faces][:, :, 2] < 0.95).all(1)).squeeze(1)
    assert set(frags.face_ids[0][frags.mask[0]].unique().tolist()) <= set(front.tolist())


def test_backface_culling_shows_the_inside_of_an_inside_out_cube():
    verts, faces = unit_cube()
    verts = (verts * 0.2 + torch.tensor([0.0, 0.0, 1.0], dtype=F64))[None]
    screen = camera(200.0, 40, 30).project(verts)
    outside = rasterize(screen, faces, (60, 80), cull_backfaces=True)
    inside_out = rasterize(screen, faces.flip(1), (60, 80), cull_backfaces=True)
    # the near wall now faces away and is culled: the far and side walls are seen from inside, behind z = 0.9
    np.testing.assert_array_equal(inside_out.mask, outside.mask)
    assert (inside_out.depth[inside_out.mask] > 0.9 + 1e-6).all()
    assert torch.isclose(inside_out.depth[inside_out.mask].max(), torch.tensor(1.1, dtype=F64))
    np.testing.assert_allclose(rasterize(screen, faces.flip(1), (60, 80)).depth, outside.depth, atol=1e-12)  # no culling


def test_weak_perspective_is_orthographic_and_exact():
    # ACR's camera: pixel = (s * X + t + 1) * size / 2 - 0.5; depth is the point's own z
    verts = torch.tensor([[[-0.1, -0.1, 0.3], [0.1, -0.1, 0.5], [-0.1, 0.1, 0.3]]], dtype=F64)
    cam = WeakPerspectiveCamera(torch.tensor([5.0], dtype=F64), torch.tensor([[0.1, 0.0]], dtype=F64), (40, 40))
    screen = cam.project(verts)
    np.testing.assert_allclose(screen[0, 0, :2].numpy(), [(5 * -0.1 + 0.1 + 1) * 20 - 0.5, (5 * -0.1 + 1) * 20 - 0.5])
    frags = rasterize(screen, torch.tensor([[0, 1, 2]]), (40, 40), perspective=False)
    v, u = np.mgrid[0:40, 0:40]
    x = ((u + 0.5) / 20 - 1 - 0.1) / 5
    y = ((v + 0.5) / 20 - 1) / 5
    inside = (x >= -0.1) & (y >= -0.1) & (x + y <= 0.0 + 1e-12)
    np.testing.assert_array_equal(frags.mask[0].numpy(), inside)
    np.testing.assert_allclose(frags.depth[0].numpy()[inside], (0.3 + (x + 0.1))[inside], atol=1e-12)  # z = 0.3 + (x + 0.1)


def test_weak_perspective_matches_its_perspective_camera_far_away():
    hand = build_mano("right", pose_convention="flat", dtype=F64)
    verts = hand(hand_pose=torch.tensor(named_hand_pose("spread"), dtype=F64)[None]).vertices
    verts = verts - verts.mean(1, keepdim=True)
    weak = WeakPerspectiveCamera(torch.tensor([6.0], dtype=F64), torch.tensor([[0.05, -0.1]], dtype=F64), (128, 96))
    persp = weak.matching_perspective_camera(focal=20000.0)  # a very long lens: perspective -> orthographic
    np.testing.assert_allclose(persp.project(verts)[..., :2], weak.project(verts)[..., :2], atol=0.05)
    a = rasterize(weak.project(verts), hand.faces, (128, 96), perspective=False).mask
    b = rasterize(persp.project(verts), hand.faces, (128, 96)).mask
    assert (a & b).sum() / (a | b).sum() > 0.99


def ray_cast(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Depth (H,W) of the first hit of a ray through every pixel centre (0 = miss), by embree."""
    H, W = size
    mesh = trimesh.Trimesh(verts, faces, process=False)
    v, u = np.mgrid[0:H, 0:W]
    dirs = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, dtype=float)], -1).reshape(-1, 3)
    _, ray_ids, hits = mesh.ray.intersects_id(np.zeros_like(dirs), dirs, multiple_hits=False, return_locations=True)
    depth = np.zeros(H * W)
    depth[ray_ids] = hits[:, 2]
    return depth.reshape(H, W)


@pytest.mark.parametrize("size", [(96, 96), (200, 200), (180, 320)])
def test_matches_ray_casting_on_two_posed_hands(size):
    hands = posed_two_hands()
    verts, faces = joined(hands)
    num_right_faces = len(hands[0][1])
    H, W = size
    f = 1.4 * min(size)
    cam = camera(f, W / 2, H / 2)
    # a batch of two: the scene and the same scene shifted 2 cm right must both be exact
    shift = torch.tensor([0.02, 0.0, 0.0], dtype=F64)
    frags = rasterize(cam.project(torch.stack([verts, verts + shift])), faces, size)
    for b in range(2):
        ref_depth = ray_cast((verts + b * shift).numpy(), faces.numpy(), cam.K[0].numpy(), size)
        ref_mask, ours_mask = ref_depth > 0, frags.mask[b].numpy()
        assert (ref_mask & ours_mask).sum() / (ref_mask | ours_mask).sum() >= 0.995
        assert ours_mask.sum() > 0.05 * H * W  # the hands are really in view
        both = ref_mask & ours_mask
        depth_err = np.abs(frags.depth[b].numpy()[both] - ref_depth[both])
        assert np.median(depth_err) < 1e-6 and np.mean(depth_err <= 1e-4) > 0.995
        # both hands visible and occluding correctly: pixels from each mesh
        ids = frags.face_ids[b].numpy()[ours_mask]
        assert (ids < num_right_faces).any() and (ids >= num_right_faces).any()


def test_batch_equals_separate_images():
    verts, faces = joined(posed_two_hands())
    cam = camera(150.0, 50, 50)
    batch = torch.stack([verts, verts @ torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=F64)])
    together = rasterize(cam.project(batch), faces, (100, 100))
    for b in range(2):
        alone = rasterize(cam.project(batch[b:b + 1]), faces, (100, 100))
        assert torch.equal(together.face_ids[b], alone.face_ids[0])
        assert torch.equal(together.depth[b], alone.depth[0])


def test_depth_gradients_reach_vertices():
    right = build_mano("right", pose_convention="flat", dtype=F64)
    verts = (right().vertices + torch.tensor([0.0, 0.0, 0.4], dtype=F64)).requires_grad_()
    frags = rasterize(camera(150.0, 64, 64).project(verts), right.faces, (128, 128))
    frags.depth.sum().backward()
    assert verts.grad[0, :, 2].abs().sum() > 0


def test_faces_off_screen_are_clipped_or_skipped():
    cam = camera(50.0, 16, 16)
    square = torch.tensor([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=F64) * torch.tensor([0.2, 0.2, 1.0], dtype=F64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    v, u = np.mgrid[0:32, 0:32]
    for shift_px, expected_cols in ((0.0, (u >= 6) & (u <= 26)), (20.0, (u >= 26)), (40.0, u < 0), (-40.0, u < 0)):
        shifted = square + torch.tensor([shift_px / 50.0, 0.0, 0.0], dtype=F64)
        frags = rasterize(cam.project(shifted[None]), faces, (32, 32))
        np.testing.assert_array_equal(frags.mask[0].numpy(), expected_cols & (v >= 6) & (v <= 26), err_msg=str(shift_px))
    behind = square - torch.tensor([0.0, 0.0, 2.0], dtype=F64)
    assert rasterize(cam.project(behind[None]), faces, (32, 32)).mask.sum() == 0


def test_bad_shapes():
    with pytest.raises(ValueError, match="vertices"):
        rasterize(torch.zeros(1, 5, 2), torch.zeros(1, 3, dtype=torch.long), (8, 8))
    with pytest.raises(ValueError, match="faces"):
        rasterize(torch.zeros(1, 5, 3), torch.zeros(1, 3), (8, 8))
    with pytest.raises(ValueError, match="index vertex 7"):
        rasterize(torch.zeros(1, 5, 3), torch.tensor([[0, 1, 7]]), (8, 8))


def test_depth_gradients_match_finite_differences():
    cam = camera(40.0, 8.0, 7.0)
    # no vertex or edge passes exactly through a pixel centre, where coverage (and so depth) jumps
    verts = torch.tensor([[[-0.1013, -0.0987, 1.0], [0.12, -0.08, 1.1], [-0.05, 0.13, 0.9], [0.1, 0.11, 1.05]]], dtype=F64)
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])
    depth = lambda v: rasterize(cam.project(v), faces, (16, 14)).depth
    assert torch.autograd.gradcheck(depth, (verts.requires_grad_(),), eps=1e-7, atol=1e-6)


def test_extrinsics_move_world_points_into_the_camera():
    verts, faces = joined(posed_two_hands())
    R = axis_angle_to_matrix(torch.tensor([0.1, -0.4, 0.2], dtype=F64))
    t = torch.tensor([0.05, -0.02, 0.1], dtype=F64)
    world = (verts - t) @ R  # the inverse transform: R world + t gives back the camera-frame vertices
    K = camera(200.0, 64, 64).K
    with_pose = rasterize(PerspectiveCamera(K, R, t).project(world[None]), faces, (128, 128))
    direct = rasterize(PerspectiveCamera(K).project(verts[None]), faces, (128, 128))
    assert (with_pose.face_ids != direct.face_ids).float().mean() < 1e-3
    torch.testing.assert_close(with_pose.depth[direct.mask & with_pose.mask], direct.depth[direct.mask & with_pose.mask])
