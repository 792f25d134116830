"""The seven robots on hand-checked masks, and properties on random masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from iislib import Click
from iislib.core import robots as robots_module
from iislib.core.robots import (
    RANDOM_ROBOTS,
    ROBOT_NAMES,
    ROBOTS,
    Robot,
    argmax_click,
    border_dt,
    get_robot,
    largest_component,
    r05_points,
    robot_name,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def mask(rows: list[str]) -> np.ndarray:
    """'#' is True, '.' is False."""
    return np.array([[ch == "#" for ch in row] for row in rows], dtype=bool)


# ---------------------------------------------------------------------------------------------
# registry


def test_registry_names_and_unknown_name():
    assert ROBOT_NAMES == ("r01", "r02", "r03", "r04", "r05", "rgto99", "rritm")
    for name in ROBOT_NAMES:
        assert get_robot(name) is ROBOTS[name]
    with pytest.raises(ValueError, match="unknown robot 'r99'.*rgto99"):
        get_robot("r99")


def test_robots_describe_themselves():
    assert RANDOM_ROBOTS == {"r01", "r02", "r03", "r04", "r05", "r05h"}
    for name, robot in ROBOTS.items():
        assert isinstance(robot, Robot) and robot.name == name and robot_name(robot) == name
        assert robot.label and robot.random == (name in RANDOM_ROBOTS)
    assert robot_name(lambda *a: None) == "<lambda>"  # a plain callable still has a name


class Corner(Robot):
    """A test robot built by a factory: always clicks ``(row, col)``."""

    name, label = "corner", "a fixed pixel"

    def __init__(self, row: int = 0, col: int = 0, name: str = "corner"):
        super().__init__(name=name)
        self.row, self.col = row, col

    def __call__(self, pred, gt, clicks, rng, ignore=None):
        return Click(self.row, self.col, bool(gt[self.row, self.col]))

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        out = np.zeros(gt.shape)
        out[self.row, self.col] = 1.0
        return out


def test_factory_robots_are_imported_and_built_with_keywords(monkeypatch):
    monkeypatch.setitem(robots_module._FACTORIES, "corner", "tests.test_robots:Corner")
    monkeypatch.setitem(robots_module._FACTORIES, "loose", "tests.test_robots:mask")
    robot = get_robot("corner", row=1, col=2)
    assert isinstance(robot, Corner) and robot_name(robot) == "corner"
    assert robot(np.zeros((3, 4), bool), np.ones((3, 4), bool), [], rng()) == Click(1, 2, True)
    assert get_robot("corner", name="mine").name == "mine"  # the factory names it
    with pytest.raises(TypeError, match="not a Robot"):
        get_robot("loose", rows=["#"])
    with pytest.raises(TypeError, match="takes no arguments, got clicks"):
        get_robot("rritm", clicks=[])


def test_a_factory_whose_module_is_missing_says_so(monkeypatch):
    monkeypatch.setitem(robots_module._FACTORIES, "ghost", "iislib.core.no_such_module:Ghost")
    with pytest.raises(ImportError, match="robot 'ghost' is registered as 'iislib.core.no_such"):
        get_robot("ghost")
    with pytest.raises(ValueError, match="unknown robot 'r99'.*replay"):
        get_robot("r99")


def test_a_robot_needs_a_name_and_both_methods():
    with pytest.raises(ValueError, match="non-empty name"):
        Robot()
    bare = Robot("bare", "does nothing")
    assert bare.name == "bare" and not bare.random and "bare" in repr(bare)
    gt = np.ones((2, 2), bool)
    with pytest.raises(NotImplementedError, match="__call__"):
        bare(gt, gt, [], rng())
    with pytest.raises(NotImplementedError, match="sampling_map"):
        bare.sampling_map(gt, gt)


def test_bad_masks_are_rejected():
    gt = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="shape"):
        get_robot("r02")(np.zeros((4, 5), bool), gt, [], rng())
    with pytest.raises(ValueError, match="binary"):
        get_robot("r02")(np.full((4, 4), 0.5), gt, [], rng())
    for name in ROBOTS:
        with pytest.raises(ValueError, match="shape"):
            get_robot(name).sampling_map(np.zeros((4, 5), bool), gt)
    with pytest.raises(ValueError, match="connectivity must be 1"):
        largest_component(gt, connectivity=4)
    with pytest.raises(ValueError, match="score has shape"):
        argmax_click(np.zeros((4, 5)), gt)


# ---------------------------------------------------------------------------------------------
# border distance transform


def test_border_dt_counts_the_image_border_as_boundary():
    dt = border_dt(np.ones((3, 3), bool))
    np.testing.assert_array_equal(dt, [[1, 1, 1], [1, 2, 1], [1, 1, 1]])
    # An L-shaped region off the border: exact Euclidean distances to the nearest outside pixel.
    m = mask([".....", ".###.", ".###.", ".###.", "....."])
    dt = border_dt(m)
    assert dt[2, 2] == 2 and dt[1, 1] == 1 and dt[0, 0] == 0


def test_border_dt_matches_scipy_on_padded_masks():
    g = rng(3)
    for _ in range(20):
        m = g.random((17, 23)) < 0.7
        ref = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
        np.testing.assert_allclose(border_dt(m), ref, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# END and ignore


@pytest.mark.parametrize("name", [*ROBOT_NAMES, "r05h"])
def test_every_robot_ends_when_no_error_is_left(name):
    gt = mask(["....", ".##.", ".##.", "...."])
    assert get_robot(name)(gt.copy(), gt, [], rng()) is None


@pytest.mark.parametrize("name", [*ROBOT_NAMES, "r05h"])
def test_errors_inside_ignore_do_not_count(name):
    gt = mask(["....", ".##.", ".##.", "...."])
    pred = gt.copy()
    pred[0, 0] = True  # the only error, inside the ignore band
    ignore = np.zeros_like(gt)
    ignore[0, :] = True
    assert get_robot(name)(pred, gt, [], rng(), ignore=ignore) is None


@pytest.mark.parametrize("name", [*ROBOT_NAMES, "r05h"])
def test_ignored_pixels_are_never_clicked(name):
    gt = mask(["......", ".####.", ".####.", "......"])
    ignore = np.zeros_like(gt)
    ignore[:, :3] = True
    for seed in range(30):
        c = get_robot(name)(np.zeros_like(gt), gt, [], rng(seed), ignore=ignore)
        assert c is not None and not ignore[c.row, c.col]


# ---------------------------------------------------------------------------------------------
# r01 .. r05


def test_r01_may_click_correct_pixels_and_labels_by_gt():
    gt = mask(["##..", "##..", "....", "...."])
    pred = gt.copy()
    pred[3, 3] = True  # one FP so the robot does not END
    clicks = [get_robot("r01")(pred, gt, [], rng(s)) for s in range(200)]
    assert any(not (pred ^ gt)[c.row, c.col] for c in clicks)  # ignores the prediction
    assert all(c.positive == gt[c.row, c.col] for c in clicks)


def test_r02_is_uniform_over_the_false_region():
    gt = mask(["##..", "##..", "....", "...."])
    pred = np.zeros_like(gt)
    pred[3, 3] = True
    false = pred ^ gt
    g = rng(1)
    hits = np.zeros(gt.shape)
    for _ in range(5000):
        c = get_robot("r02")(pred, gt, [], g)
        hits[c.row, c.col] += 1
    assert (hits[~false] == 0).all()
    np.testing.assert_allclose(hits[false] / 5000, 1 / 5, atol=0.03)


def test_r03_picks_the_largest_4_connected_component():
    # Two diagonal pixels are two 4-components; the 3-pixel bar is the largest.
    gt = mask(["#....", ".#...", ".....", "..###", "....."])
    for s in range(50):
        c = get_robot("r03")(np.zeros_like(gt), gt, [], rng(s))
        assert c.row == 3 and c.col in (2, 3, 4) and c.positive


def test_r03_tie_goes_to_the_lowest_raster_label():
    gt = mask(["...##", ".....", "##...", "....."])
    for s in range(50):
        c = get_robot("r03")(np.zeros_like(gt), gt, [], rng(s))
        assert c.row == 0 and c.col in (3, 4)


def test_r03_merges_touching_fn_and_fp():
    gt = mask(["##...", "....."])
    pred = mask(["..##.", "....."])  # FN at cols 0-1, FP at cols 2-3: one 4-component of 4 pixels
    lc = largest_component(pred ^ gt, connectivity=1)
    assert lc.sum() == 4


def test_r04_probability_is_proportional_to_border_distance():
    gt = np.ones((3, 3), bool)
    gt[0, 0] = False  # so the mask is not all foreground; the false region is 8 pixels
    pred = np.zeros_like(gt)
    false = pred ^ gt
    p = border_dt(false)
    p /= p.sum()
    g = rng(2)
    hits = np.zeros(gt.shape)
    n = 20000
    for _ in range(n):
        c = get_robot("r04")(pred, gt, [], g)
        hits[c.row, c.col] += 1
    np.testing.assert_allclose(hits / n, p, atol=0.012)
    assert hits[0, 0] == 0


def test_r05_equals_r04_under_the_same_generator():
    gt = mask(["......", ".####.", ".####.", ".####.", "......"])
    pred = np.zeros_like(gt)
    for s in range(20):
        assert get_robot("r05")(pred, gt, [], rng(s)) == get_robot("r04")(pred, gt, [], rng(s))


def test_r05_points_never_repeats_within_one_interaction_and_history_variant_avoids_old_clicks():
    gt = mask(["###", "###"])
    pred = np.zeros_like(gt)
    placed = r05_points(pred, gt, [], rng(0), n_points=6)
    assert len({(c.row, c.col) for c in placed}) == 6
    assert len(r05_points(pred, gt, [], rng(0), n_points=10)) == 6  # stops when nothing is left
    old = [Click(r, c, True) for r in range(2) for c in range(3) if (r, c) != (1, 1)]
    for s in range(10):
        c = get_robot("r05h")(pred, gt, old, rng(s))
        assert (c.row, c.col) == (1, 1)


# ---------------------------------------------------------------------------------------------
# rgto99


def test_rgto99_clicks_the_centre_of_the_largest_region():
    gt = mask([".......", ".#####.", ".#####.", ".#####.", ".#####.", ".#####.", "......."])
    c = get_robot("rgto99")(np.zeros_like(gt), gt, [], rng())
    assert c == Click(3, 3, True)


def test_rgto99_larger_type_wins_and_a_tie_goes_to_fp():
    gt = mask(["##....", "##....", "......", "......"])
    pred = mask(["......", "......", "....##", "....##"])  # FN 4 pixels, FP 4 pixels
    c = get_robot("rgto99")(pred, gt, [], rng())
    assert not c.positive and (c.row, c.col) == (2, 4)  # FP, first DT max in row-major order
    pred[3, 5] = False  # FP now 3 pixels: FN wins
    c = get_robot("rgto99")(pred, gt, [], rng())
    assert c.positive and (c.row, c.col) == (0, 0)


def test_rgto99_uses_8_connectivity_per_type():
    # FN: a diagonal of 3 pixels (one 8-component) beats a 2-pixel bar.
    gt = mask(["#.....", ".#....", "..#...", "....##"])
    c = get_robot("rgto99")(np.zeros_like(gt), gt, [], rng())
    assert (c.row, c.col) == (0, 0)


def test_rgto99_size_tie_follows_cv2_block_order():
    # Equal FP squares starting at (1, 2) and (0, 30): cv2 numbers the first one first
    # (block (0, 1) before block (0, 15)), a pixel-raster rule would pick the second.
    gt = np.zeros((6, 40), bool)
    gt[5, 0] = True
    pred = gt.copy()
    pred[1:3, 2:4] = True
    pred[0:2, 30:32] = True
    c = get_robot("rgto99")(pred, gt, [], rng())
    assert (c.row, c.col) == (1, 2) and not c.positive


def test_rgto99_does_not_exclude_earlier_clicks_but_rritm_does():
    gt = mask([".....", ".###.", ".###.", ".###.", "....."])
    pred = np.zeros_like(gt)
    first = get_robot("rgto99")(pred, gt, [], rng())
    assert first == Click(2, 2, True)
    assert get_robot("rgto99")(pred, gt, [first], rng()) == first
    second = get_robot("rritm")(pred, gt, [first], rng())
    assert second != first and second == Click(1, 1, True)


# ---------------------------------------------------------------------------------------------
# rritm


def test_rritm_separate_transforms_and_strict_comparison():
    # FN: 3x3 block (max DT 2); FP: 3x3 block (max DT 2): a tie is negative.
    gt = np.zeros((5, 11), bool)
    gt[1:4, 1:4] = True
    pred = np.zeros_like(gt)
    pred[1:4, 6:9] = True
    c = get_robot("rritm")(pred, gt, [], rng())
    assert c == Click(2, 7, False)
    gt2 = gt.copy()
    gt2[0:5, 0:5] = True  # FN becomes a 5x5 block at the image border: max DT 3 > FP's 2
    c = get_robot("rritm")(pred, gt2, [], rng())
    assert c.positive and (c.row, c.col) == (2, 2)


def test_rritm_ends_when_every_error_pixel_was_clicked():
    gt = mask(["#...", "...."])
    pred = np.zeros_like(gt)
    assert get_robot("rritm")(pred, gt, [Click(0, 0, True)], rng()) is None


# ---------------------------------------------------------------------------------------------
# properties

masks = arrays(np.bool_, st.tuples(st.integers(2, 12), st.integers(2, 12)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gt=masks, data=st.data())
def test_clicks_land_where_each_robot_promises(gt, data):
    pred = data.draw(arrays(np.bool_, gt.shape))
    seed = data.draw(st.integers(0, 2**32 - 1))
    fn, fp = gt & ~pred, pred & ~gt
    false = fn | fp
    for name in ROBOT_NAMES:
        c = get_robot(name)(pred, gt, [], rng(seed))
        if not false.any():
            assert c is None
            continue
        assert c is not None
        assert 0 <= c.row < gt.shape[0] and 0 <= c.col < gt.shape[1]
        assert c.positive == bool(gt[c.row, c.col])  # Assumption 1
        if name in ("r02", "r04", "r05", "rgto99", "rritm"):
            assert false[c.row, c.col], name
        if name == "r03":
            assert largest_component(false, 1)[c.row, c.col]
        if name == "rgto99":
            size_fn = largest_component(fn, 2).sum()
            size_fp = largest_component(fp, 2).sum()
            assert (fn if size_fn > size_fp else fp)[c.row, c.col]
        if name == "rritm":
            dfn, dfp = border_dt(fn).max(), border_dt(fp).max()
            assert c.positive == (dfn > dfp)
            assert border_dt(fn if c.positive else fp)[c.row, c.col] == max(dfn, dfp)


@settings(max_examples=30, deadline=None)
@given(gt=masks, seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_clicks(gt, seed):
    pred = np.zeros_like(gt)
    for name in RANDOM_ROBOTS:
        a = get_robot(name)(pred, gt, [], rng(seed))
        b = get_robot(name)(pred, gt, [], rng(seed))
        assert a == b


@settings(max_examples=30, deadline=None)
@given(gt=masks, data=st.data())
def test_rritm_never_clicks_a_clicked_pixel(gt, data):
    pred = data.draw(arrays(np.bool_, gt.shape))
    clicks: list[Click] = []
    for _ in range(5):
        c = get_robot("rritm")(pred, gt, clicks, rng())
        if c is None:
            break
        assert (c.row, c.col) not in {(k.row, k.col) for k in clicks}
        clicks.append(c)


# ---------------------------------------------------------------------------------------------
# sampling maps: what each robot decides on


def test_sampling_maps_on_a_hand_checked_case():
    gt = mask([".....", ".###.", ".###.", ".###.", "....."])
    pred = np.zeros_like(gt)
    first = Click(2, 2, True)
    p = get_robot("r02").sampling_map(pred, gt)
    np.testing.assert_array_equal(p, gt / 9)
    # r05h treats the earlier click as border: the centre is out, its neighbours are nearer
    h = get_robot("r05h").sampling_map(pred, gt, [first])
    w = np.where(gt, 1.0, 0.0)
    w[2, 2] = 0
    np.testing.assert_array_equal(h, w / 8)
    assert get_robot("r05").sampling_map(pred, gt, [first])[2, 2] > 0  # r05 forgets it
    # rgto99 maximises the distance map and ignores the earlier click; rritm zeroes it
    d = border_dt(gt)
    np.testing.assert_array_equal(get_robot("rgto99").sampling_map(pred, gt, [first]), d)
    d[2, 2] = 0
    np.testing.assert_array_equal(get_robot("rritm").sampling_map(pred, gt, [first]), d)
    assert argmax_click(d, gt) == Click(1, 1, True) == get_robot("rritm")(pred, gt, [first], rng())
    for name in ROBOTS:  # END: all zeros
        assert not get_robot(name).sampling_map(gt, gt).any()


def test_rgto99_map_is_the_chosen_component_only():
    gt = mask(["##.....", "##.....", ".......", "....###", "....###"])
    pred = mask([".......", ".......", ".......", "....###", "....###"]) | mask(
        ["......#", ".......", ".......", ".......", "......."]
    )
    # FN: a 2x2 block (4 px); FP: one pixel (1 px): the FN block's distances, nothing else
    np.testing.assert_array_equal(get_robot("rgto99").sampling_map(pred, gt), border_dt(gt & ~pred))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gt=masks, data=st.data())
def test_clicks_agree_with_the_sampling_maps(gt, data):
    pred = data.draw(arrays(np.bool_, gt.shape))
    ignore = data.draw(st.none() | arrays(np.bool_, gt.shape))
    seed = data.draw(st.integers(0, 2**32 - 1))
    n_clicks = data.draw(st.integers(0, 3))
    clicks = [
        Click(
            data.draw(st.integers(0, gt.shape[0] - 1)),
            data.draw(st.integers(0, gt.shape[1] - 1)),
            True,
        )
        for _ in range(n_clicks)
    ]
    for name, robot in ROBOTS.items():
        m = robot.sampling_map(pred, gt, clicks, ignore)
        assert m.shape == gt.shape and m.dtype == np.float64 and m.min() >= 0, name
        c = robot(pred, gt, clicks, rng(seed), ignore=ignore)
        if robot.random:
            if c is None:
                assert not m.any(), name
            else:
                assert m.sum() == pytest.approx(1.0), name
                assert m[c.row, c.col] > 0, name
        else:
            assert c == argmax_click(m, gt), name


# ---------------------------------------------------------------------------------------------
# exact ties: decided on exact squared distances, whatever the last bit of cv2's float32 DT


def _noisy_distance_transform(real):
    """cv2.distanceTransform whose LAST maximum is one ulp larger than the tied first one.

    This is what cv2's IPP build does from call to call on exactly tied pixels.
    """

    def noisy(src, *args, **kwargs):
        dt = real(src, *args, **kwargs)
        flat = dt.ravel()
        ties = np.flatnonzero(flat == flat.max())
        if ties.size > 1:
            flat[ties[-1]] = np.nextafter(flat[ties[-1]], np.float32(np.inf))
        return dt

    return noisy


def _block(shape, top, left, h, w) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top : top + h, left : left + w] = True
    return m


@pytest.fixture
def noisy_dt(monkeypatch):
    import cv2

    from iislib.core import robots

    monkeypatch.setattr(
        robots.cv2, "distanceTransform", _noisy_distance_transform(cv2.distanceTransform)
    )


def test_exact_ties_go_to_the_first_pixel_in_row_major_order(noisy_dt):
    import cv2

    # A 3x5 FN block: its middle row (6, 7..9) is tied at distance 2 from the border.
    gt = _block((12, 16), 5, 6, 3, 5)
    pred = np.zeros_like(gt)
    dt = cv2.distanceTransform(np.pad(gt, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    assert divmod(int(np.argmax(dt[1:-1, 1:-1])), 16) == (6, 9)  # the noise has teeth
    for name in ("rgto99", "rritm"):
        assert get_robot(name)(pred, gt, [], rng()) == Click(6, 7, True), name


@pytest.fixture
def fn_dt_one_ulp_high(monkeypatch):
    """The first distance transform of each call (FN's, in rritm and RITM's training clicker)
    comes out one ulp high at its maxima: an exact FN-FP tie then looks like FN > FP."""
    import cv2

    from iislib.core import robots

    real, calls = cv2.distanceTransform, []

    def noisy(src, *args, **kwargs):
        dt = real(src, *args, **kwargs)
        calls.append(1)
        if len(calls) % 2 == 1:
            top = dt == dt.max()
            dt[top] = np.nextafter(dt[top], np.float32(np.inf))
        return dt

    monkeypatch.setattr(robots.cv2, "distanceTransform", noisy)
    return calls


def test_rritm_fn_fp_tie_stays_negative_under_noise(fn_dt_one_ulp_high):
    # FN and FP blocks of the same size: exactly tied maxima, a tie goes to FP (negative).
    gt = _block((12, 30), 2, 2, 3, 5)
    pred = _block((12, 30), 2, 20, 3, 5)
    assert get_robot("rritm")(pred, gt, [], rng()) == Click(3, 21, False)
    assert len(fn_dt_one_ulp_high) == 2  # FN then FP: the noise hit FN's transform


def test_ritm_training_click_fn_fp_tie_stays_negative_under_noise(fn_dt_one_ulp_high):
    from iislib.core.samplers import ritm_next_click

    gt = _block((12, 30), 2, 2, 3, 5)
    prob = _block((12, 30), 2, 20, 3, 5).astype(np.float32)
    for seed in range(5):
        click = ritm_next_click(prob, gt, rng(seed))
        # negative, in the FP block's pixels with DT > max / 2 (its middle row)
        assert not click.positive and click.row == 3 and 21 <= click.col <= 23


def test_r04_r05_draws_and_every_map_ignore_the_transform_last_bits(monkeypatch):
    """cv2's float32 transform changes its last bits with buffer alignment; r04 and r05 sample,
    and every robot's map shows, the exact distances, so neither moves. The jitter here is far
    larger than a last bit (2% relative, so that the old float-weighted draws move on some
    seeds) and still rounds away on distances this small (at most 3: d^2 moves by < 0.4)."""
    import cv2

    gt = _block((14, 18), 2, 3, 9, 11)
    pred = _block((14, 18), 5, 9, 8, 8)  # FN and FP pieces of several sizes
    clicks = [Click(4, 4, True)]
    names = ("r04", "r05", "r05h", "rgto99", "rritm")
    clean_clicks = [[get_robot(n)(pred, gt, clicks, rng(s)) for s in range(200)] for n in names]
    clean_maps = [get_robot(n).sampling_map(pred, gt, clicks) for n in names]

    real, jitter = cv2.distanceTransform, np.random.default_rng(1)

    def jittered(src, *args, **kwargs):
        dt = real(src, *args, **kwargs)
        return (dt * (1 + 2e-2 * jitter.uniform(-1, 1, dt.shape))).astype(np.float32)

    monkeypatch.setattr(robots_module.cv2, "distanceTransform", jittered)
    moved = robots_module._sample_proportional  # the old weights: the jittered float32 values
    old = [moved(robots_module.border_dt_box(gt ^ pred)[0], rng(s)) for s in range(200)]
    monkeypatch.setattr(robots_module.cv2, "distanceTransform", real)
    assert old != [moved(robots_module.border_dt_box(gt ^ pred)[0], rng(s)) for s in range(200)]
    monkeypatch.setattr(robots_module.cv2, "distanceTransform", jittered)
    for n, want, want_map in zip(names, clean_clicks, clean_maps, strict=True):
        assert [get_robot(n)(pred, gt, clicks, rng(s)) for s in range(200)] == want, n
        np.testing.assert_array_equal(get_robot(n).sampling_map(pred, gt, clicks), want_map)
