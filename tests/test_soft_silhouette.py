"""The soft silhouette: exact gradients (finite differences) and fitting a hand's pose to a mask."""

import torch

from hands.geometry.cameras import PerspectiveCamera
from hands.geometry.rotations import axis_angle_to_matrix
from hands.mano import build_mano
from hands.mano.poses import named_hand_pose
from hands.render.rasterizer import rasterize
from hands.render.soft import soft_silhouette

F64 = torch.float64


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    cam = PerspectiveCamera.from_focal(40.0, (8.0, 7.0), dtype=F64)
    verts = torch.tensor([[-0.1, -0.1, 1.0], [0.12, -0.08, 1.1], [-0.05, 0.13, 0.9], [0.1, 0.11, 1.05]], dtype=F64)
    verts = (verts + 0.01 * torch.randn_like(verts))[None].requires_grad_()
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])

    def silhouette(v):
        return soft_silhouette(cam.project(v), faces, (16, 14), sigma=2.0)

    assert torch.autograd.gradcheck(silhouette, (verts,), eps=1e-6, atol=1e-5)


def test_values_against_the_formula():
    cam = PerspectiveCamera.from_focal(100.0, (15.5, 15.5), dtype=F64)
    square = torch.tensor([[[-0.1, -0.1, 1.0], [0.1, -0.1, 1.0], [0.1, 0.1, 1.0], [-0.1, 0.1, 1.0]]], dtype=F64)
    faces = torch.tensor([[0, 3, 2], [0, 2, 1]])  # the square covers pixels 5.5 .. 25.5 exactly
    sil = soft_silhouette(cam.project(square), faces, (32, 32), sigma=1.0)
    sigmoid = lambda x: torch.sigmoid(torch.tensor(x, dtype=F64))  # noqa: E731
    # pixel (5, 15) is 0.5 px outside the left edge and 7 px from the other triangle: one face contributes
    torch.testing.assert_close(sil[0, 15, 5], sigmoid(-0.25))
    # pixel (15, 15) lies on the shared diagonal: both faces give 1/2
    torch.testing.assert_close(sil[0, 15, 15], torch.tensor(0.75, dtype=F64))
    # pixel (12, 18) is inside the left-top face, 6 / sqrt(2) px from the diagonal; the other face is out of reach
    torch.testing.assert_close(sil[0, 18, 12], sigmoid(18.0))
    assert sil[0, 15, 0] == 0  # beyond the reach of every face
    hard = rasterize(cam.project(square), faces, (32, 32)).mask[0]
    assert torch.equal((sil[0] > 0.5)[3:29, 8:24], hard[3:29, 8:24])  # away from the corners, where halos add up


def test_fitting_rotation_and_translation_to_a_mask():
    """Recover a hand's global rotation and translation from its silhouette alone (IoU >= 0.95)."""
    hand = build_mano("right", pose_convention="flat")
    shape = hand(hand_pose=torch.tensor(named_hand_pose("spread"), dtype=torch.float32)[None]).vertices[0]
    shape = shape - shape.mean(0)
    cam = PerspectiveCamera.from_focal(300.0, (63.5, 63.5))
    size = (128, 128)

    def place(rotvec, translation):
        return (shape @ axis_angle_to_matrix(rotvec).T + translation)[None]

    base = torch.tensor([1.3, 0.2, -0.3])
    true_rot, true_t = base, torch.tensor([0.01, -0.005, 0.5])
    target = rasterize(cam.project(place(true_rot, true_t)), hand.faces, size).mask.float()
    rot = (base + torch.tensor([0.15, -0.2, 0.1])).requires_grad_()
    t = torch.tensor([0.03, 0.02, 0.56], requires_grad=True)
    optimiser = torch.optim.Adam([{"params": [rot], "lr": 0.02}, {"params": [t], "lr": 0.003}])
    for step in range(130):
        sigma = max(8.0 * 0.96 ** step, 0.1)  # coarse to fine
        sil = soft_silhouette(cam.project(place(rot, t)), hand.faces, size, sigma=sigma)
        loss = ((sil - target) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        fitted = rasterize(cam.project(place(rot, t)), hand.faces, size).mask.float()
    start = rasterize(cam.project(place(base + torch.tensor([0.15, -0.2, 0.1]), torch.tensor([0.03, 0.02, 0.56]))),
                      hand.faces, size).mask.float()
    iou = lambda a, b: ((a * b).sum() / ((a + b) > 0).sum()).item()  # noqa: E731
    assert iou(start, target) < 0.6  # a real gap to close
    assert iou(fitted, target) >= 0.95, (iou(start, target), iou(fitted, target))
