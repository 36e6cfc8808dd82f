"""One-shot creation on the built-in hand: a teacher avatar (another identity, calibration and fusion weights)
is recovered from one view and checked on a held-out pose and view; editing stays inside the painted region."""

import copy
import math

import cv2
import numpy as np
import pytest
import torch

from hands.eval.image_metrics import psnr
from hands.geometry.rotations import axis_angle_to_matrix
from hands.mano.builtin import builtin_model
from hands.ohta.avatar import HandAvatar
from hands.ohta.creation import (
    CachedView,
    CreationConfig,
    ViewGeometry,
    create_avatar,
    input_target,
    patch_loss,
    patch_region,
    random_patches,
    reference_target,
    reference_views,
    scaled_view,
    stack_patches,
    standard_mano,
)
from hands.ohta.volume import RAY_BOX_MARGIN, VolumeConfig, render_image

SIZE = 40


def view_of(orient, seed):
    K = torch.tensor([[SIZE * 2.4, 0, SIZE / 2 - 0.5], [0, SIZE * 2.4, SIZE / 2 - 0.5], [0, 0, 1]])
    fingers = torch.randn(45, generator=torch.Generator().manual_seed(seed)) * 0.2
    return ViewGeometry(K, torch.tensor([0.0, 0.0, 0.45]), torch.cat([torch.tensor(orient), fingers]), torch.zeros(10),
                        (SIZE, SIZE))


@pytest.fixture(scope="module")
def prior():
    torch.manual_seed(0)
    return HandAvatar(builtin_model("right"))


def render(avatar, cached):
    with torch.no_grad():
        return cached.render(avatar, avatar.appearance.id_feature)


def test_reference_views_turn_about_the_hand_axis(prior):
    view = view_of([math.pi, 0.2, 0.0], 1)
    views = reference_views(prior, view, 4)
    assert len(views) == 3 and all(torch.equal(v.pose[3:], torch.full((45,), 0.01)) for v in views)  # 0 + 0.01
    assert all(float(v.pose[3:].abs().max()) == 0 for v in reference_views(prior, view, 4, pose_offset=0.0))
    # the axis is standard MANO's (778 vertices) in the input's finger pose without its offset, as the release
    mano = standard_mano(prior)
    offset_view = ViewGeometry(view.K, view.transl, torch.cat([view.pose[:3], view.pose[3:] + 0.01]), view.betas, view.size)
    joints = mano(torch.zeros(1, 3), view.pose[None, 3:], view.betas[None]).kinematic_joints[0]
    axis = (joints[4] - joints[0]) / (joints[4] - joints[0]).norm()
    turned = axis_angle_to_matrix(view.pose[None, :3])[0] @ axis_angle_to_matrix(axis[None] * math.pi)[0]
    half = reference_views(prior, offset_view, 4)[1]
    torch.testing.assert_close(axis_angle_to_matrix(half.pose[None, :3])[0], turned, atol=1e-5, rtol=0)
    # its rays are bounded by the turned standard-MANO hand in the input's finger pose, +-0.5 dm
    out = mano(half.pose[None, :3], view.pose[None, 3:], view.betas[None])
    local = (out.vertices[0] - out.kinematic_joints[0, 4]) * 10
    torch.testing.assert_close(half.box, torch.stack([local.amin(0) - 0.5, local.amax(0) + 0.5]), atol=1e-5, rtol=0)
    # the half turn about the wrist->middle-MCP axis: the wrist and middle MCP stay, a side joint moves
    half = views[1]
    posed = [prior.mano(v.pose[None, :3], torch.zeros(1, 45)).joints[0] for v in (view, half)]
    flat = prior.mano(view.pose[None, :3], torch.zeros(1, 45)).joints[0]
    torch.testing.assert_close(posed[1][[0, 4]], flat[[0, 4]], atol=2e-3, rtol=0)  # MANO-HD vs MANO axis: 0.1 mm
    assert float((posed[1][13] - flat[13]).norm()) > 0.1  # the ring MCP swings round (decimetres)


def test_random_patches_land_on_the_mask():
    mask = np.zeros((30, 30), bool)
    mask[20:25, 3:8] = True
    region = patch_region((30, 30), random_patches((30, 30), 6, 3, np.random.default_rng(0), mask), 6)
    assert region.sum() > 0 and (region.numpy() & mask).any()
    assert not region[:10].any()  # patches sit around mask pixels only


