import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hands.geometry import rotations as R


@pytest.fixture
def axis_angles():
    g = torch.Generator().manual_seed(0)
    aa = torch.randn(64, 3, generator=g, dtype=torch.float64)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(64, 1, generator=g, dtype=torch.float64) * 3.1
    aa[0] = 0.0
    aa[1] = torch.tensor([1e-9, 0, 0])
    return aa


def test_axis_angle_to_matrix_matches_scipy(axis_angles):
    ours = R.axis_angle_to_matrix(axis_angles).numpy()
    ref = Rotation.from_rotvec(axis_angles.numpy()).as_matrix()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_quaternion_matches_scipy(axis_angles):
    quat = R.axis_angle_to_quaternion(axis_angles).numpy()
    ref = Rotation.from_rotvec(axis_angles.numpy()).as_quat(scalar_first=True)
    ref = ref * np.sign(ref[:, :1] + 1e-30)
    np.testing.assert_allclose(quat, ref, atol=1e-12)
    np.testing.assert_allclose(R.matrix_to_quaternion(R.axis_angle_to_matrix(axis_angles)).numpy(), ref, atol=1e-9)


def test_round_trips(axis_angles):
    mats = R.axis_angle_to_matrix(axis_angles)
    torch.testing.assert_close(R.matrix_to_axis_angle(mats), axis_angles, atol=1e-9, rtol=0)
    torch.testing.assert_close(R.quaternion_to_matrix(R.matrix_to_quaternion(mats)), mats, atol=1e-12, rtol=0)
    for layout in ("columns", "rows"):
        six = R.matrix_to_rotation_6d(mats, layout)
        torch.testing.assert_close(R.rotation_6d_to_matrix(six, layout), mats, atol=1e-12, rtol=0)
        torch.testing.assert_close(R.rotation_6d_to_axis_angle(R.axis_angle_to_rotation_6d(axis_angles, layout), layout),
                                   axis_angles, atol=1e-9, rtol=0)


def test_6d_layouts_follow_their_conventions():
    mats = R.axis_angle_to_matrix(torch.tensor([[0.3, -1.2, 0.7]], dtype=torch.float64))
    # ACR/SPIN: x.view(3, 2) holds the first two columns; pytorch3d: the first two rows.
    assert torch.equal(R.matrix_to_rotation_6d(mats, "columns").view(3, 2), mats[0, :, :2])
    assert torch.equal(R.matrix_to_rotation_6d(mats, "rows").view(2, 3), mats[0, :2, :])
    noisy = torch.tensor([[1.0, 0.1, 0.2, 1.0, 0.0, 0.3]], dtype=torch.float64)
    out = R.rotation_6d_to_matrix(noisy)
    torch.testing.assert_close(out @ out.transpose(-1, -2), torch.eye(3, dtype=torch.float64)[None], atol=1e-12, rtol=0)
    assert torch.det(out).item() == pytest.approx(1.0)


def test_gradients_finite_at_identity():
    aa = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    R.axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    assert torch.autograd.gradcheck(R.axis_angle_to_matrix, (torch.randn(3, 3, dtype=torch.float64, requires_grad=True),))


def test_bad_shape_names_the_function():
    with pytest.raises(ValueError, match="axis_angle_to_matrix"):
        R.axis_angle_to_matrix(torch.zeros(4, 4))


def test_skew_is_the_cross_product():
    v, w = torch.randn(2, 7, 3, dtype=torch.float64)
    torch.testing.assert_close((R.skew(v) @ w.unsqueeze(-1)).squeeze(-1), torch.cross(v, w, dim=-1))
