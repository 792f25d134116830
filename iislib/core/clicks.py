"""The click: one interaction of the (simulated) user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Click(NamedTuple):
    """One user click at pixel (row, col); ``positive`` is True for a foreground click."""

    row: int
    col: int
    positive: bool


def click_arrays(clicks: Sequence[Click]) -> tuple[np.ndarray, np.ndarray]:
    """Split clicks into positive and negative coordinate arrays.

    Returns:
        pos, neg: int64 arrays of shape (P, 2) and (N, 2) of (row, col).
    """
    pos = np.array([(c.row, c.col) for c in clicks if c.positive], dtype=np.int64).reshape(-1, 2)
    neg = np.array([(c.row, c.col) for c in clicks if not c.positive], dtype=np.int64).reshape(
        -1, 2
    )
    return pos, neg


def check_clicks(clicks: Sequence[Click], shape: tuple[int, int]) -> None:
    """Raise ValueError if a click lies outside an image of ``shape`` (H, W)."""
    h, w = shape
    for i, c in enumerate(clicks):
        if not (0 <= c.row < h and 0 <= c.col < w):
            raise ValueError(
                f"click {i} at (row={c.row}, col={c.col}) is outside the {h}x{w} image"
            )
