"""The ipol settings' preparation: centre crop, nearest resize, min-max normalisation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from iislib.models.settings import centre_crop_square, get_settings, minmax, resize_nearest


def test_centre_crop_square_hand_cases() -> None:
    a = np.arange(5 * 2).reshape(5, 2)
    # side 2; (5 - 2) / 2 = 1.5 rounds half to even -> top 2
    np.testing.assert_array_equal(centre_crop_square(a), a[2:4])
    b = np.arange(3 * 6).reshape(3, 6)
    np.testing.assert_array_equal(centre_crop_square(b), b[:, 2:5])  # (6 - 3) / 2 = 1.5 -> 2


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 30), st.integers(1, 30))
def test_resize_nearest_equals_torch_nearest(h, w, oh, ow) -> None:
    a = np.random.default_rng(h * 1000 + w).random((h, w, 3)).astype(np.float32)
    got = resize_nearest(a, (oh, ow))
    want = F.interpolate(torch.from_numpy(a).permute(2, 0, 1)[None], size=(oh, ow), mode="nearest")
    np.testing.assert_array_equal(got, want[0].permute(1, 2, 0).numpy())
    assert got.flags["C_CONTIGUOUS"]  # models and robots then read rows, not columns


def test_ipol_prepare() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(10, 200, (300, 451, 3), dtype=np.uint8)
    gt = np.zeros((300, 451), bool)
    gt[100:200, 200:300] = True
    img, mask, ignore = get_settings("ipol").prepare(image, gt)
    assert img.shape == (224, 224, 3) and img.dtype == np.float32
    assert mask.shape == (224, 224) and mask.dtype == bool and ignore is None
    assert img.min() == 0.0 and img.max() == 1.0  # min-max normalised
    assert img.flags["C_CONTIGUOUS"] and mask.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(img, minmax(resize_nearest(image[:, 76:376], (224, 224))))
    np.testing.assert_array_equal(mask, resize_nearest(gt[:, 76:376], (224, 224)))
