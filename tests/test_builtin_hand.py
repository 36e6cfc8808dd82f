"""The built-in open hand: a closed manifold hand mesh with MANO's layout, meaningful shapes and sane skinning."""

import numpy as np
import pytest
import torch
import trimesh
from conftest import fixture_path

from hands.geometry.mesh import boundary_loop, seal_boundary, signed_volume
from hands.io.safe_pickle import load_pickle
from hands.mano import build_mano
from hands.mano.builtin import ASSET_PATH, builtin_model, generate_right_hand
from hands.mano.builtin.rig import SHAPE_NAMES, flexion_axis, pose_from_joint_angles
from hands.mano.builtin.skeleton import FINGER_CHAINS
from hands.mano.joints import TIP_VERTEX_IDS
from hands.mano.parts import part_labels
from hands.mano.poses import named_hand_pose

F64 = torch.float64


@pytest.fixture(scope="module")
def right():
    return build_mano("right", pose_convention="flat", dtype=F64)


def _sealed(vertices, faces):
    v, f = seal_boundary(np.asarray(vertices), np.asarray(faces))
    return trimesh.Trimesh(v, f, process=False)


@pytest.mark.parametrize("side", ["right", "left"])
def test_mesh_is_a_closed_manifold_once_the_wrist_is_sealed(side):
    model = builtin_model(side)
    assert 700 <= model.num_vertices <= 1000
    assert len(boundary_loop(model.faces)) >= 12  # one wrist opening, like MANO's
    mesh = _sealed(model.v_template, model.faces)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.euler_number == 2  # genus 0: one closed surface without handles
    assert signed_volume(mesh.vertices, mesh.faces) > 0  # faces point outward
    assert 150e-6 < mesh.volume < 600e-6  # m^3: a human hand is a few hundred cm^3
    edges = mesh.edges_unique_length
    assert edges.max() / np.median(edges) < 5  # no long slivers


def test_layout_matches_a_real_mano_fit():
    """Rest joints and fingertip vertices sit where the real fit's are (rainbow.pkl, decimeters, centred on joint 4)."""
    fit = load_pickle(fixture_path("ohta", "editing", "anno", "rainbow.pkl"))[1]
    real = fit["tpose_joints"] / 10.0
    model = builtin_model("right")
    rest = model.J_regressor @ model.v_template
    np.testing.assert_allclose(rest - rest[4], real[:16], atol=2e-4)
    tips = model.v_template[list(TIP_VERTEX_IDS["right"])] - rest[4]
    np.testing.assert_allclose(tips, real[16:], atol=1e-3)
    left_middle_tip = model.v_template[TIP_VERTEX_IDS["left"][2]] - rest[4]
    assert np.linalg.norm(left_middle_tip - real[18]) < 4e-3


def test_tips_are_the_far_ends_of_their_fingers():
    model = builtin_model("right")
    labels = part_labels(model.weights)
    fingers = [(n, FINGER_CHAINS[n]) for n in ("thumb", "index", "middle", "ring", "pinky")]
    for tip_id, (name, chain) in zip(TIP_VERTEX_IDS["right"], fingers):
        finger = np.flatnonzero(labels == chain[2])
        reach = np.linalg.norm(model.v_template[finger] - model.J_regressor[chain[2]] @ model.v_template, axis=1)
        assert labels[tip_id] == chain[2], name
        assert reach[finger.tolist().index(tip_id)] > reach.max() - 2e-3, name


def test_parts_cover_every_joint_and_are_connected():
    model = builtin_model("right")
    labels = part_labels(model.weights)
    assert set(labels) == set(range(16))
    edges = trimesh.Trimesh(model.v_template, model.faces, process=False).edges_unique
    for part in range(16):
        nodes = np.flatnonzero(labels == part)
        inside = edges[np.all(labels[edges] == part, axis=1)]
        assert len(trimesh.graph.connected_components(inside, nodes=nodes)) == 1, part
    assert np.allclose(model.weights.sum(1), 1) and model.weights.min() >= 0


def _measure(v):
    return v.max(0) - v.min(0)


