"""Reading OHTA's one-shot inputs as the release does: the +0.01 pose offset, E·[Rh|Th], the annotation's box."""

import numpy as np
import pytest
import torch

from hands.geometry.rotations import axis_angle_to_matrix
from hands.mano.builtin import builtin_model
from hands.ohta.creation import RELEASE_POSE_OFFSET, ViewGeometry
from hands.ohta.inputs import annotation_for_view, read_oneshot_input, write_oneshot_input
from hands.ohta.manohd import ManoHD


@pytest.fixture(scope="module")
def mano_hd():
    return ManoHD(builtin_model("right"))


def oneshot(tmp_path, name, pose, extrinsics=None, Rh=None):
    K = torch.tensor([[500.0, 0, 128], [0, 500.0, 128], [0, 0, 1]])
    view = ViewGeometry(K, torch.tensor([0.01, -0.02, 0.6]), pose, torch.linspace(-1, 1, 10), (256, 256))
    annotation = annotation_for_view(view, pose_offset=0.0)
    annotation.extrinsics = np.eye(4) if extrinsics is None else extrinsics
    annotation.Rh = np.zeros(3) if Rh is None else Rh
    annotation.bbox_min, annotation.bbox_max = np.full(3, -1.0), np.full(3, 1.2)
    image = np.full((256, 256, 3), 90, np.uint8)
    mask = np.zeros((256, 256), bool)
    mask[100:150, 90:160] = True
    return write_oneshot_input(tmp_path, name, image, mask, annotation), annotation


def test_the_release_pose_offset_and_box(tmp_path):
    pose = torch.cat([torch.tensor([2.0, 0.3, -0.4]), torch.linspace(-0.5, 0.5, 45)])
    path, annotation = oneshot(tmp_path, "a", pose)
    view = read_oneshot_input(path).view
    assert RELEASE_POSE_OFFSET == 0.01
    torch.testing.assert_close(view.pose[3:], pose[3:] + 0.01)  # create_util.py: dst_poses[3:] + 1e-2
    torch.testing.assert_close(view.pose[:3], pose[:3])
    torch.testing.assert_close(read_oneshot_input(path, pose_offset=0.0).view.pose, pose)
    torch.testing.assert_close(view.box, torch.tensor([[-1.0] * 3, [1.2] * 3]))
    # an annotation written for a view reads back as that view
    written = write_oneshot_input(tmp_path / "c", "c", np.zeros((256, 256, 3), np.uint8), np.ones((256, 256), bool),
                                  annotation_for_view(view))
    torch.testing.assert_close(read_oneshot_input(written).view.pose, view.pose)


def test_extrinsics_and_Rh_place_the_hand_as_the_release(tmp_path, mano_hd):
    """Camera-frame hand = E·[Rh|Th] applied to the posed hand (core/utils/camera_util.py apply_global_tfm_to_camera)."""
    pose = torch.cat([torch.tensor([2.0, 0.3, -0.4]), torch.linspace(-0.5, 0.5, 45)])
    E = np.eye(4)
    E[:3, :3] = axis_angle_to_matrix(torch.tensor([0.1, -0.3, 0.2], dtype=torch.float64)).numpy()
    E[:3, 3] = [0.5, -0.2, 1.0]
    Rh = np.array([0.0, 0.4, -0.1])
    path, annotation = oneshot(tmp_path, "e", pose, E, Rh)
    view = read_oneshot_input(path).view
    fingers = pose[None, 3:] + 0.01
    with torch.no_grad():
        local = mano_hd(pose[None, :3], fingers).vertices[0].double()  # the release's hand frame
        ours = mano_hd(view.pose[None, :3], view.pose[None, 3:]).vertices[0].double() + view.Th.double()
    R_h = axis_angle_to_matrix(torch.from_numpy(Rh))
    expected = (local @ R_h.T + torch.from_numpy(annotation.Th)) @ torch.from_numpy(E[:3, :3]).T + torch.from_numpy(E[:3, 3])
    torch.testing.assert_close(ours, expected, atol=2e-5, rtol=0)
    assert view.box is None  # the annotation's box is in the unrotated frame: the posed mesh bounds the rays
    identity = read_oneshot_input(oneshot(tmp_path / "i", "i", pose)[0]).view
    torch.testing.assert_close(identity.Th, torch.tensor([0.1, -0.2, 6.0]))
