"""3D metrics and InterHand2.6M protocols against independent computations in the test."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from hands.eval.alignment import procrustes_align, similarity_transform
from hands.eval.metrics import handedness_correct, mpjpe, mrrpe, pa_mpjpe, pck_2d
from hands.eval.protocols import IntagHandEvaluator, InterNetEvaluator

F64 = torch.float64


def test_procrustes_recovers_a_similarity_and_is_optimal():
    rng = np.random.default_rng(0)
    gt = torch.tensor(rng.normal(size=(2, 21, 3)))
    R = torch.tensor(Rotation.random(2, random_state=1).as_matrix())
    pred = 1.7 * gt @ R.transpose(1, 2) + torch.tensor([[0.1, -0.3, 2.0]], dtype=F64)[:, None]
    assert pa_mpjpe(pred, gt).max() < 1e-10 and mpjpe(pred, gt).min() > 0.5
    # against brute-force minimisation of the same objective over scale, rotation and translation
    source, target = torch.tensor(rng.normal(size=(1, 15, 3))), torch.tensor(rng.normal(size=(1, 15, 3)))
    x, y = source[0].numpy(), target[0].numpy()

    def objective(p):
        moved = math.exp(p[0]) * x @ Rotation.from_rotvec(p[1:4]).as_matrix().T + p[4:]
        return float(((moved - y) ** 2).sum())

    best = min((minimize(objective, rng.normal(size=7) * 0.5, method="BFGS") for _ in range(8)), key=lambda r: r.fun)
    ours = float(((procrustes_align(source, target) - target) ** 2).sum())
    assert ours <= best.fun + 1e-9 and abs(ours - best.fun) < 1e-6
    scale, R_fit, _ = similarity_transform(source, target)
    assert torch.isclose(torch.linalg.det(R_fit), torch.tensor(1.0, dtype=F64)).all() and scale.item() > 0


def test_weights_leave_out_invalid_joints():
    gt = torch.zeros(1, 4, 3, dtype=F64)
    gt[0, :, 0] = torch.arange(4.0)
    pred = gt.clone()
    pred[0, 3] += 10.0  # a wild joint, marked invalid
    valid = torch.tensor([[True, True, True, False]])
    assert pa_mpjpe(pred, gt, valid).item() < 1e-12 and mpjpe(pred, gt, valid).item() == 0


def test_internet_protocol_matches_a_loop_implementation():
    rng = np.random.default_rng(1)
    B = 12
    gt = rng.normal(size=(B, 42, 3)) * 0.05
    pred = gt + rng.normal(size=(B, 42, 3)) * 0.01
    valid = rng.uniform(size=(B, 42)) > 0.2
    valid[0, 20] = False  # right wrist invalid: the whole right hand of image 0 is left out
    hand_types = ["right", "left", "interacting"] * 4
    evaluator = InterNetEvaluator()
    pred_type = torch.tensor(rng.uniform(size=(B, 2)))
    gt_type = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]] * 4)
    for part in (slice(0, 5), slice(5, B)):  # batches accumulate
        evaluator.add(torch.tensor(pred[part]), torch.tensor(gt[part]), torch.tensor(valid[part]), hand_types[part],
                      pred_type[part], gt_type[part])
    result = evaluator.summary()

    per_joint = {"single": [[] for _ in range(42)], "interacting": [[] for _ in range(42)]}
    rrpe = []
    for b in range(B):
        group = "interacting" if hand_types[b] == "interacting" else "single"
        for j in range(42):
            root = 20 if j < 21 else 41
            if valid[b, j] and valid[b, root]:
                per_joint[group][j].append(np.linalg.norm((pred[b, j] - pred[b, root]) - (gt[b, j] - gt[b, root])) * 1000)
        if group == "interacting" and valid[b, 20] and valid[b, 41]:
            rrpe.append(np.linalg.norm((pred[b, 41] - pred[b, 20]) - (gt[b, 41] - gt[b, 20])) * 1000)
    mean_of_means = lambda lists: np.mean([np.mean(v) for v in lists if v])  # noqa: E731
    assert math.isclose(result["mpjpe_single"], mean_of_means(per_joint["single"]), rel_tol=1e-9)
    assert math.isclose(result["mpjpe_interacting"], mean_of_means(per_joint["interacting"]), rel_tol=1e-9)
    both = [a + b for a, b in zip(per_joint["single"], per_joint["interacting"])]
    assert math.isclose(result["mpjpe_all"], mean_of_means(both), rel_tol=1e-9)
    assert math.isclose(result["mrrpe"], np.mean(rrpe), rel_tol=1e-9)
    expected_hand = np.mean([((pred_type[b] > 0.5) == (gt_type[b] > 0.5)).all().item() for b in range(B)])
    assert math.isclose(result["handedness_accuracy"], expected_hand)
    assert 5 < result["mpjpe_all"] < 25  # 1 cm noise per coordinate, root-relative: about 1.4 x 1.6 cm


def test_intaghand_protocol_removes_scale_and_centre():
    rng = np.random.default_rng(2)
    gt = {side: (torch.tensor(rng.normal(size=(3, 21, 3))), torch.tensor(rng.normal(size=(3, 778, 3)))) for side in ("right", "left")}
    pred = {side: (2.0 * j + 0.3, 2.0 * v + 0.3) for side, (j, v) in gt.items()}
    evaluator = IntagHandEvaluator()
    evaluator.add(pred, gt)
    assert max(evaluator.summary().values()) < 1e-9
    # a perturbation of one vertex by 1 cm raises that sample's MPVPE by 10 mm / 778
    pred["left"][1][0, 5, 0] += 2.0 * 0.01
    evaluator = IntagHandEvaluator()
    evaluator.add(pred, gt)
    summary = evaluator.summary()
    assert math.isclose(summary["mpvpe_left"], 10.0 / 778 / 3, rel_tol=1e-6)
    assert math.isclose(summary["mpvpe"], summary["mpvpe_left"] / 2, rel_tol=1e-9)


def test_mrrpe_and_handedness():
    zero = torch.zeros(1, 3, dtype=F64)
    pred_left, gt_left = torch.tensor([[0.1, 0.0, 0.0]], dtype=F64), torch.tensor([[0.1, 0.03, 0.04]], dtype=F64)
    assert math.isclose(mrrpe(zero, pred_left, zero, gt_left).item(), 0.05)
    assert handedness_correct(torch.tensor([[0.9, 0.2], [0.6, 0.7]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])).tolist() == [True, False]


def test_pck_counts_keypoints_within_a_share_of_the_box():
    gt = torch.tensor([[[0.0, 0.0], [100.0, 0.0], [0.0, 50.0], [50.0, 50.0]]], dtype=torch.float64)  # box side 100
    pred = gt + torch.tensor([[[5.0, 0.0], [0.0, 9.9], [10.1, 0.0], [30.0, 40.0]]], dtype=torch.float64)
    assert pck_2d(pred, gt, 0.1).item() == 0.5  # 5 and 9.9 px are within 10 px; 10.1 and 50 px are not
    assert pck_2d(pred, gt, 0.6).item() == 1.0
    valid = torch.tensor([[True, True, True, False]])  # the box of the valid ones is still 100 x 50
    assert pck_2d(pred, gt, 0.1, valid).item() == pytest.approx(2 / 3)
