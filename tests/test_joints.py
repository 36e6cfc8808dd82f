import numpy as np
import pytest
import torch

from hands.mano.joints import CANONICAL_PARENTS, convert_joints, joint_permutation

# Independent facts (shared/reference/acr.md, C4): ACR's mano2interhand mapper and the inverse index list.
INTERHAND_FROM_MANOPTH21 = [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17, 0]
MANOPTH21_FROM_INTERHAND = [20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16]
# MANO16+tips -> InterHand2.6M by joint name (C4): IH1 = J15, IH2 = J14, IH3 = J13, IH5 = J3, IH20 = J0, tips 16..20.
INTERHAND_FROM_MANO = {0: 16, 1: 15, 2: 14, 3: 13, 4: 17, 5: 3, 6: 2, 7: 1, 8: 18, 9: 6, 10: 5, 11: 4, 12: 19,
                       13: 12, 14: 11, 15: 10, 16: 20, 17: 9, 18: 8, 19: 7, 20: 0}


def test_canonical_interhand_matches_reference_tables():
    canonical = np.arange(21)[:, None] * np.ones((1, 3))
    ih = convert_joints(canonical, "canonical", "interhand")
    np.testing.assert_array_equal(ih[:, 0], INTERHAND_FROM_MANOPTH21)
    np.testing.assert_array_equal(convert_joints(ih, "interhand", "canonical")[:, 0], np.arange(21))
    assert list(joint_permutation("interhand", "canonical")) == MANOPTH21_FROM_INTERHAND


def test_mano_to_interhand_by_name():
    mano = np.arange(21)[:, None] * np.ones((1, 2))
    ih = convert_joints(mano, "mano", "interhand")
    assert [int(ih[i, 0]) for i in range(21)] == [INTERHAND_FROM_MANO[i] for i in range(21)]


@pytest.mark.parametrize("src,dst", [("mano", "canonical"), ("canonical", "interhand"), ("interhand", "mano")])
def test_round_trip_and_two_hands(src, dst):
    x = torch.randn(2, 42, 3)
    y = convert_joints(x, src, dst)
    torch.testing.assert_close(convert_joints(y, dst, src), x)
    torch.testing.assert_close(y[:, 21:], convert_joints(x[:, 21:], src, dst))


def test_canonical_parents_point_to_the_previous_joint_of_each_finger():
    for j, p in enumerate(CANONICAL_PARENTS):
        assert p == (-1 if j == 0 else 0 if j % 4 == 1 else j - 1)


def test_errors():
    with pytest.raises(ValueError, match="21 or 42"):
        convert_joints(np.zeros((16, 3)), "mano", "canonical")
    with pytest.raises(ValueError, match="unknown joint order"):
        convert_joints(np.zeros((21, 3)), "openpose", "canonical")
