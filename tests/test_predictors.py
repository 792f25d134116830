"""RITM's evaluation predictor: zoom-in geometry, flip averaging, trajectory state."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iislib.core.clicks import Click
from iislib.core.model import IISModel
from iislib.models.predictors import (
    ZoomInFlipPredictor,
    bbox_iou,
    clicks_inside,
    expand_bbox,
    object_roi,
    zoom_size,
)
from iislib.models.settings import get_settings

# -- geometry by hand ---------------------------------------------------------------------------


def test_object_roi_min_crop_and_half_to_even_rounding() -> None:
    mask = np.zeros((300, 450), bool)
    mask[100:150, 200:280] = True  # rows 100..149, cols 200..279
    # 1.4 x (50, 80) = (70, 112) < 200 -> 200 x 200 about the centre (124.5, 239.5):
    # rows round(24.5)=24 .. round(224.5)=224, cols round(139.5)=140 .. round(339.5)=340
    assert object_roi(mask, [], 1.4, 200) == (24, 224, 140, 340)
    assert zoom_size((24, 224, 140, 340), 400) == (400, 400)
    # a positive click outside the mask grows the box; a negative one does not
    box = object_roi(mask, [Click(100, 420, True), Click(299, 0, False)], 1.4, 200)
    # cols 200..420 (221 wide) x 1.4 = 309.4 about 310: round(155.3)=155 .. round(464.7)=465 -> 449
    assert box == (24, 224, 155, 449)


def test_object_roi_clamped_and_expanded() -> None:
    mask = np.zeros((300, 450), bool)
    mask[0:10, 0:10] = True  # centre 4.5: round(-95.5) = -96 .. round(104.5) = 104 -> clamp
    assert object_roi(mask, [], 1.4, 200) == (0, 104, 0, 104)
    mask = np.zeros((300, 450), bool)
    # 200 rows x 1.4 = 280 about 109.5: round(-30.5) = -30 .. round(249.5) = 250;
    # 50 cols -> 200 about 124.5: round(24.5) = 24 .. round(224.5) = 224
    mask[10:210, 100:150] = True
    assert object_roi(mask, [], 1.4, 200) == (0, 250, 24, 224)
    assert expand_bbox((10, 209, 100, 149), 1.4, 200) == (-30, 250, 24, 224)
    assert zoom_size((0, 250, 24, 224), 400) == (400, 320)  # 251 x 201: 201 * 400 / 251 = 320.3


def test_bbox_iou_and_click_containment() -> None:
    assert bbox_iou((0, 9, 0, 9), (5, 14, 0, 9)) == pytest.approx(5 / 15)
    assert bbox_iou((0, 9, 0, 9), (0, 9, 0, 9)) == 1.0
    assert bbox_iou((0, 9, 0, 9), (20, 29, 0, 9)) == 0.0
    box = (0, 10, 0, 10)
    assert clicks_inside(box, [Click(9, 9, True), Click(50, 50, False)])
    assert not clicks_inside(box, [Click(10, 5, True)])  # RITM's test is half-open: r < rmax
    assert not clicks_inside(box, [Click(5, 10, True)])


# -- recording dummies --------------------------------------------------------------------------


class LogitDummy(IISModel):
    """Flip-equivariant per-pixel logits from the image, prev and smooth bumps at the clicks;
    records every batch it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], list]] = []

    def predict_logits(
        self, images: np.ndarray, clicks_lists: Sequence, prevs: np.ndarray
    ) -> np.ndarray:
        self.calls.append((images.shape, [list(c) for c in clicks_lists]))
        b, h, w = prevs.shape
        rr, cc = np.mgrid[:h, :w].astype(np.float64)
        out = 3 * (images[..., 0] - 0.5) + 2 * (prevs - 0.5) - 2.0
        out = out.astype(np.float64)
        for k, clicks in enumerate(clicks_lists):
            for r, c, p in clicks:
                bump = 6 * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / 400.0)
                out[k] += bump if p else -bump
        return out.astype(np.float32)

    def _predict(self, image, clicks, prev):
        logits = self.predict_logits(
            image[None], [[(c.row, c.col, c.positive) for c in clicks]], prev[None]
        )
        return 1 / (1 + np.exp(-logits[0]))


