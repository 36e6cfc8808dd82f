"""The batched, differentiable MANO layer (linear blend skinning) and its output dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from hands.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hands.mano.joints import TIP_VERTEX_IDS, joint_permutation
from hands.mano.model_file import ManoModelData

PoseConvention = Literal["flat", "mean_relative"]


@dataclass
class ManoOutput:
    """Result of a MANO forward pass (meters, the model's world frame, `transl` applied).

    vertices (B,V,3); joints (B,21,3) in the canonical order (wrist, thumb CMC..tip, index, middle, ring, pinky);
    kinematic_joints (B,16,3) MANO's posed joints in MANO order; joint_transforms (B,16,4,4) the world pose of
    each joint frame; full_pose (B,48) axis-angle in the flat-hand convention; betas (B,S).
    """

    vertices: Tensor
    joints: Tensor
    kinematic_joints: Tensor
    joint_transforms: Tensor
    full_pose: Tensor
    betas: Tensor


def kinematic_levels(parents: Sequence[int]) -> list[list[int]]:
    """Group joints by depth in the tree (the root alone first), so each level is one batched matmul."""
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]


class KinematicPlan:
    """Index tensors for batched forward kinematics over a tree, level by level (built once per tree)."""

    def __init__(self, parents: Sequence[int]) -> None:
        self.parents = [int(p) for p in parents]
        self.levels = kinematic_levels(self.parents)
        position_in_level = {j: k for level in self.levels for k, j in enumerate(level)}
        as_index = lambda values: torch.as_tensor(values, dtype=torch.long)  # noqa: E731
        self.level_index = [as_index(level) for level in self.levels]
        # every parent sits in the previous level: one gather per level
        self.parent_in_previous = [as_index([position_in_level[self.parents[j]] for j in level]) for level in self.levels[1:]]
        self.parent_index = as_index([max(p, 0) for p in self.parents])
        order = [j for level in self.levels for j in level]
        self.back = as_index(sorted(range(len(order)), key=order.__getitem__))

    def to(self, device: torch.device) -> "KinematicPlan":
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
            elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
                setattr(self, name, [v.to(device) for v in value])
        return self


def forward_kinematics(rot_mats: Tensor, rest_joints: Tensor, parents: Sequence[int] | KinematicPlan) -> tuple[Tensor, Tensor]:
    """Pose a kinematic tree.

    rot_mats (B,J,3,3) local rotations (joint 0's is the global orientation, about joint 0); rest_joints (B,J,3);
    parents: the parent of each joint (-1 for the root) or a prepared `KinematicPlan`.
    Returns posed joint positions (B,J,3) and world rotations of the joint frames (B,J,3,3).
    """
    if rot_mats.shape[:-2] != rest_joints.shape[:-1]:
        raise ValueError(f"forward_kinematics: rot_mats {tuple(rot_mats.shape)} and rest_joints {tuple(rest_joints.shape)} disagree")
    plan = parents if isinstance(parents, KinematicPlan) else KinematicPlan(parents).to(rest_joints.device)
    offsets = (rest_joints - rest_joints.index_select(1, plan.parent_index)).unsqueeze(-1)
    rots = [rot_mats.index_select(1, plan.level_index[0])]
    positions = [rest_joints.index_select(1, plan.level_index[0])]
    for index, from_prev in zip(plan.level_index[1:], plan.parent_in_previous):
        parent_rot = rots[-1].index_select(1, from_prev)
        rots.append(parent_rot @ rot_mats.index_select(1, index))
        positions.append((parent_rot @ offsets.index_select(1, index)).squeeze(-1) + positions[-1].index_select(1, from_prev))
    return torch.cat(positions, dim=1).index_select(1, plan.back), torch.cat(rots, dim=1).index_select(1, plan.back)


class ManoLayer(nn.Module):
    """MANO as a torch module. Build it with `hands.mano.build_mano`.

    pose_convention: "flat" means hand_pose is the articulation itself (zero = flat open hand); "mean_relative"
    means hand_pose is relative to the model's `hands_mean` (smplx's default, InterHand2.6M NeuralAnnot poses).
    use_pca: hand_pose holds `num_pca_comps` PCA coefficients instead of 45 axis-angle values.
    """

    def __init__(
        self,
        model: ManoModelData,
        *,
        pose_convention: PoseConvention,
        use_pca: bool = False,
        num_pca_comps: int = 45,
        fix_left_shapedirs: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if pose_convention not in ("flat", "mean_relative"):
            raise ValueError(f"pose_convention must be 'flat' or 'mean_relative', got {pose_convention!r}")
        n_comps_available = model.hands_components.shape[0]
        if use_pca and not 1 <= num_pca_comps <= n_comps_available:
            raise ValueError(f"num_pca_comps must be in 1..{n_comps_available}, got {num_pca_comps}")
        if model.side == "left" and fix_left_shapedirs:
            model = model.with_left_shapedirs_fix()
        self.side = model.side
        self.is_builtin = model.is_builtin
        self.source = model.source
        self.pose_convention = pose_convention
        self.use_pca = use_pca
        self.num_pca_comps = num_pca_comps if use_pca else 45
        self.num_betas = model.shapedirs.shape[-1]
        self.parents = [int(p) for p in model.parents]
        self._plan = KinematicPlan(self.parents)
        self.tip_vertex_ids = TIP_VERTEX_IDS[model.side]
        if model.num_vertices <= max(self.tip_vertex_ids):
            raise ValueError(f"{model.source}: {model.num_vertices} vertices, too few for the tip ids {self.tip_vertex_ids}")
        V = model.num_vertices

        def buf(name: str, value: np.ndarray) -> None:
            # A copy: as_tensor would share memory with the (cached) model's arrays, so changing one layer's
            # buffers in place would change every layer built later.
            self.register_buffer(name, torch.tensor(np.ascontiguousarray(value), dtype=dtype), persistent=False)

        # Vertex-major layouts: a whole batch is then one large GEMM per step instead of B small ones.
        buf("v_template", model.v_template)
        buf("shapedirs", model.shapedirs.reshape(V * 3, -1))  # (V*3, S)
        buf("joint_template", model.J_regressor @ model.v_template)  # (16,3)
        buf("J_regressor", model.J_regressor)  # (16,V), for per-vertex template offsets
        buf("joint_shapedirs", np.einsum("jv,vcs->sjc", model.J_regressor, model.shapedirs).reshape(self.num_betas, 48))
        self.has_posedirs = bool(np.any(model.posedirs != 0))
        buf("posedirs", model.posedirs.reshape(V * 3, 135) if self.has_posedirs else np.zeros((0, 0)))
        buf("weights", model.weights)
        buf("hand_components", model.hands_components[: self.num_pca_comps])
        buf("hands_mean", model.hands_mean)
        self.register_buffer("faces", torch.as_tensor(model.faces, dtype=torch.long), persistent=False)
        self.register_buffer("_tip_index", torch.as_tensor(self.tip_vertex_ids), persistent=False)
        self.register_buffer("_canonical_from_mano", torch.as_tensor(joint_permutation("mano", "canonical")), persistent=False)

    def _apply(self, fn, *args, **kwargs):  # keep the kinematic plan's index tensors on the module's device
        result = super()._apply(fn, *args, **kwargs)
        self._plan.to(self.v_template.device)
        return result

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def extra_repr(self) -> str:
        return (f"side={self.side}, vertices={self.num_vertices}, pose_convention={self.pose_convention}, "
                f"use_pca={self.use_pca}, num_pca_comps={self.num_pca_comps}, builtin={self.is_builtin}")

    def _numbers(self, name: str, value) -> Tensor | None:
        """An input as a float tensor of the layer's dtype and device (arrays and lists accepted); strings, scalars
        and non-numbers are a ValueError naming the input."""
        if value is None:
            return None
        if isinstance(value, (str, bytes)):
            raise ValueError(f"MANO input '{name}' should be an array of numbers, got the string {value!r}")
        try:
            tensor = torch.as_tensor(value, dtype=self.v_template.dtype, device=self.v_template.device)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"MANO input '{name}' should be an array of numbers ({error})") from None
        if tensor.dim() == 0:
            raise ValueError(f"MANO input '{name}' should be an array, got the scalar {float(tensor)}")
        return tensor

    def _as_batch(self, name: str, value: Tensor | None, width: int, batch: int | None) -> Tensor | None:
        if value is None:
            return None
        value = torch.as_tensor(value, dtype=self.v_template.dtype, device=self.v_template.device)
        if value.dim() == 1:
            value = value.unsqueeze(0)
        if value.dim() != 2 or value.shape[1] != width or (batch is not None and value.shape[0] != batch):
            want = f"({batch if batch is not None else 'B'}, {width})"
            raise ValueError(f"MANO input '{name}' should have shape {want}, got {tuple(value.shape)}")
        return value

    def rest_joints(self, betas: Tensor | None = None) -> Tensor:
        """Shaped rest-pose kinematic joints (B,16,3) in meters for betas (B,<=S) (template joints if None)."""
        if betas is None:
            return self.joint_template[None]
        betas = torch.as_tensor(betas, dtype=self.joint_template.dtype, device=self.joint_template.device)
        betas = betas.unsqueeze(0) if betas.dim() == 1 else betas
        betas = torch.nn.functional.pad(betas, (0, self.num_betas - betas.shape[1]))
        return self.joint_template + (betas @ self.joint_shapedirs).view(betas.shape[0], 16, 3)

    def full_pose_from(self, global_orient: Tensor, hand_pose: Tensor) -> Tensor:
        """(B,3) global orientation + hand_pose (B,45 or B,ncomps) -> (B,48) axis-angle, flat-hand convention."""
        articulation = hand_pose @ self.hand_components if self.use_pca else hand_pose
        if self.pose_convention == "mean_relative":
            articulation = articulation + self.hands_mean
        return torch.cat([global_orient, articulation], dim=1)

    def forward(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
        offsets: Tensor | None = None,
        joints_only: bool = False,
    ) -> ManoOutput:
        """Pose and shape the hand. All inputs are optional and batched: global_orient (B,3) axis-angle,
        hand_pose (B,45) axis-angle or (B,num_pca_comps) PCA coefficients, betas (B,<=S), transl (B,3) meters,
        offsets (B,V,3) meters added to the rest-pose template (the rest joints follow through the regressor).
        `joints_only` skins just the five fingertip vertices (`vertices` is then (B,5,3)): the same joints at a
        fraction of the cost, for fitting."""
        global_orient, hand_pose, betas, transl, offsets = (
            self._numbers(name, value) for name, value in (("global_orient", global_orient), ("hand_pose", hand_pose),
                                                           ("betas", betas), ("transl", transl), ("offsets", offsets)))
        given = [v for v in (global_orient, hand_pose, betas, transl) if v is not None]
        first = given[0] if given else None
        batch = 1 if first is None or first.dim() == 1 else first.shape[0]
        dtype, device = self.v_template.dtype, self.v_template.device
        global_orient = self._as_batch("global_orient", global_orient, 3, batch)
        hand_pose = self._as_batch("hand_pose", hand_pose, self.num_pca_comps, batch)
        if betas is not None:
            betas = torch.as_tensor(betas, dtype=dtype, device=device)
            betas = betas.unsqueeze(0) if betas.dim() == 1 else betas
            if betas.dim() != 2 or betas.shape[0] != batch or betas.shape[1] > self.num_betas:
                raise ValueError(f"MANO input 'betas' should have shape ({batch}, <= {self.num_betas}), got {tuple(betas.shape)}")
            if betas.shape[1] < self.num_betas:
                betas = torch.nn.functional.pad(betas, (0, self.num_betas - betas.shape[1]))
        transl = self._as_batch("transl", transl, 3, batch)
        zeros = lambda n: torch.zeros(batch, n, dtype=dtype, device=device)  # noqa: E731
        full_pose = self.full_pose_from(
            global_orient if global_orient is not None else zeros(3),
            hand_pose if hand_pose is not None else zeros(self.num_pca_comps),
        )
        rot_mats = axis_angle_to_matrix(full_pose.view(batch, 16, 3))
        return self.forward_rotation_matrices(rot_mats, betas if betas is not None else zeros(self.num_betas), transl, full_pose,
                                              offsets, joints_only)

    def forward_rotation_matrices(
        self, rot_mats: Tensor, betas: Tensor, transl: Tensor | None = None, full_pose: Tensor | None = None,
        offsets: Tensor | None = None,
        joints_only: bool = False,
    ) -> ManoOutput:
        """Pose from local rotation matrices (B,16,3,3) in the flat-hand convention, betas (B,S), transl (B,3),
        template offsets (B,V,3); `joints_only` as in `forward`."""
        batch = rot_mats.shape[0]
        if rot_mats.shape[1:] != (16, 3, 3):
            raise ValueError(f"MANO input 'rot_mats' should have shape (B, 16, 3, 3), got {tuple(rot_mats.shape)}")
        template, shapedirs, posedirs, weights = self.v_template, self.shapedirs, self.posedirs, self.weights
        if joints_only:
            if offsets is not None:
                raise ValueError("MANO: joints_only does not take template offsets")
            rows = (self._tip_index[:, None] * 3 + torch.arange(3, device=self._tip_index.device)).reshape(-1)
            template, shapedirs, weights = template[self._tip_index], shapedirs[rows], weights[self._tip_index]
            posedirs = posedirs[rows] if self.has_posedirs else posedirs
        V = template.shape[0]
        # Shape (and pose-corrective) offsets in a (V*3, B) layout.
        v_shaped = torch.addmm(template.reshape(V * 3, 1), shapedirs, betas.T)
        rest_joints = self.joint_template + (betas @ self.joint_shapedirs).view(batch, 16, 3)
        if offsets is not None:
            if offsets.shape != (batch, V, 3):
                raise ValueError(f"MANO input 'offsets' should have shape ({batch}, {V}, 3), got {tuple(offsets.shape)}")
            v_shaped = v_shaped + offsets.permute(1, 2, 0).reshape(V * 3, batch)
            rest_joints = rest_joints + torch.einsum("jv,bvc->bjc", self.J_regressor, offsets)
        if self.has_posedirs:
            eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
            pose_feature = (rot_mats[:, 1:] - eye).reshape(batch, 135)
            v_shaped = torch.addmm(v_shaped, posedirs, pose_feature.T)
        v_shaped = v_shaped.view(V, 3, batch)
        posed_joints, world_rot = forward_kinematics(rot_mats, rest_joints, self._plan)
        # Skinning transform of joint k maps rest space to posed space: x -> R_k x + (p_k - R_k j_k).
        skin_t = posed_joints - (world_rot @ rest_joints.unsqueeze(-1)).squeeze(-1)
        # Per joint: the three columns of R_k, then the translation -> (16, 4, 3, B) for one (V,16)x(16,12B) GEMM.
        per_joint = torch.cat([world_rot.transpose(-1, -2), skin_t.unsqueeze(-2)], dim=-2).permute(1, 2, 3, 0)
        blended = (weights @ per_joint.reshape(16, 12 * batch)).view(V, 4, 3, batch)
        vertices = blended[:, 3]
        for axis in range(3):
            vertices = torch.addcmul(vertices, blended[:, axis], v_shaped[:, axis:axis + 1])
        vertices = vertices.permute(2, 0, 1).contiguous()  # (B, V, 3)
        if transl is not None:
            vertices = vertices + transl.unsqueeze(1)
            posed_joints = posed_joints + transl.unsqueeze(1)
        tips = vertices if joints_only else vertices.index_select(1, self._tip_index)
        joints = torch.cat([posed_joints, tips], dim=1).index_select(1, self._canonical_from_mano)
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=vertices.dtype, device=vertices.device).expand(batch, 16, 1, 4)
        transforms = torch.cat([torch.cat([world_rot, posed_joints.unsqueeze(-1)], dim=-1), bottom], dim=-2)
        if full_pose is None:
            full_pose = matrix_to_axis_angle(rot_mats).reshape(batch, 48)
        return ManoOutput(vertices=vertices, joints=joints, kinematic_joints=posed_joints,
                          joint_transforms=transforms, full_pose=full_pose, betas=betas)
