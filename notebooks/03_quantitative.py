# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Quantitative comparison: metrics against the number of clicks (Figures 4 and 6a)
#
# A benchmark runs every model on every image of a dataset with a robot clicking `max_clicks`
# times, scores the prediction after each click, and averages over images. The result is one
# curve per model: the **mean score after k clicks**, for k = 1, 2, ... A good model climbs fast
# (few clicks to a good mask) and stays high (later clicks do not break it).
#
# ## The metrics
#
# For one prediction, count the pixels: TP (object, predicted object), FP (background predicted
# object), FN (object predicted background), TN (background predicted background).
#
# | metric | formula | reads as |
# |---|---|---|
# | accuracy | (TP + TN) / all pixels | share of pixels right; high even for a poor mask when the object is small |
# | precision | TP / (TP + FP) | of what the model selected, how much is object |
# | recall | TP / (TP + FN) | of the object, how much the model selected |
# | Dice | 2 TP / (2 TP + FP + FN) | overlap, counting the intersection twice |
# | IoU | TP / (TP + FP + FN) | intersection over union: the standard IIS score |
# | F-score | 2 P R / (P + R) | harmonic mean of precision and recall; equals Dice for binary masks |
#
# From the IoU curves the literature derives **NoC@85 / NoC@90**: the number of clicks needed to
# reach IoU 0.85 / 0.90, averaged over images (an image that never reaches it counts as
# `max_clicks`), and **NoF@90**: the number of images that never reach 0.90.
#
# ## Each model under "its own" robot
#
# Papers evaluate their model with their own robot: RITM with **rritm**, gto99 with **rgto99**.
# Figure 4 shows that situation: every model under the robot of its paper (a model of neither
# family, such as the training-free random walker available without official weights, is shown
# under both). Figure 6a swaps them: every model under *both* deterministic robots. If a model
# looks better simply because it is measured with the robot it was trained for, the gap shows
# here.

# %% tags=["parameters"]
dataset: str = "berkeley"  # berkeley, grabcut, davis, or a folder with images/ and masks/
models: str = "paper"  # names and sets: "paper" (random_walker, ritm-compact, gto99-compact), "official", "ready"
robots: str = "all"  # comma list of robot names, or "all" (the paper's seven)
n_images: int = 100  # first N images of the dataset (0: all)
max_clicks: int = 20  # clicks per trajectory
seeds: list[int] = [0]  # one trajectory per seed for the random robots
settings: str = "ipol"  # inference settings: direct, ipol, ritm, gto99
n_jobs: int = -1  # worker processes for the sweep (-1: one per core)
smoke: bool = False  # tiny run (2 images, 4 clicks); also on when the CI variable is set
device: str = "cpu"  # where the networks run: cpu, or cuda on a GPU machine
k: int = 5  # click of the per-image distribution shown first

# %%
# %matplotlib inline
from iislib.apps import paper, runner
from iislib.drawing import figures, plots, widgets
from iislib.experiment import stats, sweep

cfg = paper.notebook_config(globals())  # smoke also when the CI variable is set
print(cfg)
sweeps = paper.quantitative_sweeps(cfg)
runner.announce(sweeps)  # what is not cached yet, and what computing it here costs

# %% [markdown]
# ## The sweep
#
# Every model x robot x image x seed, `max_clicks` clicks each. Results are cached on disk, so
# notebook 4 (same arguments) reads them instead of recomputing.

# %%
table = sweeps["main"].run()
print(plots.caption(table))
print(f"{len(table)} rows (one per model x robot x image x seed x click)")

# %% [markdown]
# ## Figure 4: six metrics, each model under its own robot
#
# Colour: robot; line style: model. Accuracy starts high even with a poor mask (most pixels are
# background and an empty prediction gets them right), which is why IIS papers report IoU.
# Precision starts high and recall low: the first masks are small and inside the object.

# %%
paper.save(figures.fig4(table), "fig4", cfg)

# %% [markdown]
# ## Figure 6a: every model under both deterministic robots