class ProbDummy(IISModel):
    """A flip-equivariant model without logits: prob from the image, prev and click disks."""

    def _predict(self, image, clicks, prev):
        h, w = prev.shape
        rr, cc = np.mgrid[:h, :w]
        out = 0.3 * image.mean(axis=2) + 0.3 * prev
        for c in clicks:
            disk = (rr - c.row) ** 2 + (cc - c.col) ** 2 <= 36
            out = np.where(disk, 1.0 if c.positive else 0.0, out)
        return out.astype(np.float32)


def scene(h: int = 300, w: int = 450) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[100:150, 200:280] = 255
    return img


def test_zoom_crop_and_click_coordinates() -> None:
    model = LogitDummy()
    pred = ZoomInFlipPredictor(model)
    img = scene()
    prev = np.zeros((300, 450), np.float32)
    prev[100:150, 200:280] = 0.9
    c1 = Click(120, 230, True)
    first = pred.predict(img, [c1], None)  # first click: no zoom, whole image, flipped pair
    assert model.calls[-1][0] == (2, 300, 450, 3)
    assert model.calls[-1][1] == [[(120.0, 230.0, True)], [(120.0, 449 - 230.0, True)]]
    assert first.shape == (300, 450)
    c2 = Click(140, 250, False)
    out = pred.predict(img, [c1, c2], prev)
    shape, lists = model.calls[-1]
    assert shape == (2, 400, 400, 3)  # box (24, 224, 140, 340), 201 x 201 -> 400 x 400
    s = 400 / 201
    want = [((120 - 24) * s, (230 - 140) * s, True), ((140 - 24) * s, (250 - 140) * s, False)]
    np.testing.assert_allclose([p[:2] for p in lists[0]], [p[:2] for p in want])
    np.testing.assert_allclose([p[1] for p in lists[1]], [399 - p[1] for p in want])
    # zero outside the box, something inside
    inside = np.zeros((300, 450), bool)
    inside[24:225, 140:341] = True
    assert np.all(out[~inside] == 0) and out[inside].max() > 0.5


def test_box_kept_updated_and_empty_prev() -> None:
    model = LogitDummy()
    pred = ZoomInFlipPredictor(model, flip=False)
    img = scene()
    prev = np.zeros((300, 450), np.float32)
    prev[100:150, 200:280] = 0.9
    clicks = [Click(120, 230, True), Click(140, 250, False)]
    state = pred.start(img)  # the trajectory's history: the box of its last call
    assert state.box is None
    pred.predict(img, clicks[:1], state=state)
    pred.predict(img, clicks, prev, state=state)
    assert model.calls[-1][0] == (1, 400, 400, 3)
    assert state.box == (24, 224, 140, 340)
    # slightly larger object: its box (30, 230, 144, 344) has IoU 0.905 with the old one
    # (24, 224, 140, 340), so the old box is kept (the clicks are placed relative to it)
    prev2 = np.zeros_like(prev)
    prev2[100:160, 200:290] = 0.9
    assert object_roi(prev2 > 0.5, clicks, 1.4, 200) == (30, 230, 144, 344)
    pred.predict(img, clicks + [Click(145, 285, True)], prev2, state=state)
    shape, lists = model.calls[-1]
    assert shape == (1, 400, 400, 3)
    np.testing.assert_allclose(lists[0][0][:2], (400 * 96 / 201, 400 * 90 / 201))
    # without the trajectory's state the call has no history: the new box is taken
    pred.predict(img, clicks + [Click(145, 285, True)], prev2)
    np.testing.assert_allclose(model.calls[-1][1][0][0][:2], (400 * 90 / 201, 400 * 86 / 201))
    # a positive click outside the box forces a new one: rows 10..159 (x1.4 = 210 about 84.5:
    # round(-20.5) = -20 -> 0 .. round(189.5) = 190), cols 200..440 (337.4 about 320: 151..489)
    far = clicks + [Click(145, 285, True), Click(10, 440, True)]
    pred.predict(img, far, prev2, state=state)
    assert object_roi(prev2 > 0.5, far, 1.4, 200) == (0, 190, 151, 449)
    shape, lists = model.calls[-1]
    assert shape == (1, 256, 400, 3)  # 191 x 299 -> round(191 * 400 / 299) = 256 x 400
    np.testing.assert_allclose(lists[0][0][:2], (256 * 120 / 191, 400 * (230 - 151) / 299))
    # an empty previous prediction: the whole image, returned as it is
    out = pred.predict(img, far + [Click(5, 5, False)], np.zeros_like(prev), state=state)
    assert model.calls[-1][0] == (1, 300, 450, 3)
    assert out.shape == (300, 450) and out[0, 0] > 0
    assert state.box == (0, 190, 151, 449)  # kept for later clicks


