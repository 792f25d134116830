"""Figure functions: what robots see, panel counts, skips with one model, valid files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from iislib.core.loop import make_rng
from iislib.core.metrics import METRIC_NAMES, SCORE_NAMES
from iislib.core.model import IISModel
from iislib.core.robots import ROBOT_NAMES, border_dt, get_robot, largest_component
from iislib.drawing import figures, plots
from iislib.experiment import findings, stats
from iislib.experiment.sweep import COLUMNS


def random_table(models=("A", "B"), robots=ROBOT_NAMES, images=3, seeds=(0,), clicks=4, seed=0):
    """A sweep-shaped table with increasing random curves."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in models:
        for r in robots:
            for i in range(images):
                for s in seeds:
                    curve = np.sort(rng.random(clicks))
                    for k in range(clicks):
                        rows.append({"model": m, "robot": r, "image": f"img{i}", "seed": s,
                                     "click": k + 1, **{x: curve[k] for x in SCORE_NAMES}})  # fmt: skip
    df = pd.DataFrame(rows)
    df["dataset"], df["settings"] = "berkeley", "ipol"
    df["row"], df["col"], df["positive"] = 0, 0, 1
    df["model_seconds"], df["robot_seconds"] = 0.01, 0.001
    return df[list(COLUMNS)]


