# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Demo: one image, one mask, any model and any robot
#
# The paper's online demo, rebuilt. Give an image and its ground-truth mask (or pick a sample of
# a local benchmark), choose an interactive segmentation **model** and a clicking **robot** (the
# simulated user), and press **Run**: the robot clicks `clicks` times (20 by default), each time
# where the current prediction is wrong, and the model updates its prediction after every click
# (Algorithm 1 of the paper).
#
# - **Mask rule**: pixels whose channel mean is below 128 are background, the others foreground.
#   The image and the mask must have the same size, and the mask must hold both classes.
# - **Models** that need an official checkpoint (`ritm`, `gto99`) show a checkpoint field: give
#   the path of the weights file. `random_walker` needs nothing.
# - **Compare with** runs a second model/robot pair on the same image and overlays its curves.
# - **Envelope** also runs the chosen model under `rworst` and `rbest`, the worst and the best
#   honest user (greedy one click ahead, N + 7 predictions per click: slower), and shades the band
#   between their IoU curves: how far the clicking alone moves this model on this image.
# - **You click** (the mode toggle at the top): you are the robot. Press *Start clicking*, then
#   click on the image: left click positive (the object), right click or shift+click negative
#   (or set the toggle). After each click the model predicts and the overlay, the TP/TN/FP/FN map
#   and the IoU update; *Undo* and *Reset* are there, the link saves your clicks as JSON and
#   *load clicks* reads them back. *Compare with the robots* runs the seven robots on the same
#   image and model for as many clicks as you made, and draws your IoU curve among theirs, with
#   the distance from each of your clicks to the click rgto99 and rritm would have placed, and
#   where your pixel falls in each random robot's sampling map (notebook 06 explains it).
#
# The curves show accuracy, precision, recall, Dice, IoU, F-score and Boundary IoU (the agreement
# of the two masks' border bands, which keeps moving after IoU has settled) after each click (the
# dotted lines mark IoU 0.85 and 0.90, the levels of NoC@85 and NoC@90). The slider chooses the click
# drawn in the panel: the input with its ground truth outlined in magenta; the prediction (tinted
# blue, outlined in yellow) over the image with the clicks so far (green positive, red negative,
# the latest largest); and the map of true positives (white), true negatives (black), false
# positives (blue) and false negatives (red).
# The links below the panel download the scores (CSV) and both pictures (PNG).
#
# Serve it as a web page with `make demo` (Voilà on 127.0.0.1), or run the same thing from the
# shell: `iislib demo IMAGE MASK --model random_walker --robot rritm --clicks 20 --out DIR`.

# %% tags=["parameters"]
model: str = "random_walker"  # first model (a registered name)
robot: str = "rritm"  # first robot: r01 r02 r03 r04 r05 rgto99 rritm r05h
checkpoint: str = ""  # weights file, for models that need one (ritm, gto99)
compare_model: str = ""  # second model; empty with compare_robot empty: no comparison
compare_robot: str = ""  # second robot
clicks: int = 20  # number of clicks K
seed: int = 0  # seed of the robots' generators
sample: str = ""  # preselect a local benchmark sample, e.g. "berkeley/101087"
autorun: bool = False  # run once at start (needs `sample`): a static record shows results
mode: str = "robot"  # "robot": a robot clicks (Run); "human": you click
smoke: bool = False  # fewer clicks, for quick checks

# %% tags=["nbval-ignore-output"]
import os

from IPython.display import display

from iislib.apps.demo_app import DemoApp

smoke = smoke or "CI" in os.environ
app = DemoApp(
    model=model,
    robot=robot,
    clicks=min(clicks, 5) if smoke else clicks,
    seed=seed,
    checkpoint=checkpoint,
    compare_model=compare_model,
    compare_robot=compare_robot,
    sample=sample,
    mode=mode,
)
if autorun:
    app.run()
display(app.widget)

# %% [markdown]
# Everything above is `iislib.experiment.demo` (the runs), `iislib.drawing.demo_figures` (the
# pictures) and `iislib.experiment.session` (you click), wired to widgets by `iislib.apps.demo_app`;
# the same functions write `curves.png`, `panel.png` and `scores.csv` for the command line
# (`iislib.apps.demo`).
