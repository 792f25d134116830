# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Looking at the segmentations: the paper's Figures 5, 8 and 9
#
# Numbers hide how a model fails. Before averaging anything, look at single images: which object
# is wanted, where the robot clicked, what the model predicted, and which pixels are wrong.
#
# Each row of a panel is one model driven by one robot. Figures 5, 8 and 9 put every model under
# the robot of that figure; the picker at the end puts each model under the robot of its own
# paper (ritm models under **rritm**, gto99 models under **rgto99**, any other model, such as the
# training-free random walker, under both). The three columns are:
#
# 1. **input**: the image as the model sees it, with the ground-truth object outlined in yellow;
# 2. **prediction**: the thresholded prediction (blue tint, yellow contour) with the clicks so far:
#    green dots are positive clicks ("object"), red dots negative clicks ("background"); the
#    larger the dot, the more recent the click;
# 3. **confusion map**: true positives white, true negatives black, false positives blue, false
#    negatives red. The map uses the *probability* rather than its threshold, so uncertain pixels
#    get intermediate colours: a pinkish object pixel is one the model is unsure about, a dark
#    blue background pixel one it leans towards the object.
#
# What to look for: where the errors sit (thin borders, holes, a missed limb, a leak into a
# similar-looking background), whether a new click fixes them or creates new ones, and how
# differently two robots steer the same model on the same image.

# %% tags=["parameters"]
dataset: str = "berkeley"  # berkeley, grabcut, davis, or a folder with images/ and masks/
models: str = "paper"  # names and sets: "paper" (random_walker, ritm-compact, gto99-compact), "official", "ready"
robots: str = "all"  # comma list of robot names, or "all" (the paper's seven)
n_images: int = 100  # first N images of the dataset (0: all); the picker lists them
max_clicks: int = 20  # clicks per trajectory
seeds: list[int] = [0]  # seed of the robots' generators (first one used)
settings: str = "ipol"  # inference settings: direct, ipol, ritm, gto99
n_jobs: int = -1  # worker processes of the r01 sweep choosing Figures 8, 9 (-1: one per core)
smoke: bool = False  # tiny run (2 images, 4 clicks); also on when the CI variable is set
device: str = "cpu"  # where the networks run: cpu, or cuda on a GPU machine
fig5_image: int = 0  # dataset index of the image of Figure 5 (8 and 9 are chosen below)
k: int = 5  # click the picker's slider starts at (clipped to max_clicks)

# %%
# %matplotlib inline
from iislib.apps import paper, runner
from iislib.drawing import figures, widgets
from iislib.experiment import stats

cfg = paper.notebook_config(globals())  # smoke also when the CI variable is set
print(cfg)
runner.announce(paper.qualitative_sweeps(cfg))  # what is not cached yet, and what it costs here
eps = paper.Episodes(cfg)
print("rows of every panel (model, robot):", eps.pairs)

# %% [markdown]
# ## Figure 5: four clicks of the gto99 procedure
#
# The paper's Figure 5: every model after 4 clicks of **rgto99**, gto99's own click procedure
# (the centre of the largest error region). Trajectories are computed once per image (the
# model's probability map after every click is kept), then the figures only draw.

# %%
ep5 = paper.episode(cfg, fig5_image, figures.qualitative_pairs(cfg.models, "fig5"))
paper.save(figures.fig5(ep5), "fig5", cfg)

# %% [markdown]
# ## Which images for Figures 8 and 9?
#
# Figures 8 and 9 use **r01**, which clicks uniformly at random over the image and ignores the
# prediction: with the same seed both models get their clicks at the same places (until a model
# has no error left, when r01 stops). The paper picked images where the two models behave very
# differently. We pick them by a rule instead: the image where the two paper models
# (`ritm-compact`, `gto99-compact`) differ most in IoU after 20 clicks of r01 (Figure 8) and
# after 2 (Figure 9; among the images whose two clicks include a positive one, as in the paper).
# If our models show the paper's contrast anywhere, these images show it; if even the largest
# difference is small, our models do not have it. The r01 sweep below is cached and notebook 3
# reads it back.

# %%
r01 = paper.qualitative_sweeps(cfg)["r01"].run()  # the paper pair (else the first model), r01
chosen = {name: figures.qualitative_image(r01, name) for name in ("fig8", "fig9")}
for name, image in chosen.items():
    clicks = min(figures.QUALITATIVE[name][1], cfg.max_clicks)
    iou = stats.per_image(r01, "iou", clicks).xs(image, level="image").droplevel("robot")
    print(f"{name}: image {image}, IoU after {clicks} r01 clicks:", iou.round(3).to_dict())

# %% [markdown]
# ## Figure 8: twenty random clicks at the same places
#
# In the paper one model does terribly and the other terrifically with the same 20 clicks. The
# caption says whether the clicks are the same in every row.

# %%
ep8 = paper.episode(cfg, chosen["fig8"], figures.qualitative_pairs(cfg.models, "fig8"))
paper.save(figures.fig8(ep8), "fig8", cfg)

# %% [markdown]
# ## Figure 9: two random clicks
#
# In the paper one model keeps the symmetry around the positive click (its mask grows evenly
# around it) and the other does not. Look at the shape of each mask around the green dot.

# %%
ep9 = paper.episode(cfg, chosen["fig9"], figures.qualitative_pairs(cfg.models, "fig9"))
paper.save(figures.fig9(ep9), "fig9", cfg)

# %% [markdown]
# ## Any image, any click
#
# Pick an image and move the slider over the clicks. The first time an image is picked its
# trajectories are computed (a few seconds); after that the slider only redraws. Things to try:
# find an image where one robot reaches a good mask in 3 clicks and the other needs 10; find a
# click that makes the prediction *worse* (a new click can break a region that was right).

# %% tags=["nbval-ignore-output"]
widgets.image_click_picker(
    lambda name, k: figures.fig_qualitative(eps[name], k), cfg.names, cfg.max_clicks, start=k
)

# %% [markdown]
# **Take-away.** The same model, on the same image, gets different clicks from different robots
# and so ends with different masks. Which robot is "right" depends on how real people click, and
# the benchmark's numbers inherit that choice: notebooks 3 and 4 quantify it.
