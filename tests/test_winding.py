"""Winding numbers against analytic inside tests (sphere, box) and on the sealed MANO-HD hand."""

import torch
import trimesh

from hands.geometry.winding import inside_mesh, winding_numbers
from hands.mano.builtin import builtin_model
from hands.ohta.manohd import ManoHD


def test_sphere_and_box_inside():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    points = torch.rand(4000, 3, generator=torch.Generator().manual_seed(0)) * 3 - 1.5
    radius = points.norm(dim=1)
    away = (radius - 1).abs() > 0.02  # the icosphere is a polyhedron: skip the thin shell where they differ
    inside = inside_mesh(points.double(), torch.tensor(sphere.vertices), torch.tensor(sphere.faces))
    assert torch.equal(inside[away], (radius < 1)[away])
    box = trimesh.creation.box(extents=(1.0, 2.0, 0.5))
    numbers = winding_numbers(points.double(), torch.tensor(box.vertices), torch.tensor(box.faces), chunk=5000)
    expected = (points.abs() < torch.tensor([0.5, 1.0, 0.25])).all(dim=1)
    assert torch.equal(numbers > 0.5, expected)
    torch.testing.assert_close(numbers[expected], torch.ones(int(expected.sum()), dtype=torch.float64), atol=1e-9, rtol=0)


def test_sealed_hand_is_closed():
    hd = ManoHD(builtin_model("right"))
    out = hd(torch.zeros(1, 3), torch.zeros(1, 45))
    vertices, faces = out.vertices[0].double(), out.faces_sealed
    # a closed, outward mesh: points just inside along the inverted normals wind once, just outside zero
    mesh = trimesh.Trimesh(vertices.numpy(), faces.numpy(), process=False)
    normals = torch.tensor(mesh.vertex_normals)[::400]
    surface = vertices[::400]
    inner = winding_numbers(surface - 0.02 * normals, vertices, faces)
    outer = winding_numbers(surface + 0.02 * normals, vertices, faces)
    assert (inner > 0.9).float().mean() > 0.95 and (outer.abs() < 0.1).float().mean() > 0.95
