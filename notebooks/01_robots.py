# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Robots: the simulated users of an interactive segmentation benchmark
#
# An **interactive image segmentation** (IIS) model cuts one object out of an image with the help
# of a person who clicks: a *positive* click on the object ("this is part of it"), a *negative*
# click on the background ("this is not"). After every click the model returns a new mask, the
# person looks at the errors and clicks again. Evaluating such a model with real people is slow
# and not repeatable, so benchmarks replace the person by a program, a **robot** (or *clicking
# procedure*, *simulated user*). The benchmark loop is the paper's Algorithm 1:
#
# ```
# prediction = empty; clicks = []
# repeat K times:
#     click = robot(prediction, ground truth, clicks)   # where would a user click now?
#     prediction = model(image, clicks, previous prediction)
#     score(prediction, ground truth)
# ```
#
# The label of a click is read from the ground truth at the clicked pixel (the paper's
# Assumption 1): a click inside the object is positive, outside it negative. What differs between
# robots is **where** they click. All of them look at the **false region**: the false negatives
# FN (object pixels the prediction misses) and the false positives FP (background pixels it
# wrongly includes).
#
# | robot | where the next click goes |
# |---|---|
# | r01 | anywhere in the image, uniformly (ignores the prediction: a very poor user) |
# | r02 | uniformly in the false region FN ∪ FP |
# | r03 | uniformly in the largest connected piece of the false region |
# | r04 | at random, with probability proportional to the distance to the border of the false region (centres are likelier) |
# | r05 | r04, but several clicks per step each avoid the earlier ones; with one click per step it *is* r04 |
# | rgto99 | the centre of the largest FN or FP region (the robot of the gto99 paper; deterministic) |
# | rritm | the point of FN or FP furthest from its border, clicked pixels excluded (the robot of the RITM paper; deterministic) |
#
# Models are trained with clicks from one robot and usually evaluated with the same robot. This
# notebook shows, on a real Berkeley image and a real model, what each robot "sees" and where
# it clicks, how the two deterministic robots of the literature diverge, and what each robot
# costs per click. The next notebooks measure how much the benchmark's verdict depends on it.

# %% tags=["parameters"]
dataset: str = "berkeley"  # berkeley, grabcut, davis, or a folder with images/ and masks/
models: str = "paper"  # names and sets: "paper" (random_walker, ritm-compact, gto99-compact), "official", "ready"
robots: str = "all"  # comma list of robot names, or "all" (the paper's seven)
n_images: int = 100  # first N images of the dataset (0: all)
max_clicks: int = 20  # clicks per trajectory
seeds: list[int] = [0]  # seeds of the random robots
settings: str = "ipol"  # inference settings: direct, ipol, ritm, gto99
n_jobs: int = -1  # worker processes for sweeps (-1: one per core)
smoke: bool = False  # tiny run (2 images, 4 clicks); also on when the CI variable is set
device: str = "cpu"  # where the networks run: cpu, or cuda on a GPU machine
image: int = 0  # index of the image shown
cost_images: int = 10  # number of images whose trajectories are used to time the robots

# %%
# %matplotlib inline
from iislib.apps import paper
from iislib.drawing import figures, widgets
from iislib.experiment import stats

cfg = paper.notebook_config(globals())  # smoke also when the CI variable is set
print(cfg)

# %% [markdown]
# ## One image, one model, two deterministic robots
#
# We run the first model of the list on one image twice, once driven by **rritm** and once by
# **rgto99**, and keep the probability map after every click. The image is prepared with the
# chosen settings (for `ipol`, the paper's protocol: a centre square crop resized to 224 x 224).

# %%
model = cfg.models[0]
ep = paper.episode(cfg, image, [(model, "rritm"), (model, "rgto99")])
print(f"image {ep.name}, {ep.gt.shape[0]}x{ep.gt.shape[1]} pixels, model {model}")

# %% [markdown]
# ## Where would each robot click first?
#
# Before the first click the prediction is empty, so the false region is the whole object (all
# FN). The first panel shows the image with the object's contour (yellow) and the false region
# (red: FN, blue: FP). The next panels show, for each **random** robot, the probability map it
# samples from (brighter = likelier) with 30 clicks actually drawn by that robot (white dots),
# and for each **deterministic** robot the distance map it maximises, with its click (star).
#
# What to look for: r01 spreads its clicks over the whole image, so many of its "corrections"
# land on pixels that are already right and change nothing; r02 and r03 click anywhere in the
# error, including thin slivers along the border where one click barely helps; r04/r05 favour the
# inside of the errors; rgto99 and rritm always pick one single, central point.

# %%
paper.save(figures.fig_robot_maps(ep, 0), "robots_maps_first_click", cfg)

# %% [markdown]
# ## ... and after a few clicks
#
# After some clicks the prediction has both kinds of error. The maps below are computed on the
# prediction of the rritm trajectory after `k` clicks. Move the slider to step through the
# trajectory: the false region shrinks and fragments, and the random robots start to spend
# clicks on tiny regions near the object's border.

# %%
paper.save(figures.fig_robot_maps(ep, min(3, cfg.max_clicks - 1)), "robots_maps", cfg)

# %% tags=["nbval-ignore-output"]
widgets.click_slider(
    lambda k: figures.fig_robot_maps(ep, k), cfg.max_clicks - 1, minimum=0, start=3
)

# %% [markdown]
# ## The two deterministic robots diverge
#
# rgto99 and rritm both aim at "the middle of the biggest mistake", and on the first click they
# usually agree. They differ in the details: rgto99 takes the largest *connected* FN or FP region
# and its centre, and may click the same pixel again; rritm compares the deepest FN point with the
# deepest FP point over the whole image and never re-clicks a pixel. Once one click differs, the
# model sees different inputs, the predictions differ, and the two trajectories drift apart.
# Left: the prediction after `k` clicks under each robot; right: IoU after each click, with the
# first click where the two sequences differ.

# %%
first = stats.first_divergence(
    ep.trajs[(model, "rgto99")].clicks, ep.trajs[(model, "rritm")].clicks
)
print(f"rgto99 and rritm first click differently at click {first} (None: never)")
paper.save(figures.fig_robot_divergence(ep, cfg.max_clicks), "robots_divergence", cfg)

# %% tags=["nbval-ignore-output"]
widgets.click_slider(lambda k: figures.fig_robot_divergence(ep, k), cfg.max_clicks)

# %% [markdown]
# ## What a robot costs per click
#
# A benchmark runs every robot thousands of times (images x clicks x seeds), so its cost
# matters. We time every robot on the real predictions of the rritm trajectories of the first
# images (the fastest of 3 repetitions per call). Uniform sampling (r01, r02) is nearly free;
# connected components (r03, rgto99) and distance transforms (r04, r05, rgto99, rritm) cost
# more, and grow with the image size.

# %%
eps = paper.Episodes(cfg, [(model, "rritm")])
times = paper.time_robots(eps.first(cost_images), cfg.robots)
cost = stats.robot_cost(times, "seconds")
cost.round(3)

# %%
cap = paper.caption(cfg, "robot time on the predictions of the rritm trajectories", cost_images)
paper.save(figures.fig_robot_cost(cost, cap), "robots_cost", cfg)

# %% [markdown]
# **Take-away.** A robot is a modelling choice about how people click. Different robots place
# clicks in visibly different places on the same prediction, and even the two "reasonable"
# deterministic robots of the literature produce different click sequences. Notebook 2 shows what
# that does to the segmentations; notebooks 3 and 4 measure what it does to the benchmark numbers.
