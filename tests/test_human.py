"""A person's clicks: the record and its JSON, the replay robot, the comparison with the robots,
the "you click" session and its widgets (no browser; tests/test_demo_browser.py drives the page)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iislib.core.clicks import Click
from iislib.core.human import (
    ClickRecord,
    RecordError,
    ReplayRobot,
    example_record,
    example_records,
    mask_digest,
    mass_percentile,
    pixel_distance,
)
from iislib.core.loop import run
from iislib.core.model import IISModel
from iislib.core.robots import ROBOT_NAMES, Robot, get_robot
from iislib.drawing.demo_figures import confusion_png, fig_compare, fig_verdict, overlay_png
from iislib.experiment.demo import DemoError
from iislib.experiment.human import HUMAN, compare_with_robots
from iislib.experiment.session import HumanSession
from iislib.models import get_model
from tests.test_demo import _upload, demo_pair, png_bytes

H, W = 96, 128


@pytest.fixture(scope="module")
def pair():
    return demo_pair()


@pytest.fixture(scope="module")
def walker():
    return get_model("random_walker")


@pytest.fixture(scope="module")
def rritm_run(pair, walker):
    """random_walker clicked by rritm: a recorded run to replay."""
    image, gt = pair
    return run(walker, get_robot("rritm"), image, gt, max_clicks=5, keep_probs=True)


class Oracle(IISModel):
    """Predicts the ground truth exactly once it has a click: the mask is perfect at once."""

    name = "oracle"

    def __init__(self, gt: np.ndarray) -> None:
        self.gt = gt

    def _predict(self, image, clicks, prev):
        return self.gt.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# the record


def test_mask_digest_is_sha256_of_shape_and_packed_bits():
    m = np.array([[1, 0, 0, 0, 0, 0, 0, 1]], bool)
    expected = hashlib.sha256(b"1x8:" + bytes([0b10000001])).hexdigest()
    assert mask_digest(m) == "sha256:" + expected
    assert mask_digest(m.astype(np.uint8)) == mask_digest(m)  # 0/1 labels are the same mask
    # same bits, other shape: another digest
    assert mask_digest(np.zeros((2, 4), bool)) != mask_digest(np.zeros((4, 2), bool))
    other = m.copy()
    other[0, 3] = True
    assert mask_digest(other) != mask_digest(m)
    with pytest.raises(RecordError, match="bool or 0/1"):
        mask_digest(np.full((2, 2), 7))
    with pytest.raises(RecordError, match="2-D"):
        mask_digest(np.zeros(4, bool))


def _record(gt: np.ndarray, clicks: list[Click]) -> ClickRecord:
    rec = ClickRecord.new("synthetic/pair", gt, "random_walker", note="made in a test")
    for i, c in enumerate(clicks):
        rec.add(c, time=f"2026-12-01T10:00:0{i % 10}.000+00:00")
    return rec


def test_json_round_trip_on_file(tmp_path, pair):
    _, gt = pair
    rec = _record(gt, [Click(10, 20, True), Click(50, 60, False)])
    path = rec.save(tmp_path / "clicks.json")
    assert [p.name for p in tmp_path.iterdir()] == ["clicks.json"]  # no temporary file left
    back = ClickRecord.load(path)
    assert back == rec
    d = json.loads(path.read_text())
    assert d["clicks"][1] == {"row": 50, "col": 60, "positive": False,
                              "time": "2026-12-01T10:00:01.000+00:00"}  # fmt: skip
    assert d["shape"] == [H, W] and d["mask_digest"] == mask_digest(gt)
    assert d["example"] is False and d["model"] == "random_walker"


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 50), st.integers(1, 50)),
    data=st.data(),
)
def test_json_round_trip_property(shape, data):
    h, w = shape
    cells = st.tuples(st.integers(0, h - 1), st.integers(0, w - 1), st.booleans())
    clicks = [Click(*c) for c in data.draw(st.lists(cells, max_size=12))]
    gt = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    gt = np.array(gt, bool).reshape(h, w)
    rec = ClickRecord.new("x/y", gt, "m", example=data.draw(st.booleans()),
                          note=data.draw(st.text(max_size=20)))  # fmt: skip
    for c in clicks:
        rec.add(c)
    assert ClickRecord.from_json(rec.to_json()) == rec
    rec.check_mask(gt)  # the mask it was made on passes


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: "not json {", "not valid JSON"),
        (lambda d: [1, 2], "expected a JSON object"),
        (lambda d: d | {"format": "other"}, "not an iislib click record"),
        (lambda d: d | {"version": 99}, "version 99 is not supported"),
        (lambda d: {k: v for k, v in d.items() if k != "mask_digest"}, "missing field.*mask_digest"),
        (lambda d: d | {"shape": [3]}, r"shape must be \[H, W\]"),
        (lambda d: d | {"mask_digest": "md5:abc"}, "sha256"),
        (lambda d: d | {"clicks": [{"row": 1, "col": 2}]}, "click 1 must be an object"),
        (lambda d: d | {"clicks": [{"row": 1, "col": 2, "positive": "yes", "time": "x"}]},
         "positive must be true or false"),
        (lambda d: d | {"clicks": [{"row": 1.5, "col": 2, "positive": True,
                                    "time": "2026-12-01T10:00:00+00:00"}]}, "row must be a whole"),
        (lambda d: d | {"clicks": [{"row": 1, "col": 2, "positive": True, "time": "noon"}]},
         "not ISO 8601"),
        (lambda d: d | {"clicks": [{"row": H, "col": 2, "positive": True,
                                    "time": "2026-12-01T10:00:00+00:00"}]},
         f"click 1 at \\(row {H}, col 2\\) is outside the {W}x{H} image"),
    ],
)  # fmt: skip
def test_bad_record_files_are_refused_with_a_reason(pair, edit, words):
    _, gt = pair
    d = _record(gt, [Click(1, 2, True)]).to_dict()
    edited = edit(d)
    text = edited if isinstance(edited, str) else json.dumps(edited)
    with pytest.raises(RecordError, match=words):
        ClickRecord.from_json(text, "clicks.json")


def test_missing_file_is_a_record_error(tmp_path):
    with pytest.raises(RecordError, match="cannot read click record"):
        ClickRecord.load(tmp_path / "nothing.json")


def test_add_undo_reset_head(pair):
    _, gt = pair
    rec = _record(gt, [Click(1, 1, True), Click(2, 2, False), Click(3, 3, True)])
    assert rec.head(2).clicks == [Click(1, 1, True), Click(2, 2, False)]
    assert len(rec.head(2).times) == 2 and len(rec) == 3  # a copy
    with pytest.raises(RecordError, match="outside"):
        rec.add(Click(-1, 0, True))
    assert len(rec) == 3  # refused clicks leave nothing behind
    assert rec.undo() == Click(3, 3, True) and len(rec.times) == 2
    rec.reset()
    assert rec.clicks == [] and rec.times == [] and rec.undo() is None


# ----------------------------------------------------------------------------------------------
# the replay robot


def test_replay_reproduces_a_recorded_run_exactly(pair, walker, rritm_run):
    image, gt = pair
    rec = _record(gt, rritm_run.clicks)
    robot = get_robot("replay", clicks=rec)
    assert isinstance(robot, ReplayRobot) and isinstance(robot, Robot)
    assert robot.name == "replay" and robot.random is False and "5 recorded clicks" in robot.label
    again = run(walker, robot, image, gt, max_clicks=5, keep_probs=True)
    assert again.clicks == rritm_run.clicks
    for m, v in rritm_run.scores.items():
        np.testing.assert_array_equal(again.scores[m], v)
    np.testing.assert_array_equal(again.probs, rritm_run.probs)
    # a plain click list works too, and more steps than clicks end the run (END) after them
    longer = run(walker, ReplayRobot(rritm_run.clicks), image, gt, max_clicks=7)
    assert longer.ended_at == 5 and longer.clicks == rritm_run.clicks


def test_replay_refuses_another_mask_with_a_clear_message(pair, walker):
    image, gt = pair
    rec = _record(gt, [Click(48, 42, True)])
    shifted = np.roll(gt, 1, axis=1)
    with pytest.raises(RecordError, match="another mask of the same size.*digest"):
        run(walker, ReplayRobot(rec), image, shifted, max_clicks=1)
    small = gt[:-1]
    with pytest.raises(RecordError, match=f"made on a {W}x{H} mask, but the ground truth is "
                                          f"{W}x{H - 1}"):  # fmt: skip
        ReplayRobot(rec)(np.zeros_like(small), small, [], None)


def test_replay_refuses_clicks_outside_and_foreign_histories(pair):
    _, gt = pair
    empty = np.zeros_like(gt)
    with pytest.raises(RecordError, match="outside the 20x10 image"):
        ReplayRobot([Click(50, 5, True)])(np.zeros((10, 20), bool), np.eye(10, 20, dtype=bool), [])
    robot = ReplayRobot([Click(1, 1, True), Click(2, 2, False)])
    assert robot(empty, gt, []) == Click(1, 1, True)
    assert robot(empty, gt, [Click(1, 1, True)]) == Click(2, 2, False)
    assert robot(empty, gt, [Click(1, 1, True), Click(2, 2, False)]) is None  # END
    with pytest.raises(RecordError, match="not the first recorded ones"):
        robot(empty, gt, [Click(9, 9, True)])
    with pytest.raises(RecordError, match="sequence of \\(row, col, positive\\)"):
        ReplayRobot([5, 6])


def test_replay_ends_when_no_error_is_left(pair):
    _, gt = pair
    robot = ReplayRobot([Click(1, 1, True), Click(2, 2, True)])
    assert robot(gt, gt, []) is None
    ignore = np.zeros_like(gt)
    pred = gt.copy()
    pred[0, 0] = not pred[0, 0]
    assert robot(pred, gt, []) == Click(1, 1, True)
    ignore[0, 0] = True  # the only wrong pixel is ignored: nothing left to correct
    assert robot(pred, gt, [], ignore=ignore) is None
    m = robot.sampling_map(pred, gt, [])
    assert m.sum() == 1.0 and m[1, 1] == 1.0 and m.dtype == np.float64


# ----------------------------------------------------------------------------------------------
# percentile and distance


def test_mass_percentile_hand_computed():
    p = np.array([[0.1, 0.2], [0.3, 0.4]])
    assert mass_percentile(p, 1, 0) == pytest.approx(100 * (0.1 + 0.2 + 0.3 / 2))  # 45
    assert mass_percentile(p, 1, 1) == pytest.approx(100 * (0.6 + 0.2))  # 80
    assert mass_percentile(p, 0, 0) == pytest.approx(5.0)
    tie = np.array([[0.25, 0.25], [0.5, 0.0]])
    assert mass_percentile(tie, 0, 0) == pytest.approx(25.0)  # half of the tied 0.5
    assert mass_percentile(tie, 1, 1) == 0.0  # never sampled there
    assert math.isnan(mass_percentile(np.zeros((2, 2)), 0, 0))  # END: no map
    assert pixel_distance(Click(0, 0, True), Click(3, 4, False)) == 5.0
    assert math.isnan(pixel_distance(Click(0, 0, True), None))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=6, max_size=6), st.integers(0, 5))
def test_mass_percentile_property(values, index):
    p = np.array(values).reshape(2, 3)
    r, c = divmod(index, 3)
    q = mass_percentile(p, r, c)
    if p.sum() == 0:
        assert math.isnan(q)
        return
    assert 0.0 <= q <= 100.0
    # a more likely pixel never has a lower percentile
    for rr in range(2):
        for cc in range(3):
            if p[rr, cc] > p[r, c]:
                assert mass_percentile(p, rr, cc) >= q
    # uniform over a support: 50 inside, 0 outside
    support = p > 0
    u = support / support.sum()
    assert mass_percentile(u, r, c) == pytest.approx(50.0 if support[r, c] else 0.0)


# ----------------------------------------------------------------------------------------------
# the comparison


def test_compare_with_robots_against_separate_runs(pair, walker, rritm_run):
    image, gt = pair
    rec = _record(gt, rritm_run.clicks[:4])
    cmp = compare_with_robots(walker, image, gt, rec, seed=3, key="pair")
    assert cmp.k == 4 and list(cmp.iou.columns) == [HUMAN, *ROBOT_NAMES]
    assert list(cmp.iou.index) == [1, 2, 3, 4]
    # the person's curve is the replayed run; rritm's own run is the same clicks here
    np.testing.assert_array_equal(cmp.iou[HUMAN], rritm_run.iou[:4])
    np.testing.assert_array_equal(cmp.iou["rritm"], rritm_run.iou[:4])
    # each robot's curve is its own seeded run, as loop.run gives it
    r02 = run(walker, get_robot("r02"), image, gt, max_clicks=4, seed=3, key="pair")
    np.testing.assert_array_equal(cmp.iou["r02"], r02.iou)
    assert cmp.robots["r02"].clicks == r02.clicks
    pc = cmp.per_click
    assert len(pc) == 4 * len(ROBOT_NAMES)
    rritm_rows = pc[pc["robot"] == "rritm"]
    assert (rritm_rows["distance"] == 0).all()  # the person clicked where rritm clicks
    assert rritm_rows["percentile"].isna().all()
    rand = pc[pc["random"]]
    assert set(rand["robot"]) == {"r01", "r02", "r03", "r04", "r05"}
    assert rand["distance"].isna().all() and rand["percentile"].between(0, 100).all()
    # r01 samples uniformly over the image: every pixel is at its 50th percentile
    assert (pc.loc[pc["robot"] == "r01", "percentile"] == 50).all()
    s = cmp.summary()
    assert s.loc["rritm", "mean_distance"] == 0 and s.loc["rritm", "iou_gap"] == 0
    assert s.loc["rgto99", "mean_distance"] == pytest.approx(
        pc.loc[pc["robot"] == "rgto99", "distance"].mean()
    )
    fig = fig_compare(cmp, title="pair")
    assert len([a for a in fig.axes if a.get_visible()]) == 3
    assert len(fig_verdict({"random_walker": cmp}).axes) == 1


def test_compare_needs_clicks_and_the_right_mask(pair, walker):
    image, gt = pair
    with pytest.raises(RecordError, match="no clicks to compare"):
        compare_with_robots(walker, image, gt, [])
    rec = _record(gt, [Click(48, 42, True)])
    with pytest.raises(RecordError, match="another mask"):
        compare_with_robots(walker, image, ~gt, rec)


# ----------------------------------------------------------------------------------------------
# the "you click" session


def test_session_ious_are_the_replayed_run(pair):
    image, gt = pair
    s = HumanSession(image, gt, "random_walker", name="pair")
    clicks = [Click(48, 42, True), Click(27, 104, True), Click(5, 5, False)]
    for c in clicks:
        s.click(*c)
    assert s.clicks == clicks and len(s.iou) == 3 and len(s.record.times) == 3
    cmp = s.compare(seed=0)
    np.testing.assert_array_equal(cmp.iou[HUMAN], s.iou)
    # undo rebuilds the walker's state: the same click again gives the same IoU
    before = list(s.iou)
    assert s.undo() == clicks[-1] and len(s.iou) == 2
    s.click(*clicks[-1])
    assert s.iou == before
    s.reset()
    assert s.clicks == [] and s.iou == [] and not s.pred.any()
    with pytest.raises(DemoError, match="no clicks yet"):
        s.compare()


def test_session_messages_outside_perfect_and_other_masks(pair):
    image, gt = pair
    s = HumanSession(image, gt, Oracle(gt), name="pair")
    with pytest.raises(DemoError, match=f"outside the {W}x{H} image"):
        s.click(H, 3, True)
    with pytest.raises(DemoError, match="whole pixel coordinates"):
        s.click(1.5, 3, True)
    assert s.clicks == []
    assert s.click(48, 42, True) == 1.0
    with pytest.raises(DemoError, match="already perfect.*nothing is left to correct"):
        s.click(1, 1, False)
    assert len(s.clicks) == 1  # the refused click was not recorded
    other = _record(gt[:, :-1], [Click(1, 1, True)])
    with pytest.raises(RecordError, match=f"made on a {W - 1}x{H} mask, but the mask of 'pair' "
                                          f"is {W}x{H}"):  # fmt: skip
        s.load(other)
    with pytest.raises(RecordError, match="another mask"):
        s.load(_record(~gt, [Click(1, 1, True)]))
    assert len(s.clicks) == 1  # a refused record changes nothing
    s.load(_record(gt, [Click(2, 2, False), Click(48, 42, True)]))
    assert s.clicks == [Click(2, 2, False), Click(48, 42, True)] and len(s.iou) == 2


def test_overlay_and_confusion_pictures(pair):
    image, gt = pair
    s = HumanSession(image, gt, "random_walker")
    s.click(48, 42, True)
    views = (overlay_png(s.image, s.pred, s.record.clicks),
             confusion_png(s.pred, s.gt, s.ignore, s.record.clicks))  # fmt: skip
    for png in views:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from io import BytesIO

    from PIL import Image

    over = np.asarray(Image.open(BytesIO(views[0])))
    assert over.shape == (H, W, 3)
    assert tuple(over[48, 42]) == (0, 192, 0)  # the positive click's dot
    assert "IoU" in s.status() and "1 click (1+ 0-)" in s.status()


# ----------------------------------------------------------------------------------------------
# the app, without a browser


def _msg(row, col, button=0, shift=False, size=(H, W)):
    return {"event": "click", "row": row, "col": col, "button": button, "shift": shift,
            "height": size[0], "width": size[1]}  # fmt: skip


def test_app_you_click_mode(pair):
    from iislib.apps.demo_app import DemoApp

    image, gt = pair
    app = DemoApp(mode="human")
    assert app.mode.value == "human" and app.human_box.layout.display == "none"
    assert not app.start_clicking() and "upload an image and a mask" in app.error.value
    _upload(app.image_upload, "img.png", png_bytes(image))
    _upload(app.mask_upload, "mask.png", png_bytes((gt * 255).astype(np.uint8)))
    assert app.start_clicking(), app.error.value
    assert app.human_box.layout.display is None and app.click_image.src.startswith("data:image/png")
    assert app.click_image.width == 480  # the longer side scaled to CLICK_VIEW_SIDE
    app.click_image._on_msg(app.click_image, _msg(48, 42), [])
    app.click_image._on_msg(app.click_image, _msg(5, 5, button=2), [])
    app.click_image._on_msg(app.click_image, _msg(6, 6, shift=True), [])
    assert app.error.value == ""
    assert [c.positive for c in app.record.clicks] == [True, False, False]
    assert "3 clicks (1+ 2-)" in app.human_status.value
    assert "clicks_img.json" in app.record_link.value and not app.undo_button.disabled
    app.click_image._on_msg(app.click_image, _msg(H + 5, 3), [])
    assert "outside the 128x96 image" in app.error.value and len(app.record) == 3
    app.click_image._on_msg(app.click_image, _msg(5, 5, size=(10, 10)), [])
    assert "not the current image" in app.error.value and len(app.record) == 3
    assert app.compare_with_robots(), app.error.value
    assert app.compare_curves.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rritm" in app.compare_table.value and "compared with 7 robots" in app.status.value
    saved = app.record.to_json().encode()
    app.reset()
    assert len(app.record) == 0 and app.undo_button.disabled
    _upload(app.record_upload, "clicks.json", saved)
    assert app.error.value == "" and len(app.record) == 3
    bad = json.loads(saved)
    bad["shape"] = [200, 300]
    _upload(app.record_upload, "other.json", json.dumps(bad).encode())
    assert "made on a 300x200 mask" in app.error.value and len(app.record) == 3
    _upload(app.record_upload, "junk.json", b"{not json")
    assert "not valid JSON" in app.error.value
    # a new mask ends the session: its clicks belong to the old one
    _upload(app.mask_upload, "mask2.png", png_bytes((np.roll(gt, 3, 0) * 255).astype(np.uint8)))
    assert app.session is None and app.human_box.layout.display == "none"


def test_shipped_example_record():
    files = example_records()
    assert files, "an example click record is shipped"
    rec = example_record()
    assert rec.example is True and "not data from a user study" in rec.note
    assert len(rec) >= 4 and rec.model == "ritm-compact"
    with pytest.raises(RecordError, match="no shipped click record 'nope'"):
        example_record("nope")


def test_shipped_example_was_made_on_its_benchmark_mask(data_root):
    from iislib.experiment.data import load_dataset

    rec = example_record()
    ds, _, name = rec.image.partition("/")
    sample = load_dataset(ds, root=data_root)[name]
    rec.check_mask(sample.gt)
    assert all(sample.gt[c.row, c.col] for c in rec.clicks)  # every positive click is on it


# ----------------------------------------------------------------------------------------------
# recorded clicks in the sweep


def test_recorded_clicks_enter_evaluate_like_any_robot(pair, walker, rritm_run, tmp_path):
    """A replay robot in ``evaluate``: the rows equal the replayed run, a rerun reads them from
    the cache, and another record of the same name gets its own cache file."""
    from PIL import Image

    from iislib.experiment.data import load_dataset
    from iislib.experiment.sweep import evaluate

    image, gt = pair
    folder = tmp_path / "demo"
    for sub, arr in (("images", image), ("masks", gt.astype(np.uint8) * 255)):
        (folder / sub).mkdir(parents=True)
        Image.fromarray(arr).save(folder / sub / "pair.png")
        Image.fromarray(arr).save(folder / sub / "twin.png")
    Image.fromarray(np.flipud(gt).astype(np.uint8) * 255).save(folder / "masks" / "twin.png")
    data = load_dataset(folder)
    rec = _record(gt, rritm_run.clicks)
    assert len(rec) == 5
    one = data.select(["pair"])
    kw = dict(max_clicks=5, settings="direct", cache_dir=tmp_path / "cache", progress=False)
    table = evaluate(["random_walker"], [get_robot("replay", clicks=rec), "rritm"], one, **kw)
    replay = table[table.robot == "replay"]
    np.testing.assert_array_equal(replay["iou"], rritm_run.scores["iou"])
    np.testing.assert_array_equal(replay["iou"], table[table.robot == "rritm"]["iou"])
    files = sorted((tmp_path / "cache").rglob("*.csv"))
    assert len(files) == 2
    again = evaluate(["random_walker"], [get_robot("replay", clicks=rec), "rritm"], one, **kw)
    assert again.equals(table) and sorted((tmp_path / "cache").rglob("*.csv")) == files
    # the first two clicks only: the same robot name, other clicks, so another cache entry
    t2 = evaluate(["random_walker"], [get_robot("replay", clicks=rec.head(2))], one, **kw)
    assert len(list((tmp_path / "cache").rglob("*.csv"))) == 3
    assert t2["iou"].tolist()[:2] == replay["iou"].tolist()[:2]
    # on an image it was not recorded on, the sweep stops with the record's message
    with pytest.raises(ValueError, match="another mask"):
        evaluate(["random_walker"], [get_robot("replay", clicks=rec)], data.select(["twin"]), **kw)


def test_dataset_select_by_name_and_record_id(tiny_dataset):
    names = tiny_dataset.names
    picked = tiny_dataset.select([names[2], f"{tiny_dataset.name}/{names[0]}"])
    assert picked.names == [names[2], names[0]]
    with pytest.raises(ValueError, match="no image named nope"):
        tiny_dataset.select(["nope"])
