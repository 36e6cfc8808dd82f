"""OHTA's volume renderer on an analytic scene (a sphere's soft occupancy and a colour that varies in space), and
the avatar's appearance networks on the built-in hand."""

import math

import pytest
import torch
import trimesh

from hands.mano.builtin import builtin_model
from hands.ohta.avatar import HandAvatar, PosedAvatar
from hands.ohta.pairof import Occupancy
from hands.ohta.volume import VolumeConfig, box_interval, composite, render_image, render_pixels

CENTRE, RADIUS = torch.tensor([0.1, -0.05, 0.0]), 0.5


class SphereScene:
    """Stands in for a HandAvatar: a sharp sphere occupancy, colour = a function of position."""

    def occupancy(self, points, posed):
        inside = torch.sigmoid((RADIUS - (points - CENTRE).norm(dim=-1)) * 200)
        return Occupancy(inside, inside[:, None].expand(-1, 16, -1), torch.zeros_like(inside, dtype=torch.long), inside < 0)

    def shade(self, points, posed, identity, calibrate=False):
        colour = torch.sigmoid(points * 3)
        return {"colour": colour, "albedo": colour, "shadow": torch.ones_like(points[..., :1])}


@pytest.fixture(scope="module")
def sphere():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)[None] + CENTRE
    posed = PosedAvatar(vertices, torch.tensor(mesh.faces), None, [], torch.zeros(1, 21, 3))
    K = torch.tensor([[[60.0, 0, 24], [0, 60.0, 24], [0, 0, 1]]])
    return posed, K, torch.tensor([[0.0, 0.0, 3.0]])


def test_compositing_formula():
    alpha = torch.tensor([[0.5, 0.5, 1.0]])
    values = torch.tensor([[[1.0], [0.0], [2.0]]])
    out, opacity = composite(alpha, values, torch.tensor([7.0]))
    # weights 0.5, 0.25, 0.25 (the last sample takes what is left); nothing reaches the background
    torch.testing.assert_close(out, torch.tensor([[0.5 * 1 + 0.25 * 0 + 0.25 * 2]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(opacity, torch.tensor([1.0]), atol=1e-6, rtol=0)
    entry, exit_ = box_interval(torch.tensor([[0.0, 0, -5]]), torch.tensor([[0.0, 0, 1]]), -torch.ones(1, 3), torch.ones(1, 3))
    assert float(entry) == 4.0 and float(exit_) == 6.0


def test_band_sampling_renders_what_dense_sampling_renders(sphere):
    posed, K, Th = sphere
    scene = SphereScene()
    background = torch.tensor([0.0, 0.0, 1.0])
    band = render_image(scene, posed, K, Th, (48, 48), torch.zeros(1, 33),
                        VolumeConfig(sampling="band", band_samples=24, perturb=False), background)
    dense = render_image(scene, posed, K, Th, (48, 48), torch.zeros(1, 33),
                         VolumeConfig(sampling="dense", dense_samples=256, perturb=False), background)
    # the disk the sphere projects to: radius f·r/sqrt(d² - r²) pixels around the projected centre
    distance = float((CENTRE + Th[0]).norm())
    v, u = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    cu, cv = (24 + 60 * CENTRE[0] / (CENTRE[2] + 3)), (24 + 60 * CENTRE[1] / (CENTRE[2] + 3))
    disk = ((u - cu) ** 2 + (v - cv) ** 2).sqrt() < 60 * RADIUS / math.sqrt(distance**2 - RADIUS**2)
    for out in (band, dense):
        covered = out["opacity"][0] > 0.5
        assert (covered ^ disk).float().mean() < 0.02
    inside = disk & (band["opacity"][0] > 0.99)
    gap = (band["rgb"][0][inside] - dense["rgb"][0][inside]).abs()  # sample spacing: 0.015 (band) vs 0.004 (dense)
    assert float(gap.max()) < 0.05 and float(gap.mean()) < 0.01
    outside = ~(band["opacity"][0] > 0)
    torch.testing.assert_close(band["rgb"][0][outside], background.expand(int(outside.sum()), 3))


def test_avatar_renders_patches_with_gradients():
    torch.manual_seed(0)
    avatar = HandAvatar(builtin_model("right"))
    posed = avatar.pose(torch.tensor([[math.pi, 0.0, 0.0]]), torch.zeros(1, 45))
    K, Th = torch.tensor([[[150.0, 0, 16], [0, 150.0, 16], [0, 0, 1]]]), torch.tensor([[0.0, 0.0, 4.0]])
    v, u = torch.meshgrid(torch.arange(10, 20), torch.arange(10, 20), indexing="ij")
    pixels = torch.stack([u, v], -1).reshape(1, -1, 2)
    out = render_pixels(avatar, posed, K, Th, pixels, avatar.appearance.id_feature[None], VolumeConfig(band_samples=6),
                        (32, 32), calibrate=True)
    assert out["rgb"].shape == (1, 100, 3) and float(out["opacity"].max()) > 0
    assert 0 <= float(out["rgb"].min()) and float(out["rgb"].max()) <= 1
    out["rgb"].sum().backward()
    for parameter in (avatar.appearance.id_feature, avatar.appearance.color_scale, avatar.appearance.anchors.features[1],
                      avatar.pairof.decoder.lin0.weight):
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0