def blobs(seed: int, h: int = 30, w: int = 36) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth with two blobs and a prediction that misses/overshoots parts of it."""
    rng = np.random.default_rng(seed)
    rr, cc = np.indices((h, w))
    gt = ((rr - 10) ** 2 + (cc - 10) ** 2 < 40) | ((rr - 20) ** 2 + (cc - 26) ** 2 < 30)
    pred = gt.copy()
    pred[rng.integers(0, h, 3), :] ^= True
    pred[:, rng.integers(0, w, 2)] = False
    return pred, gt


def visible_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


# ----------------------------------------------------------------------------------------------
# what robots see


@pytest.mark.parametrize("seed", range(4))
def test_random_robot_maps_are_the_distributions_the_robots_draw_from(seed):
    pred, gt = blobs(seed)
    false = pred ^ gt

    def p(name):
        return get_robot(name).sampling_map(pred, gt, [])

    for robot in figures.PAPER_RANDOM_ROBOTS:
        assert p(robot).shape == gt.shape and p(robot).min() >= 0
        assert p(robot).sum() == pytest.approx(1.0)
    assert np.allclose(p("r01"), 1 / gt.size)
    assert (p("r02")[~false] == 0).all() and np.allclose(p("r02")[false], 1 / false.sum())
    assert ((p("r03") > 0) == largest_component(false)).all()
    dt = border_dt(false)
    np.testing.assert_allclose(p("r04"), dt / dt.sum())
    np.testing.assert_allclose(p("r05"), p("r04"))


def test_robot_groups_follow_the_robots():
    assert figures.PAPER_RANDOM_ROBOTS == ("r01", "r02", "r03", "r04", "r05")
    assert figures.DETERMINISTIC_ROBOTS == ("rgto99", "rritm")


def test_robot_map_panels_show_each_robots_map_label_and_click(paper_episode):
    episode, key = paper_episode, ("ritm-compact", "rgto99")
    pred, clicks = episode.pred(key, 2), episode.clicks(key, 2)
    fig = figures.fig_robot_maps(episode, 2, key, robots=["r03", get_robot("rritm")], samples=3)
    got, axes = titles(fig), visible_axes(fig)
    assert got[1] == f"r03\n{get_robot('r03').label}"
    click = get_robot("rritm")(pred, episode.gt, clicks, make_rng(0))
    assert got[2].startswith("rritm: maximum") and f"(row {click.row}, col {click.col})" in got[2]
    for ax, name in zip(axes[1:], ("r03", "rritm"), strict=True):
        shown = ax.get_images()[0].get_array()
        np.testing.assert_array_equal(shown, get_robot(name).sampling_map(pred, episode.gt, clicks))


def test_own_robots_and_pairs():
    assert figures.own_robots("ritm-compact") == ["rritm"]
    assert figures.own_robots("gto99") == ["rgto99"]
    assert figures.own_robots("random_walker") == ["rgto99", "rritm"]
    assert figures.own_pairs(["ritm", "x"]) == [("ritm", "rritm"), ("x", "rgto99"), ("x", "rritm")]
    assert figures.model_pairs(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert figures.model_pairs(["a"]) == []


# ----------------------------------------------------------------------------------------------
# figures from a table


def test_fig4_lines_are_own_robots_only():
    t = random_table(models=("ritm-compact", "random_walker"))
    fig = figures.fig4(t)
    axes = visible_axes(fig)
    assert len(axes) == len(METRIC_NAMES)
    labels = {line.get_label() for line in axes[0].get_lines()}
    assert labels == {"ritm-compact / rritm", "random_walker / rgto99", "random_walker / rritm"}
    assert "dataset: berkeley" in fig._suptitle.get_text()


def test_fig7_every_model_robot():
    t = random_table()
    fig = figures.fig7(t)
    axes = visible_axes(fig)
    # one row per metric (Boundary IoU last), one column per model, every robot in each panel
    assert len(axes) == 7 * 2 and all(len(ax.get_lines()) == len(ROBOT_NAMES) for ax in axes)
    assert [ax.get_title() for ax in axes[:2]] == ["A", "B"]
    assert axes[-2].get_ylabel() == "mean Boundary IoU"
    # a table written before the boundary_iou column still gives the paper's six rows
    assert len(visible_axes(figures.fig7(t.drop(columns="boundary_iou")))) == 6 * 2
    # each panel states its model's spread over the robots for its metric (row 2: precision)
    want = stats.robot_spread(t, METRIC_NAMES[1]).set_index("model")["spread"]
    for ax, model in zip(axes[2:4], ("A", "B"), strict=True):
        assert f"spread {want[model]:.2f}" in [x.get_text() for x in ax.texts]


def test_fig6a_and_fig6b_robot_subsets():
    t = random_table(models=("A",))
    assert {line.get_label() for line in visible_axes(figures.fig6a(t))[0].get_lines()} == {
        "A / rgto99", "A / rritm"}  # fmt: skip
    lines = visible_axes(figures.fig6b(t, n_boot=20))[0].get_lines()
    assert [line.get_label() for line in lines] == [f"A / r0{i}" for i in range(1, 6)]
    with pytest.raises(ValueError, match="random robots"):
        figures.fig6b(t[t.robot == "rritm"])


def test_pairwise_figures_skip_with_one_model(capsys):
    t = random_table(models=("A",))
    assert figures.fig_win_rates(t, 2) is None
    assert figures.fig_sign_flips(t, 2) is None
    assert figures.fig_model_rank_tau(t, 2) is None
    out = capsys.readouterr().out
    assert out.count("skipped") == 3 and "need two models" in out
    assert isinstance(figures.fig_image_rank_tau(t, 2), Figure)


def test_pairwise_figures_with_two_models():
    t = random_table(models=("A", "B"))
    assert len(visible_axes(figures.fig_win_rates(t, 2))) == 1
    fig = figures.fig_sign_flips(t, 2)
    ax = visible_axes(fig)[0]
    m = stats.sign_flips(t, "A", "B", "iou", 2)
    np.testing.assert_allclose(ax.get_images()[0].get_array(), m.to_numpy())
    assert len(visible_axes(figures.fig_model_rank_tau(t, 2))) == 2


def test_ci_seed_variance_distribution_quirks():
    t = random_table(models=("A", "B"), seeds=(0, 1))
    assert isinstance(figures.fig_ci(t, 2, n_boot=20), Figure)
    fig = figures.fig_seed_variance(t)
    assert len(fig.axes) == 5  # r01..r05
    assert len(fig.axes[0].get_lines()) == 2 * 2  # models x seeds
    assert isinstance(figures.fig_iou_distribution(t, 3), Figure)
    assert isinstance(figures.fig_metric_quirks(t), Figure)


def test_family_procedure_needs_the_four_models(capsys):
    assert figures.fig_family_procedure(None) is None
    assert "needs the models" in capsys.readouterr().out
    t = random_table(models=tuple(findings.FAMILY_PROCEDURE), robots=("rritm", "rgto99"))
    fig = figures.fig_family_procedure(t)
    assert len(fig.axes[0].get_lines()) == 4


def test_table_noc_has_published_rows():
    t = random_table(models=("A",), clicks=4)
    noc = figures.table_noc(t)
    pub = noc[noc.source == figures.PUBLISHED_LABEL]
    assert {3.22, 2.93} <= set(pub["NoC@90"].round(2))
    assert pub["model"].str.contains("sbd_h18_itermask").any()
    ours = noc[noc.source != figures.PUBLISHED_LABEL]
    assert len(ours) == len(ROBOT_NAMES) and ours["NoC@90"].between(1, 4).all()


# ----------------------------------------------------------------------------------------------
# figures from an episode, and files


@pytest.fixture(scope="module")
def episode():
    from iislib.core.loop import run_many
    from iislib.models import get_model

    from .conftest import synthetic_pair

    image, gt = synthetic_pair(32, 40)
    model = get_model("random_walker")
    keys = [("random_walker", "rritm"), ("random_walker", "rgto99")]
    trajs = run_many(model, [(get_robot(r), make_rng(0, "toy", r)) for _, r in keys], image, gt,
                     max_clicks=3, keep_probs=True)  # fmt: skip
    return figures.Episode("toy", "synthetic", "direct", image, gt, None, 0.5,
                           dict(zip(keys, trajs, strict=True)))  # fmt: skip


def test_episode_accessors(episode):
    key = ("random_walker", "rritm")
    assert not episode.pred(key, 0).any()
    assert episode.pred(key, 1).dtype == bool and episode.pred(key, 1).any()
    assert (
        episode.clicks(key, 1) == episode.trajs[key].clicks[:1] and len(episode.clicks(key, 1)) == 1
    )
    np.testing.assert_array_equal(episode.prob(key, 3), episode.trajs[key].probs[2])
    assert "image toy" in episode.caption()


def test_episode_figures(episode, tmp_path):
    fig = figures.fig_qualitative(episode, 2)
    assert len(visible_axes(fig)) == 2 * 3  # rows: (model, robot); columns: input, overlay, map
    assert len(visible_axes(figures.fig_robot_maps(episode, 1, samples=5))) == 1 + len(ROBOT_NAMES)
    assert len(visible_axes(figures.fig_robot_divergence(episode, 3))) == 3
    written = plots.save_figure(fig, "q", tmp_path)
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written[1].read_bytes()[:5] == b"%PDF-"


def test_robot_cost_figure():
    cost = stats.robot_cost(pd.DataFrame({"robot": ["r01", "rritm"], "seconds": [1e-4, 2e-3]}),
                            "seconds")  # fmt: skip
    fig = figures.fig_robot_cost(cost, "caption text")
    assert fig._suptitle.get_text() == "caption text"


def test_caption_counts_images_and_seeds() -> None:
    caption = plots.caption
    row = {"dataset": "berkeley", "settings": "ipol", "model": "m", "robot": "r01"}
    one = pd.DataFrame([{**row, "image": "a", "seed": 0}])
    assert caption(one, "extra") == (
        "dataset: berkeley; 1 image; settings: ipol; models: m; robots: r01. extra"
    )
    many = pd.DataFrame([{**row, "image": i, "seed": s} for i in "abc" for s in (0, 1)])
    assert "; 3 images;" in caption(many) and caption(many).endswith("; 2 seeds")


# ----------------------------------------------------------------------------------------------
# the paper's qualitative figures: their robot, click count and image


class DiskModel(IISModel):
    """A stand-in model for the qualitative figures: a disk of ``radius`` px around each
    positive click, cleared around each negative click (different radii, different IoU)."""

    def __init__(self, radius: float):
        self.radius = radius

    def _predict(self, image, clicks, prev):
        rr, cc = np.indices(image.shape[:2])
        out = np.zeros(image.shape[:2], np.float32)
        for c in clicks:
            out[(rr - c.row) ** 2 + (cc - c.col) ** 2 <= self.radius**2] = float(c.positive)
        return out


@pytest.fixture(scope="module")
def paper_episode():
    """ritm-compact (small disks) and gto99-compact (large disks) stand-ins under rgto99 and r01,
    8 clicks, on a synthetic ellipse."""
    from iislib.core.loop import run_many

    from .conftest import synthetic_pair

    image, gt = synthetic_pair(40, 50)
    ep = figures.Episode("toy", "synthetic", "direct", image, gt, None, 0.5)
    for model, radius in (("ritm-compact", 3), ("gto99-compact", 9)):
        robots = ("rgto99", "r01")
        trajs = run_many(DiskModel(radius), [(get_robot(r), make_rng(0, "toy", r)) for r in robots],
                         image, gt, max_clicks=8, keep_probs=True)  # fmt: skip
        ep.trajs.update({(model, r): t for r, t in zip(robots, trajs, strict=True)})
    return ep


def titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in visible_axes(fig)]


def test_qualitative_figures_use_their_robot_and_clicks(paper_episode):
    ep = paper_episode
    fig = figures.fig5(ep)  # 4 clicks of rgto99, both models
    assert len(visible_axes(fig)) == 2 * 3
    assert titles(fig)[0].startswith("ritm-compact / rgto99")
    assert titles(fig)[3].startswith("gto99-compact / rgto99")
    iou = ep.trajs[("ritm-compact", "rgto99")].iou[3]
    assert "after 4 clicks" in titles(fig)[1] and f"IoU {iou:.2f}" in titles(fig)[1]
    cap = fig._suptitle.get_text()
    assert "4 clicks of rgto99" in cap and "robots: rgto99." in cap.replace("\n", " ")
    fig9 = figures.fig9(ep)
    assert all("/ r01" in t for t in titles(fig9)[::3]) and "after 2 clicks" in titles(fig9)[1]
    # Figure 8 asks for 20 clicks; the episode has 8, and the caption says so
    fig8 = figures.fig8(ep)
    n = len(ep.clicks(("ritm-compact", "r01"), 8))
    assert f"after {n} clicks" in titles(fig8)[1]
    assert "this run has only 8" in fig8._suptitle.get_text().replace("\n", " ")
    assert "after 3 clicks" in titles(figures.fig8(ep, 3))[1]


def test_fig8_clicks_are_the_same_for_both_models(paper_episode):
    ep = paper_episode
    a = ep.clicks(("ritm-compact", "r01"), 8)
    b = ep.clicks(("gto99-compact", "r01"), 8)
    n = min(len(a), len(b))
    assert n >= 2 and a[:n] == b[:n]  # r01 ignores the prediction (until a model is perfect)
    cap = figures.fig8(ep, 2)._suptitle.get_text().replace("\n", " ")
    assert "the 2 clicks are the same in every row" in cap


def test_qualitative_figures_need_their_robot(paper_episode):
    ep = figures.Episode("toy", "synthetic", "direct", paper_episode.image, paper_episode.gt,
                         None, 0.5, {k: v for k, v in paper_episode.trajs.items()
                                     if k[1] == "rgto99"})  # fmt: skip
    with pytest.raises(ValueError, match="fig8 shows r01"):
        figures.fig8(ep)
    assert figures.qualitative_pairs(["a", "b"], "fig9") == [("a", "r01"), ("b", "r01")]
    with pytest.raises(ValueError, match="unknown qualitative figure"):
        figures.qualitative_pairs(["a"], "fig6")


def test_contrast_pair_prefers_the_paper_models():
    assert figures.contrast_pair(["random_walker", "gto99-compact", "ritm-compact"]) == (
        "ritm-compact", "gto99-compact")  # fmt: skip
    assert figures.contrast_pair(["random_walker", "gto99-compact"]) == (
        "random_walker", "gto99-compact")  # fmt: skip
    assert figures.contrast_pair(["random_walker"]) is None


def test_qualitative_image_is_the_largest_difference_under_the_figure_setting():
    t = random_table(models=("ritm-compact", "gto99-compact", "random_walker"),
                     robots=("r01", "rritm"), images=6, clicks=20, seed=3)  # fmt: skip
    for fig, k in (("fig8", 20), ("fig9", 2)):
        s = stats.per_image(t, "iou", k)
        d = (s.loc[("ritm-compact", "r01")] - s.loc[("gto99-compact", "r01")]).abs()
        assert figures.qualitative_image(t, fig) == d.idxmax()  # random_walker is not compared
    # Figure 9 keeps to images with a positive click among the first two when there is one
    d2 = (stats.per_image(t, "iou", 2).loc[("ritm-compact", "r01")]
          - stats.per_image(t, "iou", 2).loc[("gto99-compact", "r01")]).abs()  # fmt: skip
    t2 = t.assign(positive=np.where(t["image"] == d2.idxmax(), 0, 1))
    assert figures.qualitative_image(t2, "fig9") == d2.drop(d2.idxmax()).idxmax()
    with pytest.raises(ValueError, match="needs a sweep with r01"):
        figures.qualitative_image(t[t.robot == "rritm"], "fig8")


def test_qualitative_image_with_one_model(capsys):
    t = random_table(models=("random_walker",), robots=("r01",), images=3)
    assert figures.qualitative_image(t, "fig8") == "img0"
    assert "nothing to contrast" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# legends and captions of the curve figures


def legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts() if t.get_text().strip()]


def test_many_curves_get_a_legend_per_code():
    # 2 models x 7 robots: one entry per robot (colour) and one per model (line style)
    t = random_table()
    labels = legend_labels(plots.fig_metric_grid(t))
    assert sorted(labels) == sorted([*ROBOT_NAMES, "A", "B"])
    # Figure 7: a column per model, so its legend names the robots only
    assert sorted(legend_labels(figures.fig7(t))) == sorted(ROBOT_NAMES)
    # few curves: one entry per line, only the (model, robot) pairs drawn
    t = random_table(models=("ritm-compact", "gto99-compact"))
    assert sorted(legend_labels(figures.fig4(t))) == [
        "gto99-compact / rgto99", "ritm-compact / rritm"]  # fmt: skip


def test_fig4_marks_the_few_clicks_and_says_why():
    t = random_table(models=("ritm-compact", "gto99-compact"), clicks=8)
    fig = figures.fig4(t)
    bands = [p for ax in visible_axes(fig) for p in ax.patches]
    assert len(bands) == len(METRIC_NAMES)
    box = bands[0].get_window_extent().transformed(visible_axes(fig)[0].transData.inverted())
    assert (box.x0, box.x1) == pytest.approx((1, findings.FEW_CLICKS))
    cap = fig._suptitle.get_text().replace("\n", " ")
    assert f"clicks 1-{findings.FEW_CLICKS}" in cap and "'accuracy' is recall" in cap
    assert "clicks 1-3" in figures.fig4(t[t.click <= 3])._suptitle.get_text().replace("\n", " ")


def test_fig6b_one_panel_per_model_with_its_spread():
    t = random_table(models=("A", "B"), clicks=5)
    fig = figures.fig6b(t, n_boot=20)
    axes = visible_axes(fig)
    assert len(axes) == 2
    s = stats.robot_spread(t[t.robot.isin(figures.PAPER_RANDOM_ROBOTS)]).set_index("model")
    assert axes[1].get_title() == (
        f"B\nspread {s.loc['B', 'spread']:.2f}, mean {s.loc['B', 'mean']:.2f}"
    )
    assert {line.get_label() for line in axes[1].get_lines()} == {f"B / r0{i}" for i in range(1, 6)}
    assert legend_labels(fig) == [f"r0{i}" for i in range(1, 6)]


def test_robot_colours_are_distinct_fixed_and_cover_other_robots():
    from matplotlib.colors import to_rgb

    paper = plots.robot_colors(list(ROBOT_NAMES))
    rgb = [np.array(to_rgb(c)) for c in paper.values()]
    # every pair of the seven differs clearly (max channel difference), in any figure's order
    assert min(np.abs(a - b).max() for i, a in enumerate(rgb) for b in rgb[i + 1 :]) > 0.15
    assert plots.robot_colors(["rritm", "r01"]) == {"rritm": paper["rritm"], "r01": paper["r01"]}
    other = plots.robot_colors(["replay", "rgto99"])
    assert other["rgto99"] == paper["rgto99"] and other["replay"] not in paper.values()


def test_click_axis_spans_the_clicks_and_a_single_click_without_a_warning():
    import warnings

    import matplotlib.pyplot as plt

    from iislib.drawing.plots import click_axis

    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        click_axis(ax, 1)
        assert ax.get_xlim() == (0.5, 1.5)
        click_axis(ax, 20)
        assert ax.get_xlim() == (1, 20)
    plt.close(fig)