# %%
paper.save(figures.fig6a(table), "fig6a", cfg)

# %% [markdown]
# ## Summary table, and the published numbers for context
#
# NoC@85/90 and NoF@90 as defined above, mIoU@k (mean IoU after k clicks) and AUC (mean of the
# IoU curve over clicks, in [0, 1]) for every model x robot of this run.

# %%
sweep.summary(table).round(2)

# %% [markdown]
# The rows labelled **"published, official weights, other protocol"** come from the official
# READMEs of RITM and gto99: official weights, full-resolution images, each paper's own robot and
# inference tricks (RITM: zoom-in, flip averaging, threshold 0.49, stopping at IoU 0.90). They
# are there to give a sense of scale, **not** as a reproduction target: this run uses other
# settings (`ipol`: 224 x 224 crops), other clicks and possibly other models.

# %%
figures.table_noc(table).round(2)

# %% [markdown]
# ## The paper's own models under their own protocols
#
# With the official weights in the weights folder (`models="official"`, i.e. `ritm-sbd-h18` and
# `gto99-synthft`; `python -m iislib weights` says what to download and where to put it), each
# official model is also run the way its own paper evaluates it: RITM with its zoom-in and flip
# averaging at full resolution (settings `ritm`, threshold 0.49) under **rritm**, gto99 at full
# resolution (settings `gto99`) under **rgto99**. Its NoC then stands beside the number its
# README publishes (RITM SBD h18 IT-M: GrabCut NoC@85 1.76, NoC@90 2.04; Berkeley NoC@90 3.22;
# DAVIS NoC@85 4.94, NoC@90 6.71; gto99: GrabCut NoC@90 1.74, Berkeley NoC@90 2.93), a check
# that the models, the robots and the metrics here are the official ones. Without an official
# model among `models` this table is skipped.

# %%
paper.own_protocol_table(cfg)

# %% [markdown]
# ## The mean hides the spread
#
# The same numbers image by image: one box per model x robot, at click `k` (triangle: the mean).
# Most images are easy; a few hard ones (thin structures, camouflage) pull the mean down and
# are where robots disagree most. Move the slider to see the boxes rise with the clicks.

# %%
paper.save(figures.fig_iou_distribution(table, min(k, cfg.max_clicks)), "iou_distribution", cfg)

# %% tags=["nbval-ignore-output"]
widgets.click_slider(
    lambda k: figures.fig_iou_distribution(table, k), cfg.max_clicks, start=min(k, cfg.max_clicks)
)

# %% [markdown]
# ## Metric quirks of the paper's code
#
# The paper's evaluation code computes its scores on the foreground class only. Two consequences
# (section D of the reference notes): its **"accuracy" is TP / (TP + FN), that is recall**, not
# the share of right pixels; and its Dice equals its F-score (true of any binary mask, ours
# included). It also divides by zero without care: an empty prediction gets precision NaN, and a
# plain mean over images then turns the whole point of the curve into NaN. Our scores use real
# pixel accuracy and a 0/0 rule that never gives NaN. Below: one prediction scored both ways,
# then the empty prediction before the first click.

# %%
key = figures.own_pairs(cfg.models)[0]
ep = paper.episode(cfg, 0, [key])
stats.metric_quirks(ep.pred(key, 1), ep.gt).round(4)

# %%
stats.metric_quirks(ep.pred(key, 0), ep.gt).round(4)

# %% [markdown]
# Over the whole sweep, the paper code's "accuracy" curve (dashed) is our recall curve, far below
# our pixel accuracy (solid) in the first clicks. Figures drawn with the paper's code label this
# curve "accuracy".

# %%
paper.save(figures.fig_metric_quirks(table), "metric_quirks", cfg)

# %% [markdown]
# **Take-away.** A benchmark number is a mean over images of one metric after some clicks,
# *under one robot*. Change the robot (Figure 6a) and the curves move; notebook 4 asks whether
# the *ranking* of models moves too.
