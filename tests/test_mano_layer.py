"""The MANO layer against smplx (same model file), against a real MANO fit, and its input handling."""

import numpy as np
import pytest
import torch
from conftest import fixture_path

from hands.geometry.rotations import axis_angle_to_matrix
from hands.io.safe_pickle import load_pickle
from hands.mano import build_mano, forward_kinematics
from hands.mano.joints import MANO_PARENTS, TIP_VERTEX_IDS


def _smplx_mano(mano_dir, side, use_pca, ncomps, flat, dtype):
    import smplx

    model = smplx.create(str(mano_dir / f"MANO_{side.upper()}.pkl"), model_type="mano", is_rhand=side == "right",
                         use_pca=use_pca, num_pca_comps=ncomps, flat_hand_mean=flat, dtype=dtype)
    if side == "left":  # the shapedirs fix, applied to smplx the way the InterHand2.6M tools do
        model.shapedirs[:, 0, :] *= -1
    return model


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("use_pca,ncomps", [(False, 45), (True, 12)])
@pytest.mark.parametrize("flat", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_parity_with_smplx(mano_dir, side, use_pca, ncomps, flat, dtype):
    g = torch.Generator().manual_seed(7)
    B = 6
    global_orient = (torch.randn(B, 3, generator=g) * 0.8).to(dtype)
    hand_pose = (torch.randn(B, ncomps if use_pca else 45, generator=g) * (1.0 if use_pca else 0.4)).to(dtype)
    betas = (torch.randn(B, 10, generator=g) * 1.5).to(dtype)
    transl = (torch.randn(B, 3, generator=g) * 0.1).to(dtype)
    ref = _smplx_mano(mano_dir, side, use_pca, ncomps, flat, dtype)(
        global_orient=global_orient, hand_pose=hand_pose, betas=betas, transl=transl)
    ours = build_mano(side, mano_dir, pose_convention="flat" if flat else "mean_relative", use_pca=use_pca,
                      num_pca_comps=ncomps, dtype=dtype)(global_orient, hand_pose, betas, transl)
    assert ours.vertices.dtype == dtype and ours.vertices.shape == (B, 778, 3)
    assert (ours.vertices - ref.vertices).abs().max().item() < 1e-6
    assert (ours.kinematic_joints - ref.joints).abs().max().item() < 1e-6
    # canonical 21 joints: MANO joints + the tip vertices, in OpenPose order
    tips = ours.vertices[:, list(TIP_VERTEX_IDS[side])]
    torch.testing.assert_close(ours.joints[:, [4, 8, 12, 16, 20]], tips)
    torch.testing.assert_close(ours.joints[:, [0, 1, 5, 9, 13, 17]], ours.kinematic_joints[:, [0, 13, 1, 4, 10, 7]])


def test_left_shapedirs_fix_mirrors_shapes(mano_dir):
    betas = torch.randn(3, 10, dtype=torch.float64) * 2
    right = build_mano("right", mano_dir, pose_convention="flat", dtype=torch.float64)(betas=betas).vertices
    left = build_mano("left", mano_dir, pose_convention="flat", dtype=torch.float64)(betas=betas).vertices
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(left, right * mirror, atol=1e-12, rtol=0)
    unfixed = build_mano("left", mano_dir, pose_convention="flat", fix_left_shapedirs=False, dtype=torch.float64)
    assert (unfixed(betas=betas).vertices - right * mirror).abs().max() > 1e-3


def test_mirrored_pose_gives_mirrored_hand(mano_dir):
    pose = torch.randn(2, 48, dtype=torch.float64) * 0.5
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64).repeat(16)
    for convention in ("flat", "mean_relative"):
        right = build_mano("right", mano_dir, pose_convention=convention, dtype=torch.float64)
        left = build_mano("left", mano_dir, pose_convention=convention, dtype=torch.float64)
        r = right(pose[:, :3], pose[:, 3:]).vertices
        left_pose = pose * flip
        l_out = left(left_pose[:, :3], left_pose[:, 3:]).vertices
        torch.testing.assert_close(l_out, r * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64), atol=1e-12, rtol=0)


def test_real_fit_kinematics_reproduce_posed_joints():
    """rainbow.pkl: FK of its 16 rest joints with its flat-hand poses gives its posed joints (dm, centred on joint 4)."""
    fit = load_pickle(fixture_path("ohta", "editing", "anno", "rainbow.pkl"))[1]
    rest = torch.tensor(fit["tpose_joints"][:16], dtype=torch.float64)[None]
    rot = axis_angle_to_matrix(torch.tensor(fit["poses"], dtype=torch.float64).view(1, 16, 3))
    posed, _ = forward_kinematics(rot, rest, MANO_PARENTS)
    posed = posed - posed[:, 4:5]
    np.testing.assert_allclose(posed[0].numpy(), fit["joints"][:16], atol=1e-5)