def test_history_is_per_trajectory() -> None:
    """Interleaving two trajectories, each with its own state, gives what running them one after
    the other gives; and so does the loop, which opens the states itself."""
    img_a, img_b = scene(), scene()[::-1].copy()
    traj_a = [Click(120, 230, True), Click(140, 250, True), Click(20, 20, False)]
    traj_b = [Click(180, 230, True), Click(160, 270, True), Click(299, 0, False)]

    def run(pred, img, traj, k, prev, state):
        return pred.predict(img, traj[: k + 1], prev, state=state)

    sep = ZoomInFlipPredictor(LogitDummy())
    ref_a, ref_b = [], []
    prev, state = None, sep.start(img_a)
    for k in range(3):
        prev = run(sep, img_a, traj_a, k, prev, state)
        ref_a.append(prev)
    prev, state = None, sep.start(img_b)
    for k in range(3):
        prev = run(sep, img_b, traj_b, k, prev, state)
        ref_b.append(prev)
    inter = ZoomInFlipPredictor(LogitDummy())
    pa = pb = None
    sa, sb = inter.start(img_a), inter.start(img_b)
    for k in range(3):
        pa = run(inter, img_a, traj_a, k, pa, sa)
        pb = run(inter, img_b, traj_b, k, pb, sb)
        np.testing.assert_array_equal(pa, ref_a[k])
        np.testing.assert_array_equal(pb, ref_b[k])
    # the two states hold different boxes: one shared state would have mixed them up
    assert sa.box is not None and sb.box is not None and sa.box != sb.box


def test_the_loop_gives_each_trajectory_its_own_zoom_state() -> None:
    from iislib.core.loop import make_rng, run_many
    from iislib.core.robots import get_robot

    img = scene()
    gt = img[..., 0] > 0
    robots = ["rgto99", "r02", "rritm"]
    pairs = [(get_robot(r), make_rng(0, "s", r)) for r in robots]
    many = run_many(ZoomInFlipPredictor(LogitDummy()), pairs, img, gt, max_clicks=4,
                    keep_probs=True)  # fmt: skip
    for t in many:
        # each trajectory is what a click-by-click replay with one state of its own gives
        alone = ZoomInFlipPredictor(LogitDummy())
        state, prev = alone.start(img), None
        for k in range(len(t.clicks)):
            prev = alone.predict(img, t.clicks[: k + 1], prev, state=state)
            np.testing.assert_array_equal(prev, t.probs[k])


