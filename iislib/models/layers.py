"""Parameter-free building blocks of the networks, as plain PyTorch.

Each is a module rather than an inline call so that ``iislib.models.fast`` can swap it for a
faster equivalent (the way ``torch.ao`` swaps ``FloatFunctional``): ``Concat`` for a
concatenation that keeps channels_last tensors in that layout, ``DistMaps`` for disks drawn
only around each click. They hold no parameters or buffers, so state dicts do not change.
"""

from __future__ import annotations

import torch
from torch import nn


class Concat(nn.Module):
    """``torch.cat(tensors, 1)``: (B, C_i, H, W) tensors -> (B, sum C_i, H, W)."""

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.cat(tensors, 1)


class DistMaps(nn.Module):
    """RITM's click encoding: (B, 2N, 3) points -> (B, 2, H, W) [positive, negative] maps.

    ``points[b, :N]`` are the positive slots and ``points[b, N:]`` the negative ones, each
    (row, col, index) in pixels (floats allowed); slots with max(row, col) < 0 are padding.
    With ``use_disks`` a channel is 1 where the squared distance to the nearest point of its sign
    is <= ``norm_radius**2``; otherwise it is tanh(2 d / norm_radius) (1 far away). This is
    RITM's ``DistMaps.get_coord_features``: distances of every pixel to every point.
    """

    def __init__(self, norm_radius: float = 5.0, use_disks: bool = True) -> None:
        super().__init__()
        self.norm_radius = float(norm_radius)
        self.use_disks = use_disks

    def forward(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self.use_disks:
            d2 = self.nearest_squared_distance(points, height, width)
            return (d2 <= self.norm_radius**2).to(torch.float32)
        d2 = self.nearest_squared_distance(points, height, width, self.norm_radius)
        return torch.tanh(2.0 * torch.sqrt(d2))

    @staticmethod
    def nearest_squared_distance(
        points: torch.Tensor, height: int, width: int, unit: float = 1.0
    ) -> torch.Tensor:
        """(B, 2, H, W) float32 squared distance, in units of ``unit`` pixels, from each pixel
        to the nearest point of each sign; 1e6 for a sign without points."""
        b, n2, _ = points.shape
        n = n2 // 2
        pts = points[..., :2].to(torch.float32)
        invalid = pts.max(dim=2).values < 0  # (B, 2N)
        rows = torch.arange(height, dtype=torch.float32, device=points.device)
        cols = torch.arange(width, dtype=torch.float32, device=points.device)
        dr = rows.view(1, 1, height, 1) - pts[..., 0].view(b, n2, 1, 1)
        dc = cols.view(1, 1, 1, width) - pts[..., 1].view(b, n2, 1, 1)
        if unit != 1.0:  # divided, as RITM does: the same float32 values
            dr = dr / unit
            dc = dc / unit
        d2 = dr * dr + dc * dc  # (B, 2N, H, W)
        d2 = d2.masked_fill(invalid.view(b, n2, 1, 1), 1e6)
        return d2.view(b, 2, n, height, width).amin(dim=2)
