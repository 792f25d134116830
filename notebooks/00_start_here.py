# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Start here: the paper, one notebook at a time
#
# These notebooks rebuild, and go beyond, the IPOL 2024 paper *Comparing Interactive Image
# Segmentation Models under Different Clicking Procedures*: how the evaluation of an interactive
# segmentation model depends on the simulated user (the "robot") that clicks for it. Read them in
# this order (a link, or a double-click in the file browser on the left, opens one):
#
# | | notebook | what it shows | what it computes |
# |---|---|---|---|
# | 1 | [01_robots.py](01_robots.py) | the seven robots: where each one clicks, the map it samples from, how rgto99 and rritm part ways on the same image, what a click costs | one image at a time: seconds |
# | 2 | [02_qualitative.py](02_qualitative.py) | single images (the paper's Figures 5, 8, 9): prediction, clicks and errors per model and robot; a picker over every image | reads the r01 sweep |
# | 3 | [03_quantitative.py](03_quantitative.py) | the benchmark (Figures 4 and 6a): six metrics against the number of clicks, each model under its own robot and under both; NoC and NoF | reads the main sweep |
# | 4 | [04_robustness.py](04_robustness.py) | whether the verdict survives a change of robot (Figures 6b and 7): bootstrap intervals, win rates, sign flips, Kendall tau, seed variance, the 2x2 family x training procedure, the findings on Berkeley and GrabCut | reads the main sweep and three more |
# | 5 | [05_demo.py](05_demo.py) | the demo: your image and mask, any model and robot (also a web page: `make demo`) | on demand |
# | 6 | [06_you_click.py](06_you_click.py) | you are the robot: a person's clicks beside the seven robots | one image: seconds |
#
# **Running one.** *Run > Run All Cells*, or Shift+Enter cell by cell. The first code cell
# prints the notebook's settings (its `parameters` cell: dataset, models, robots, images,
# clicks; `smoke = True` makes a 2-image, 4-click try) and then, before anything is computed,
# which of its trajectories are not cached yet and what computing them costs on this machine.
#
# **The sweeps.** Notebooks 2 to 4 read sweeps: every model x robot x image, 20 clicks each
# (110,000 clicks in all). Computed once, they are cached in `.cache/results` and
# every notebook reads them from there. The cell below says what is cached now:
#
# - *all cached* (after `make figures`): open any notebook, it only reads and draws;
# - *trajectories missing*: run `make figures` first (in a terminal: *File > New > Terminal*),
#   which computes the sweeps of every notebook in one pass on every core, then writes all the
#   figures (README, "Timings": 18 to 28 minutes from a fresh clone on a 2-core machine); or
#   open a notebook anyway: it computes the sweeps it reads itself, with one worker per core,
#   and says how long that takes before it starts. A stopped sweep keeps what it finished.
#
# The notebooks are text files (`.py`, jupytext's percent format) that JupyterLab opens as
# notebooks. Saving one writes the `.py` and a paired `.ipynb` with the outputs beside it (git
# ignores the `.ipynb`).

# %% tags=["parameters"]
smoke: bool = False  # the plan of the smoke runs (2 images, 4 clicks); also on when CI is set

# %%
from iislib.apps import runner

runner.announce(runner.figure_plan(smoke=smoke))  # every sweep of notebooks 2-4