# -- flip averaging -----------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.lists(
        st.tuples(st.integers(0, 79), st.integers(0, 119), st.booleans()), min_size=1, max_size=4
    ),
    st.booleans(),
)
def test_flip_average_of_equivariant_logits_equals_plain(seed, raw, zoom) -> None:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    prev = rng.random((80, 120)).astype(np.float32)
    clicks = [Click(r, c, p) for r, c, p in raw]
    kw = dict(zoom_in=zoom, skip_clicks=0, min_crop_size=20, target_size=64)
    flipped = ZoomInFlipPredictor(LogitDummy(), flip=True, **kw).predict(img, clicks, prev)
    plain = ZoomInFlipPredictor(LogitDummy(), flip=False, **kw).predict(img, clicks, prev)
    np.testing.assert_allclose(flipped, plain, atol=1e-5)


def test_flip_average_of_equivariant_probabilities_equals_plain() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    prev = rng.random((50, 70)).astype(np.float32)
    clicks = [Click(10, 3, True), Click(40, 66, False), Click(25, 35, True)]
    flipped = ZoomInFlipPredictor(ProbDummy(), zoom_in=False).predict(img, clicks, prev)
    plain = ProbDummy().predict(img, clicks, prev)
    np.testing.assert_allclose(flipped, plain, atol=1e-6)

    # a model that is not equivariant is changed by the averaging
    class Left(ProbDummy):
        def _predict(self, image, clicks, prev):
            return np.tile(np.linspace(0, 1, prev.shape[1], dtype=np.float32), (prev.shape[0], 1))

    avg = ZoomInFlipPredictor(Left(), zoom_in=False).predict(img, clicks, prev)
    np.testing.assert_allclose(avg, 0.5, atol=1e-6)


def test_generic_model_zoom_drops_outside_clicks() -> None:
    seen: list[list[Click]] = []

    class Rec(ProbDummy):
        def _predict(self, image, clicks, prev):
            seen.append(list(clicks))
            return super()._predict(image, clicks, prev)

    pred = ZoomInFlipPredictor(Rec(), flip=False)
    img = scene()
    prev = np.zeros((300, 450), np.float32)
    prev[100:150, 200:280] = 0.9
    clicks = [Click(120, 230, True), Click(290, 10, False)]
    pred.predict(img, clicks[:1])
    out = pred.predict(img, clicks, prev)
    s = 400 / 201
    assert seen[-1] == [Click(round((120 - 24) * s), round((230 - 140) * s), True)]
    assert out.shape == (300, 450)


def test_ritm_settings_wrap() -> None:
    wrapped = get_settings("ritm").wrap(ProbDummy())
    assert isinstance(wrapped, ZoomInFlipPredictor)
    assert (wrapped.target_size, wrapped.skip_clicks, wrapped.expansion_ratio) == (400, 1, 1.4)
    assert (wrapped.min_crop_size, wrapped.recompute_iou, wrapped.prob_thresh) == (200, 0.5, 0.5)


def test_flip_averages_logits_not_probabilities() -> None:
    class Ramp(LogitDummy):
        def predict_logits(self, images, clicks_lists, prevs):
            b, h, w = prevs.shape
            return np.tile(np.linspace(0, 4, w, dtype=np.float32), (b, h, 1))

    img = np.zeros((20, 30, 3), np.uint8)
    out = ZoomInFlipPredictor(Ramp(), zoom_in=False).predict(img, [Click(3, 3, True)])
    # mean logit 2 everywhere: sigmoid(2), not the mean of the two sigmoids
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-2.0)), atol=1e-6)


def test_wraps_a_ritm_network() -> None:
    from iislib.models import get_model

    model = get_model("ritm", pretrained=False, variant="compact")
    pred = get_settings("ritm").wrap(model)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    clicks = [Click(30, 40, True), Click(10, 10, False), Click(50, 80, True)]
    prev, state = None, pred.start(img)
    for k in range(len(clicks)):
        prev = pred.predict(img, clicks[: k + 1], prev, state=state)
        assert prev.shape == (60, 90) and prev.dtype == np.float32
        assert np.all((prev >= 0) & (prev <= 1))
