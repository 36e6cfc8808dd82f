"""Renderer outputs checked against independent geometry: normals of a sphere, affine colours, textures, parts."""

import cv2
import numpy as np
import pytest
import torch
import trimesh

from hands.mano import build_mano
from hands.mano.parts import part_labels
from hands.mano.poses import named_hand_pose
from hands.render import (
    NUM_PART_CLASSES,
    Meshes,
    PerspectiveCamera,
    RenderConfig,
    Renderer,
    WeakPerspectiveCamera,
    hand_meshes,
    join_meshes,
)
from hands.render.pytorch3d_backend import pytorch3d_available
from tests.conftest import fixture_path

F64 = torch.float64
SIZE = (96, 128)
K = torch.tensor([[150.0, 0, 64], [0, 150.0, 48], [0, 0, 1]], dtype=F64)


def unproject(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera-frame 3D point (H,W,3) seen at every pixel centre, from a depth map (H,W)."""
    H, W = depth.shape
    v, u = torch.meshgrid(torch.arange(H, dtype=F64), torch.arange(W, dtype=F64), indexing="ij")
    return torch.stack([(u - K[0, 2]) / K[0, 0] * depth, (v - K[1, 2]) / K[1, 1] * depth, depth], -1)


def sphere(radius=0.1, centre=(0.01, -0.02, 0.5)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    c = torch.tensor(centre, dtype=F64)
    return torch.tensor(mesh.vertices, dtype=F64)[None] + c, torch.tensor(mesh.faces), c


def test_normals_of_a_sphere_point_away_from_its_centre():
    verts, faces, centre = sphere()
    for smooth, tolerance in ((True, 0.01), (False, 0.06)):
        out = Renderer(SIZE, RenderConfig(smooth_normals=smooth)).render(Meshes(verts, faces), PerspectiveCamera(K),
                                                                       ["normals", "depth", "mask"])
        mask = out.mask[0]
        expected = torch.nn.functional.normalize(unproject(out.depth[0], K) - centre, dim=-1)[mask]
        error = (out.normals[0][mask] - expected).norm(dim=-1)
        assert error.max() < tolerance * 2 and error.mean() < tolerance, (smooth, error.max(), error.mean())
        assert (out.normals[0][~mask] == 0).all()


def test_vertex_colours_interpolate_exactly():
    verts, faces, _ = sphere()
    # an affine function of position is reproduced exactly by barycentric interpolation
    A = torch.tensor([[3.0, 0.5, 1.0], [-1.0, 2.0, 0.0], [0.0, 1.0, -4.0]], dtype=F64)
    colours = verts @ A.T
    out = Renderer(SIZE).render(Meshes(verts, faces, vertex_colors=colours), PerspectiveCamera(K), ["color", "depth", "mask"])
    mask = out.mask[0]
    expected = unproject(out.depth[0], K)[mask] @ A.T
    np.testing.assert_allclose(out.color[0].permute(1, 2, 0)[mask].numpy(), expected.numpy(), atol=1e-10)
    assert (out.color[0][:, ~mask] == 0).all()


def test_texture_lookup_follows_uvs():
    verts, faces, centre = sphere()
    # uv = affine in (x, y), texture red = u and green = v, so the pixel colour gives back the 3D point's (x, y)
    uv_of = lambda p: (p[..., :2] - centre[:2]) / 0.25 + 0.5  # noqa: E731
    face_uvs = uv_of(verts[0][faces])
    n = 64
    grid = (torch.arange(n, dtype=F64) + 0.5) / n
    texture = torch.stack([grid[None, :].expand(n, n), grid[:, None].expand(n, n), torch.zeros(n, n, dtype=F64)])[None]
    meshes = Meshes(verts, faces, face_uvs=face_uvs, texture=texture)
    out = Renderer(SIZE).render(meshes, PerspectiveCamera(K), ["color", "depth", "mask"])
    mask = out.mask[0]
    expected = uv_of(unproject(out.depth[0], K)[mask])
    np.testing.assert_allclose(out.color[0, :2].permute(1, 2, 0)[mask].numpy(), expected.numpy(), atol=1e-9)


def two_hands(dtype=F64):
    right = build_mano("right", pose_convention="flat", dtype=dtype)
    left = build_mano("left", pose_convention="flat", dtype=dtype)
    right_verts = right(torch.tensor([[0.2, 0.1, 1.6]], dtype=dtype), transl=torch.tensor([[0.06, 0.0, 0.5]], dtype=dtype)).vertices
    left_verts = left(torch.tensor([[0.2, -0.1, -1.6]], dtype=dtype), transl=torch.tensor([[-0.06, 0.01, 0.5]], dtype=dtype)).vertices
    return right, left, right_verts, left_verts


def test_part_labels_have_33_classes_right_and_left():
    right, left, right_verts, left_verts = two_hands()
    meshes = join_meshes([hand_meshes(right_verts, right), hand_meshes(left_verts, left)])
    out = Renderer(SIZE).render(meshes, PerspectiveCamera(K), ["part_labels", "depth", "mask", "face_ids"])
    labels, mask = out.part_labels[0], out.mask[0]
    assert labels.dtype == torch.int64 and (labels[~mask] == 0).all()
    assert labels.max() < NUM_PART_CLASSES
    right_pixels = mask & (out.face_ids[0] < len(right.faces))
    assert (labels[right_pixels] >= 1).all() and (labels[right_pixels] <= 16).all()
    assert (labels[mask & ~right_pixels] >= 17).all()
    assert len(labels[right_pixels].unique()) >= 10 and len(labels[mask & ~right_pixels].unique()) >= 10
    # independent check: the label of a pixel is (mostly) the part of the vertex nearest to the 3D point seen there
    points = unproject(out.depth[0], K)[mask]
    all_verts = torch.cat([right_verts[0], left_verts[0]])
    vertex_class = torch.cat([torch.as_tensor(part_labels(right.weights.numpy())) + 1,
                              torch.as_tensor(part_labels(left.weights.numpy())) + 17])
    nearest = torch.cdist(points, all_verts).argmin(dim=1)
    assert (vertex_class[nearest] == labels[mask]).double().mean() > 0.9


def test_mesh_image_looks_like_attentionhand_samples():
    sample = cv2.imread(str(fixture_path("attentionhand", "samples", "mesh", "000000000036.jpg")))[:, :, ::-1]
    hand = sample.max(axis=2) > 40
    sample_mean = sample[hand].mean(axis=0)
    right = build_mano("right", pose_convention="flat", dtype=F64)
    verts = right(torch.tensor([[2.5, 0.3, 0.2]], dtype=F64), torch.tensor(named_hand_pose("relaxed"), dtype=F64)[None],
                  transl=torch.tensor([[0.0, 0.0, 0.45]], dtype=F64)).vertices
    out = Renderer(SIZE).render(Meshes(verts, right.faces), PerspectiveCamera(K), ["mesh_image", "mask"])
    image = (out.mesh_image[0].permute(1, 2, 0) * 255).numpy()
    ours_mean = image[out.mask[0].numpy()].mean(axis=0)
    assert (image[~out.mask[0].numpy()] == 0).all()  # black background
    np.testing.assert_allclose(ours_mean, sample_mean, atol=8)  # near-white, slightly cyan: red below green = blue
    assert ours_mean[0] < ours_mean[1] - 5 and abs(ours_mean[1] - ours_mean[2]) < 2


def test_soft_silhouette_output_brackets_the_mask():
    right, left, right_verts, left_verts = two_hands()
    out = Renderer(SIZE, RenderConfig(silhouette_sigma=0.1)).render(
        join_meshes([hand_meshes(right_verts, right), hand_meshes(left_verts, left)]), PerspectiveCamera(K), ["silhouette", "mask"])
    hard, soft = out.mask[0].numpy(), out.silhouette[0].numpy()
    assert (soft[hard] >= 0.5).all()  # a covered pixel is inside some face: D >= 1/2
    # halos add up only near the contour: pixels above 1/2 outside the mask touch it
    grown = cv2.dilate(hard.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert not ((soft > 0.5) & ~grown).any()
    assert (soft[~grown] < 0.5).all() and soft.max() <= 1


def test_requests_that_cannot_be_served_are_clear_errors():
    verts, faces, _ = sphere()
    renderer = Renderer(SIZE)
    with pytest.raises(ValueError, match="unknown output"):
        renderer.render(Meshes(verts, faces), PerspectiveCamera(K), ["albedo"])
    with pytest.raises(ValueError, match="face_labels"):
        renderer.render(Meshes(verts, faces), PerspectiveCamera(K), ["part_labels"])
    with pytest.raises(ValueError, match="vertex_colors"):
        renderer.render(Meshes(verts, faces), PerspectiveCamera(K), ["color"])
    with pytest.raises(ValueError, match="unknown backend"):
        Renderer(SIZE, RenderConfig(backend="opengl"))
    with pytest.raises(ValueError, match="vertex_colors should have shape"):
        Meshes(verts, faces, vertex_colors=torch.zeros(5, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    right, left, right_verts, left_verts = two_hands(torch.float32)
    meshes = join_meshes([hand_meshes(right_verts.float(), right), hand_meshes(left_verts.float(), left)])
    outputs = ["mask", "depth", "part_labels", "mesh_image"]
    cpu = Renderer(SIZE).render(meshes, PerspectiveCamera(K.float()), outputs)
    cuda_meshes = Meshes(meshes.vertices.cuda(), meshes.faces.cuda(), meshes.face_labels.cuda())
    gpu = Renderer(SIZE).render(cuda_meshes, PerspectiveCamera(K.float().cuda()), outputs)
    assert (cpu.mask == gpu.mask.cpu()).double().mean() > 0.999
    torch.testing.assert_close(gpu.depth.cpu()[cpu.mask & gpu.mask.cpu()], cpu.depth[cpu.mask & gpu.mask.cpu()], atol=1e-5, rtol=0)


def test_weak_perspective_rendering_matches_a_long_lens():
    right, _, right_verts, _ = two_hands()
    verts = right_verts - right_verts.mean(1, keepdim=True)
    weak = WeakPerspectiveCamera(torch.tensor([7.0], dtype=F64), torch.tensor([[0.0, 0.05]], dtype=F64), SIZE)
    outputs = ["mask", "normals", "mesh_image", "part_labels"]
    meshes = hand_meshes(verts, right)
    a = Renderer(SIZE).render(meshes, weak, outputs)
    b = Renderer(SIZE).render(meshes, weak.matching_perspective_camera(focal=50000.0), outputs)
    both = a.mask[0] & b.mask[0]
    assert both.sum() / (a.mask[0] | b.mask[0]).sum() > 0.99
    assert (a.normals[0][both] - b.normals[0][both]).norm(dim=-1).median() < 1e-3
    assert (a.mesh_image[0][:, both] - b.mesh_image[0][:, both]).abs().median() < 1e-3
    assert (a.part_labels[0][both] == b.part_labels[0][both]).double().mean() > 0.99


@pytest.mark.skipif(pytorch3d_available(), reason="pytorch3d is installed")
def test_missing_pytorch3d_backend_is_a_clear_error():
    with pytest.raises(ImportError, match="pytorch3d is not installed"):
        Renderer(SIZE, RenderConfig(backend="pytorch3d"))


@pytest.mark.skipif(not pytorch3d_available(), reason="pytorch3d not installed (no wheel for Python 3.11 on PyPI)")
def test_pytorch3d_backend_matches_builtin():
    right, left, right_verts, left_verts = two_hands()
    meshes = join_meshes([hand_meshes(right_verts, right), hand_meshes(left_verts, left)])
    ours = Renderer(SIZE).render(meshes, PerspectiveCamera(K), ["mask", "depth", "part_labels"])
    theirs = Renderer(SIZE, RenderConfig(backend="pytorch3d")).render(meshes, PerspectiveCamera(K),
                                                                       ["mask", "depth", "part_labels"])
    assert (ours.mask & theirs.mask).sum() / (ours.mask | theirs.mask).sum() > 0.99
    both = ours.mask & theirs.mask
    assert (ours.depth[both] - theirs.depth[both]).abs().median() < 1e-4
    assert (ours.part_labels[both] == theirs.part_labels[both]).double().mean() > 0.99
