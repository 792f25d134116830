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
# Each row of a panel is one model driven by one robot (by default each model under the robot of
# its own paper: ritm models under **rritm**, gto99 models under **rgto99**, any other model,
# such as the training-free random walker, under both). The three columns are:
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
models: str = "ready"  # comma list of models, or "ready" (no official weights, no 2x2 controls)
robots: str = "all"  # comma list of robot names, or "all" (the paper's seven)
n_images: int = 100  # first N images of the dataset (0: all); the picker lists them
max_clicks: int = 20  # clicks per trajectory
seeds: list[int] = [0]  # seed of the robots' generators (first one used)
settings: str = "ipol"  # inference settings: direct, ipol, ritm, gto99
n_jobs: int = 1  # worker processes (unused here: one image at a time)
smoke: bool = False  # tiny run (2 images, 4 clicks); also on when the CI variable is set
images: list[int] = [0, 1, 2]  # dataset indices of the images of Figures 5, 8 and 9
k: int = 5  # click shown in the saved figures (clipped to max_clicks)

# %%
import os

# %matplotlib inline
from iislib import figures, widgets
from iislib import notebooks as nb

smoke = smoke or "CI" in os.environ
cfg = nb.config(dataset, models, robots, n_images, max_clicks, seeds, settings, n_jobs, smoke)
print(cfg)
eps = nb.Episodes(cfg)
print("rows of every panel (model, robot):", eps.pairs)

# %% [markdown]
# ## Figure 5
#
# The first image after `k` clicks. Trajectories are computed once per image (the model's
# probability map after every click is kept), then the figures only draw.

# %%
nb.save(figures.fig5(eps.at(images[0]), k), "fig5", cfg)

# %% [markdown]
# ## Figures 8 and 9: two more images
#
# Same panel for two other images. Compare how quickly the false regions (blue, red) disappear,
# and whether they disappear in the same way for every row.

# %%
nb.save(figures.fig8(eps.at(images[1]), k), "fig8", cfg)

# %%
nb.save(figures.fig9(eps.at(images[2]), k), "fig9", cfg)

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