def test_shape_directions_do_what_their_names_say(right):
    base = right().vertices[0].numpy()
    out = {}
    for k in range(10):
        betas = torch.zeros(1, 10, dtype=F64)
        betas[0, k] = 1.0
        res = right(betas=betas)
        out[SHAPE_NAMES[k]] = (res.vertices[0].numpy(), res.joints[0].numpy())
    j0 = right().joints[0].numpy()
    size = lambda v: np.linalg.norm(_measure(v))  # noqa: E731
    assert 1.04 < size(out["overall size"][0]) / size(base) < 1.12
    width = lambda j: np.linalg.norm(j[5] - j[17])  # index MCP to pinky MCP  # noqa: E731
    assert width(out["palm width"][1]) > 1.05 * width(j0)
    length = lambda j: np.linalg.norm(j[12] - j[9])  # middle MCP to tip  # noqa: E731
    assert length(out["finger length"][1]) > 1.05 * length(j0)
    assert _measure(out["hand thickness"][0])[1] > 1.05 * _measure(base)[1]
    thumb = lambda j: np.linalg.norm(j[4] - j[1])  # noqa: E731
    assert thumb(out["thumb length"][1]) > 1.05 * thumb(j0)
    assert length(out["thumb length"][1]) == pytest.approx(length(j0), rel=1e-3)
    palm = lambda j: np.linalg.norm(j[9] - j[0])  # noqa: E731
    assert palm(out["palm length"][1]) > 1.04 * palm(j0)
    index_ring = lambda j: np.linalg.norm(j[8] - j[5]) / np.linalg.norm(j[16] - j[13])  # noqa: E731
    assert index_ring(out["index vs ring length"][1]) > 1.05 * index_ring(j0)
    for name, (v, _) in out.items():
        assert np.abs(v - base).max() > 1e-3, name  # every direction has a visible effect


def test_poses_change_the_hand_as_expected(right):
    rest = right()
    fist = right(hand_pose=torch.tensor(named_hand_pose("fist"), dtype=F64)[None])
    palm_centre = rest.joints[0, [0, 5, 9, 13, 17]].mean(0)
    for tip in (8, 12, 16, 20):
        assert (fist.joints[0, tip] - palm_centre).norm() < 0.6 * (rest.joints[0, tip] - palm_centre).norm()
    spread = np.zeros(45)
    for mcp, sign in ((1, 1.0), (7, -1.0)):
        spread[(mcp - 1) * 3 + 1] = 0.35 * sign  # about +y: index toward the thumb, pinky away
    spread_out = right(hand_pose=torch.tensor(spread, dtype=F64)[None])
    assert (spread_out.joints[0, 8] - spread_out.joints[0, 20]).norm() > 1.15 * (rest.joints[0, 8] - rest.joints[0, 20]).norm()


def test_no_collapse_at_ninety_degrees(right):
    """Bending each finger's PIP by 90 degrees keeps the volume and the joint's thickness (no LBS collapse)."""
    model = builtin_model("right")
    labels = part_labels(model.weights)
    rest = right()
    rest_volume = _sealed(rest.vertices[0], model.faces).volume
    for name in ("index", "middle", "ring", "pinky"):
        mcp, pip, dip = FINGER_CHAINS[name]
        bent = right(hand_pose=torch.tensor(pose_from_joint_angles({pip: np.pi / 2}), dtype=F64)[None])
        near = np.isin(labels, [mcp, pip])
        def thickness(out):
            d = (out.vertices[0, near] - out.kinematic_joints[0, pip]).norm(dim=-1)
            return d.min().item()
        assert thickness(bent) > 0.5 * thickness(rest), name
        assert _sealed(bent.vertices[0], model.faces).volume == pytest.approx(rest_volume, rel=0.05)
        # the bent finger's distal part points toward the palm (-y), not back through the knuckle
        assert (bent.joints[0, [8, 12, 16, 20][["index", "middle", "ring", "pinky"].index(name)], 1]
                < bent.kinematic_joints[0, pip, 1] - 0.02)


def test_pose_prior_is_orthonormal_and_relaxed():
    model = builtin_model("right")
    np.testing.assert_allclose(model.hands_components @ model.hands_components.T, np.eye(45), atol=1e-12)
    flex = [model.hands_mean.reshape(15, 3)[j - 1] @ flexion_axis(j) for c in FINGER_CHAINS.values() for j in c]
    assert min(flex) > 0.05 and max(flex) < 0.6  # every joint slightly curled, none strongly
    first = model.hands_components[0].reshape(15, 3)
    assert all(first[j - 1] @ flexion_axis(j) > 0 for j in FINGER_CHAINS["middle"])  # component 0 closes the hand


@pytest.mark.slow
def test_generation_is_deterministic_and_matches_the_shipped_asset():
    generated = generate_right_hand()
    shipped = builtin_model("right")
    np.testing.assert_array_equal(generated.faces, shipped.faces)
    for key in ("v_template", "weights", "J_regressor", "shapedirs", "hands_components", "hands_mean"):
        np.testing.assert_allclose(getattr(generated, key), getattr(shipped, key), atol=1e-9, err_msg=key)
    assert ASSET_PATH.stat().st_size < 1_000_000
