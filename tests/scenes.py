"""Test scenes shared by the renderer tests."""

import torch

from hands.mano import build_mano
from hands.mano.poses import named_hand_pose

F64 = torch.float64


def posed_two_hands() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(vertices (778,3), faces)] for a right hand pointing, seen into its open wrist (so back faces show), and
    a left fist partly in front of it; camera frame, about 0.4 m away, float64."""
    right = build_mano("right", pose_convention="flat", dtype=F64)
    left = build_mano("left", pose_convention="flat", dtype=F64)
    right_verts = right(torch.tensor([[0.3, 2.0, 0.2]], dtype=F64), torch.tensor(named_hand_pose("point"), dtype=F64)[None],
                        transl=torch.tensor([[0.03, 0.0, 0.45]], dtype=F64)).vertices[0]
    mirror = torch.tensor([1.0, -1.0, -1.0], dtype=F64).repeat(15)  # a right-hand pose mirrored for the left model
    left_verts = left(torch.tensor([[2.6, -0.3, 0.4]], dtype=F64), torch.tensor(named_hand_pose("fist"), dtype=F64)[None] * mirror,
                      transl=torch.tensor([[-0.03, 0.02, 0.40]], dtype=F64)).vertices[0]
    return [(right_verts, right.faces), (left_verts, left.faces)]


def joined(meshes: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate [(vertices, faces)] into one mesh (V,3), (F,3)."""
    offsets = torch.cumsum(torch.tensor([0] + [len(v) for v, _ in meshes[:-1]]), 0)
    return torch.cat([v for v, _ in meshes]), torch.cat([f + int(o) for (_, f), o in zip(meshes, offsets)])


def record_hand(record, layer, side: str):
    """The MANO output (vertices, joints; camera frame, meters) of one hand of an InterHand record, from its
    NeuralAnnot parameters moved into the record's camera."""
    from hands.data.interhand.format import mano_params_to_camera, neuralannot_to_flat

    pose, shape, trans = record.mano[side]
    pose = neuralannot_to_flat(pose, layer.hands_mean.numpy())
    root = layer.rest_joints(torch.tensor(shape))[0, 0].numpy()
    orient, transl = mano_params_to_camera(pose[:3], trans, root, record.camera.R, record.camera.t_meters)
    return layer(torch.tensor(orient)[None], torch.tensor(pose[3:])[None], torch.tensor(shape)[None], torch.tensor(transl)[None])
