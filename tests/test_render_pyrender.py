"""Our renderer against pyrender (OpenGL via EGL/OSMesa) on the same scenes: masks, depth and the mesh image."""

import cv2
import numpy as np
import pytest
import torch

from hands.render import Meshes, PerspectiveCamera, RenderConfig, Renderer
from hands.render.pyrender_reference import PyrenderScene, depth_sampling_intrinsics, pyrender_error
from tests.scenes import joined, posed_two_hands

F64 = torch.float64
REASON = pyrender_error()
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))


@pytest.mark.parametrize("size", [(128, 128), (256, 256), (240, 320)])
@pytest.mark.parametrize("cull", [False, True])
def test_mask_and_depth_match_pyrender(size, cull):
    hands = posed_two_hands()
    H, W = size
    K = np.array([[1.3 * H, 0, W / 2 - 3.3], [0, 1.3 * H, H / 2 + 1.7], [0, 0, 1]])
    scene = PyrenderScene(size)
    _, ref_depth = scene.render([(v.numpy(), f.numpy()) for v, f in hands], K, cull_backfaces=cull)
    scene.close()
    verts, faces = joined(hands)
    out = Renderer(size, RenderConfig(cull_backfaces=cull)).render(
        Meshes(verts[None], faces), PerspectiveCamera(torch.tensor(depth_sampling_intrinsics(K))), ["mask", "depth"])
    ours, ref = out.mask[0].numpy(), ref_depth > 0
    assert ours.sum() > 0.05 * H * W
    assert (ours & ref).sum() / (ours | ref).sum() >= 0.995
    both = ours & ref
    error = np.abs(out.depth[0].numpy()[both] - ref_depth[both])
    assert np.median(error) < 1e-5 and np.mean(error <= 1e-4) >= 0.995


def test_culling_matters_when_looking_into_the_wrist():
    (right_verts, faces), _ = posed_two_hands()
    K = np.array([[300.0, 0, 128], [0, 300.0, 128], [0, 0, 1]])
    renders = {cull: Renderer((256, 256), RenderConfig(cull_backfaces=cull)).render(
        Meshes(right_verts[None], faces), PerspectiveCamera(torch.tensor(K)), ["mask"]).mask[0] for cull in (False, True)}
    assert renders[True].sum() < 0.9 * renders[False].sum()  # the inner faces seen through the wrist are gone


def test_mesh_image_matches_pyrender_attentionhand_scene():
    hands = posed_two_hands()
    size = (256, 256)
    K = np.array([[330.0, 0, 130.0], [0, 330.0, 120.0], [0, 0, 1]])
    scene = PyrenderScene(size)
    ref_rgb, ref_depth = scene.render([(hands[1][0].numpy(), hands[1][1].numpy())], K, cull_backfaces=True)
    scene.close()
    out = Renderer(size, RenderConfig(cull_backfaces=True)).render(
        Meshes(hands[1][0][None], hands[1][1]), PerspectiveCamera(torch.tensor(K)), ["mesh_image", "mask"])
    ours = out.mesh_image[0].permute(1, 2, 0).numpy() * 255
    # pyrender averages 4 samples per pixel; compare away from the contour
    interior = cv2.erode((ref_depth > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    difference = np.abs(ours[interior] - ref_rgb[interior].astype(np.float64))
    assert interior.sum() > 2000
    assert np.median(difference) < 1.5 and difference.mean() < 5
    np.testing.assert_allclose(ours[interior].mean(axis=0), ref_rgb[interior].mean(axis=0), atol=1.5)
    assert (ours[~out.mask[0].numpy()] == 0).all()  # black background