def test_outputs_are_consistent_and_differentiable(mano_dir):
    layer = build_mano("right", mano_dir, pose_convention="flat", dtype=torch.float64)
    pose = (torch.randn(2, 45, dtype=torch.float64) * 0.3).requires_grad_()
    betas = torch.randn(2, 10, dtype=torch.float64, requires_grad=True)
    out = layer(torch.zeros(2, 3, dtype=torch.float64), pose, betas)
    (out.vertices.square().sum() + out.joints.sum()).backward()
    assert pose.grad.abs().sum() > 0 and betas.grad.abs().sum() > 0
    torch.testing.assert_close(out.joint_transforms[:, :, :3, 3], out.kinematic_joints)
    rot = out.joint_transforms[:, :, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(rot))
    assert torch.autograd.gradcheck(lambda b: layer(betas=b).joints, (betas[:1].detach().requires_grad_(),))


def test_rotation_matrix_entry_point_matches_axis_angle(mano_dir):
    layer = build_mano("right", mano_dir, pose_convention="flat", dtype=torch.float64)
    pose = torch.randn(3, 48, dtype=torch.float64) * 0.4
    betas = torch.randn(3, 10, dtype=torch.float64)
    a = layer(pose[:, :3], pose[:, 3:], betas)
    b = layer.forward_rotation_matrices(axis_angle_to_matrix(pose.view(3, 16, 3)), betas)
    torch.testing.assert_close(a.vertices, b.vertices)
    torch.testing.assert_close(b.full_pose, pose)


@pytest.mark.parametrize("side", ["right", "left"])
def test_joints_only_gives_the_same_joints_and_gradients(mano_dir, side):
    layer = build_mano(side, mano_dir, pose_convention="flat", dtype=torch.float64)
    pose = (torch.randn(3, 48, dtype=torch.float64) * 0.5).requires_grad_()
    betas, transl = torch.randn(3, 10, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    full = layer(pose[:, :3], pose[:, 3:], betas, transl)
    fast = layer(pose[:, :3], pose[:, 3:], betas, transl, joints_only=True)
    torch.testing.assert_close(fast.joints, full.joints)
    torch.testing.assert_close(fast.vertices, full.vertices[:, list(layer.tip_vertex_ids)])
    weights = torch.randn(3, 21, 3, dtype=torch.float64)
    grad_full = torch.autograd.grad((full.joints * weights).sum(), pose)[0]
    grad_fast = torch.autograd.grad((fast.joints * weights).sum(), pose)[0]
    torch.testing.assert_close(grad_fast, grad_full)
    with pytest.raises(ValueError, match="offsets"):
        layer(betas=betas, offsets=torch.zeros(3, layer.num_vertices, 3, dtype=torch.float64), joints_only=True)


def test_input_errors_name_the_field(mano_dir):
    layer = build_mano("right", mano_dir, pose_convention="flat")
    with pytest.raises(ValueError, match=r"'hand_pose' should have shape \(2, 45\)"):
        layer(torch.zeros(2, 3), torch.zeros(2, 44))
    with pytest.raises(ValueError, match="'betas'"):
        layer(torch.zeros(2, 3), betas=torch.zeros(3, 10))
    with pytest.raises(ValueError, match="pose_convention"):
        build_mano("right", mano_dir, pose_convention="relative")
    with pytest.raises(TypeError):
        build_mano("right", mano_dir)  # the pose convention must be chosen explicitly


def test_fewer_betas_are_zero_padded_and_unbatched_inputs_work(mano_dir):
    layer = build_mano("right", mano_dir, pose_convention="flat", dtype=torch.float64)
    b = torch.tensor([0.5, -1.0], dtype=torch.float64)
    torch.testing.assert_close(layer(betas=b).vertices, layer(betas=torch.nn.functional.pad(b, (0, 8))[None]).vertices)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(mano_dir):
    pose = torch.randn(4, 45) * 0.3
    cpu = build_mano("right", mano_dir, pose_convention="flat")(hand_pose=pose).vertices
    gpu = build_mano("right", mano_dir, pose_convention="flat", device="cuda")(hand_pose=pose.cuda()).vertices
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)


def test_layers_do_not_share_buffers_with_the_cached_model():
    """Changing one layer's arrays in place (e.g. a test scaling the template) leaves later layers as they were."""
    first = build_mano("right", pose_convention="flat", dtype=torch.float64)
    before = first.v_template.clone()
    with torch.no_grad():
        first.v_template.mul_(1.1)
    assert torch.equal(build_mano("right", pose_convention="flat", dtype=torch.float64).v_template, before)