def test_patch_centres_follow_the_release_ratio():
    """80 % of the patches are centred on the hand, the rest where the rays meet the box but not the hand."""
    H = W = 200
    hand = np.zeros((H, W), bool)
    hand[80:120, 80:120] = True
    box = np.zeros((H, W), bool)
    box[40:160, 40:160] = True
    side, draws = 10, 4000
    corners = random_patches((H, W), side, draws, np.random.default_rng(0), hand, box, subject_ratio=0.8)
    centres = np.array(corners) + side // 2
    on_hand = hand[centres[:, 0], centres[:, 1]]
    assert abs(on_hand.mean() - 0.8) < 4 * math.sqrt(0.16 / draws)  # binomial: within 4 sigma
    off = centres[~on_hand]
    assert box[off[:, 0], off[:, 1]].all() and not hand[off[:, 0], off[:, 1]].any()
    patches = stack_patches(torch.arange(H * W).reshape(H, W, 1), corners[:3], side)
    assert patches.shape == (3, side, side, 1) and int(patches[0, 0, 0, 0]) == corners[0][0] * W + corners[0][1]


def test_patch_loss_weights_follow_the_release():
    """(10 L1 + LPIPS) x view weight, then + 30 x fingertip L1 on the input view (create.py finetune)."""
    g = torch.Generator().manual_seed(0)
    prediction, truth = torch.rand(2, 8, 8, 3, generator=g), torch.rand(2, 8, 8, 3, generator=g)
    tips = (torch.rand(2, 8, 8, 1, generator=g) > 0.7).float()
    lpips = lambda a, b: (a - b).pow(2).mean(dim=(1, 2, 3))  # noqa: E731  one value per patch, on [-1, 1] images
    config = CreationConfig()
    l1 = (prediction - truth).abs().mean()
    perceptual = ((prediction - truth) * 2).pow(2).mean()
    tip = (truth * tips - prediction * tips).abs().mean()
    torch.testing.assert_close(patch_loss(prediction, truth, 4.0, config, lpips, tips), 4 * (10 * l1 + perceptual) + 30 * tip)
    torch.testing.assert_close(patch_loss(prediction, truth, 1.0, config, lpips), 10 * l1 + perceptual)
    assert (config.input_weight, config.tip_weight, config.l1_weight, config.edit_input_weight) == (4.0, 30.0, 10.0, 15.0)


def test_release_input_targets_and_reference_quantisation():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    matte = np.zeros((256, 256), np.uint8)
    matte[60:200, 50:180] = 255
    matte[100:110, 100:110] = 200  # soft: the release multiplies the image by matte / 255
    target, mask = input_target(image, matte, (256, 256), 150)
    np.testing.assert_allclose(target[105, 105], image[105, 105] / 255 * 200 / 255, rtol=1e-6)
    assert mask[105, 105] and not mask[10, 10] and target[10, 10].max() == 0
    small, small_mask = input_target(image, matte, (204, 204), 150)  # bilinear resizes, then the threshold
    soft = cv2.resize(image.astype(np.float64) * matte[..., None] / 255, (204, 204))
    expected_mask = cv2.resize(matte, (204, 204)) > 150
    assert np.array_equal(small_mask, expected_mask)
    np.testing.assert_allclose(small, soft / 255 * expected_mask[..., None], atol=1e-6)
    # references: 8-bit colour and opacity, the colour multiplied by the opacity, the mask above 150/255
    rgb = torch.tensor([[[0.5, 0.999, 0.2]]])
    for opacity, inside in ((0.9, True), (0.5, False)):
        goal, hand = reference_target(rgb, torch.tensor([[opacity]]), 150)
        alpha8 = math.floor(opacity * 255)
        assert bool(hand[0, 0]) == inside
        expected = torch.tensor([127.0, 254.0, 51.0]) / 255 * alpha8 / 255 * inside
        torch.testing.assert_close(goal[0, 0], expected)


def test_inversion_view_is_the_release_204_pixels():
    view = ViewGeometry(torch.tensor([[571.4, 0, 128.0], [0, 571.4, 128.0], [0, 0, 1]]), torch.zeros(3), torch.zeros(48),
                        torch.zeros(10), (256, 256))
    small = scaled_view(view, 0.8, pixel_centres=False)
    assert small.size == (204, 204)  # int(256 * 0.8), not round
    torch.testing.assert_close(small.K[:2], view.K[:2] * 0.8)
    assert scaled_view(view, 0.8).size == (205, 205)  # the pixel-centre resize keeps its rounding


