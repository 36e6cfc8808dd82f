"""OHTA's shape deformer ("M_shape", used in prior learning): per-vertex offsets of the MANO-HD template from the
vertex's positional encoding, the finger pose and the identity code.

Input per vertex: [PE_6(template vertex) (39) ‖ finger pose (45) ‖ identity (33)] → 4×128 ReLU MLP → 3 offsets in
meters (last layer initialised near zero). The offsets are shifted so the middle MCP (MANO joint 4) of the offset
template stays where the template's is, as the release does.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def positional_encoding(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """NeRF encoding [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(n-1) x), cos(2^(n-1) x)]: (..., 3) -> (..., 3 + 6n)."""
    parts = [x]
    for k in range(frequencies):
        parts += [torch.sin(x * 2.0**k), torch.cos(x * 2.0**k)]
    return torch.cat(parts, dim=-1)


class ShapeDeformer(nn.Module):
    """Per-vertex template offsets: template (V, 3) meters; forward(pose (B, 45), identity (B, 33)) -> (B, V, 3)."""

    def __init__(self, template: torch.Tensor, regressor: torch.Tensor, condition_dim: int = 45 + 33,
                 frequencies: int = 6, hidden: int = 128, layers: int = 4, centre_joint: int = 4) -> None:
        super().__init__()
        self.register_buffer("vert_dict", positional_encoding(template.float(), frequencies)[None])  # (1, V, 39)
        self.register_buffer("centre_row", regressor[centre_joint].float(), persistent=False)  # (V,)
        dims = [self.vert_dict.shape[-1] + condition_dim] + [hidden] * layers + [3]
        self.count = len(dims) - 1
        for i in range(self.count):
            linear = nn.Linear(dims[i], dims[i + 1])
            if i == self.count - 1:
                nn.init.normal_(linear.weight, 0.0, 1e-3)
                nn.init.zeros_(linear.bias)
            setattr(self, f"lin{i}", linear)

    def forward(self, pose: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        condition = torch.cat([pose, identity], dim=-1)
        B, V = condition.shape[0], self.vert_dict.shape[1]
        x = torch.cat([self.vert_dict.expand(B, -1, -1), condition[:, None].expand(-1, V, -1)], dim=-1)
        for i in range(self.count):
            x = getattr(self, f"lin{i}")(x)
            if i < self.count - 1:
                x = torch.relu(x)
        return x - torch.einsum("v,bvc->bc", self.centre_row, x)[:, None]
