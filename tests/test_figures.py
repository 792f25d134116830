"""Figure functions: what robots see, panel counts, skips with one model, valid files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from iislib import figures, plots, stats
from iislib.experiment import COLUMNS
from iislib.loop import make_rng
from iislib.metrics import METRIC_NAMES
from iislib.robots import ROBOT_NAMES, border_dt, get_robot, largest_component


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
                                     "click": k + 1, **{x: curve[k] for x in METRIC_NAMES}})  # fmt: skip
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
def test_robot_distribution_supports(seed):
    pred, gt = blobs(seed)
    false = pred ^ gt
    for robot in ("r01", "r02", "r03", "r04", "r05"):
        p = figures.robot_distribution(robot, pred, gt)
        assert p.shape == gt.shape and p.min() >= 0
        assert p.sum() == pytest.approx(1.0)
    assert np.allclose(figures.robot_distribution("r01", pred, gt), 1 / gt.size)
    p2 = figures.robot_distribution("r02", pred, gt)
    assert (p2[~false] == 0).all() and np.allclose(p2[false], 1 / false.sum())
    assert ((figures.robot_distribution("r03", pred, gt) > 0) == largest_component(false)).all()
    dt = border_dt(false)
    np.testing.assert_allclose(figures.robot_distribution("r04", pred, gt), dt / dt.sum())


def test_robot_distribution_samples_fall_in_support():
    pred, gt = blobs(1)
    rng = make_rng(0, "x")
    for robot in ("r02", "r03", "r04"):
        p = figures.robot_distribution(robot, pred, gt)
        for _ in range(20):
            c = get_robot(robot)(pred, gt, [], rng)
            assert p[c.row, c.col] > 0


def test_robot_distribution_errors_and_end():
    pred, gt = blobs(0)
    assert figures.robot_distribution("r02", gt, gt).sum() == 0  # no error left
    with pytest.raises(ValueError, match="not a random robot"):
        figures.robot_distribution("rritm", pred, gt)
    with pytest.raises(ValueError, match="not a deterministic robot"):
        figures.decision_map("r02", pred, gt)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("robot", ["rgto99", "rritm"])
def test_decision_map_first_maximum_is_the_robot_click(robot, seed):
    pred, gt = blobs(seed)
    clicks = [get_robot(robot)(pred, gt, [], make_rng(0))]
    dt, click = figures.decision_map(robot, pred, gt, clicks)
    assert click == get_robot(robot)(pred, gt, clicks, make_rng(0))
    assert divmod(int(np.argmax(dt)), dt.shape[1]) == (click.row, click.col)


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
    fig = figures.fig7(random_table())
    axes = visible_axes(fig)
    assert len(axes) == 6 and all(len(ax.get_lines()) == 2 * len(ROBOT_NAMES) for ax in axes)


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
    t = random_table(models=tuple(figures.FAMILY_PROCEDURE), robots=("rritm", "rgto99"))
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
    from iislib.loop import run_many
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