def test_creation_recovers_a_known_avatar_on_held_out_pose_and_view(prior):
    student = copy.deepcopy(prior)
    teacher = copy.deepcopy(prior)
    with torch.no_grad():
        teacher.appearance.id_feature.normal_(0, 1.0, generator=torch.Generator().manual_seed(3))
        teacher.appearance.color_scale.copy_(torch.tensor([[1.2, 0.8, 0.7]]))
        teacher.appearance.color_shift.copy_(torch.tensor([[0.1, 0.0, -0.05]]))
        for p in teacher.appearance.dict_fusion.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3)
    config = CreationConfig(views=2, inversion_steps=20, finetune_steps=40)
    source, held_out = view_of([math.pi, 0.2, 0.0], 1), view_of([math.pi * 0.8, -0.5, 0.3], 2)
    seen = CachedView(teacher, source, config)
    image = (render(teacher, seen).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    mask = (seen.opacity > 0.5).numpy()
    check = CachedView(teacher, held_out, config)
    hand = check.opacity > 0.5
    truth = render(teacher, check)[hand][None]
    before = float(psnr(render(student, check)[hand][None], truth))
    result = create_avatar(student, image, mask, source, config, progress=False)
    after = float(psnr(render(student, check)[hand][None], truth))
    assert len(result.history["inversion"]) == 20 and len(result.history["finetune"]) == 40 * 2
    assert result.history["inversion"][-1] < result.history["inversion"][0]
    assert before < 25 and after > 35, (before, after)  # measured: 14.8 -> 40.7 dB (39.8-43.5 over 6 patch seeds)
    assert not any(p.requires_grad for p in student.parameters())


def test_editing_changes_the_painted_region_only(prior):
    avatar = copy.deepcopy(prior)
    config = CreationConfig(views=2, edit_steps=25)
    source = view_of([math.pi, 0.2, 0.0], 1)
    cached = CachedView(avatar, source, config)
    original = render(avatar, cached)
    painted = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    rows, cols = torch.nonzero(cached.opacity > 0.5, as_tuple=True)
    centre = len(rows) // 2
    painted[rows[centre] - 3:rows[centre] + 3, cols[centre] - 3:cols[centre] + 3] = True
    painted &= cached.opacity > 0.5
    image = original.clone()
    image[painted] = torch.tensor([1.0, 0.0, 0.0])
    create_avatar(avatar, (image.numpy() * 255).round().astype(np.uint8), painted.numpy(), source, config, edit=True,
                  progress=False)
    change = (render(avatar, cached) - original).abs().sum(-1)
    outside = (cached.opacity > 0.5) & ~painted
    assert float(change[painted].mean()) > 0.3  # measured: 0.62 inside, 0.11 outside (sum of |ΔRGB|)
    assert float(change[painted].mean()) > 3 * float(change[outside].mean()), (change[painted].mean(), change[outside].mean())


def test_dense_baked_view_renders_what_the_dense_renderer_renders(prior):
    """`volume.sampling="dense"` bakes the release's 64 depths through the view's ray box; the baked image equals
    the dense volume renderer's on the same box, up to the dropped 1 % of each ray's weight."""
    config = CreationConfig(volume=VolumeConfig(sampling="dense", perturb=False))
    view = view_of([math.pi, 0.2, 0.0], 1)
    cached = CachedView(prior, view, config)
    with torch.no_grad():
        posed = prior.pose(view.pose[None, :3], view.pose[None, 3:], view.betas[None],
                           torch.Generator().manual_seed(config.seed))
        corners = posed.vertices[0]
        box = torch.stack([corners.amin(0) - RAY_BOX_MARGIN, corners.amax(0) + RAY_BOX_MARGIN])
        dense = render_image(prior, posed, view.K[None], view.Th[None], view.size, prior.appearance.id_feature[None],
                             config.volume, torch.zeros(3), calibrate=True, box=box)
    assert cached.box_rays.sum() > cached.opacity.gt(0.5).sum()  # every ray through the box was baked
    assert float(dense["opacity"][0].max()) > 0.5
    torch.testing.assert_close(cached.opacity, dense["opacity"][0], atol=0.011, rtol=0)
    torch.testing.assert_close(render(prior, cached), dense["rgb"][0], atol=0.011, rtol=0)
