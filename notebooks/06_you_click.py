# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # You are the robot: a person's clicks beside the seven robots
#
# The paper's point is that an interactive segmentation benchmark depends on its simulated
# user: the same models, ranked under another clicking robot, can swap places. The question
# every reader asks next is what a person would do. RClicks (Antonov et al., NeurIPS 2024)
# answered it at scale with 475k real clicks gathered by crowdsourcing; this notebook does the
# small version: put *one* click sequence (yours, or the example shipped with the project)
# beside the robots, on the same image and the same model.
#
# For each of your clicks k, every robot is asked what it would have done **at your state**:
# the same earlier clicks and the same prediction. A deterministic robot (rgto99, rritm)
# answers with one click, and we measure the distance in pixels between its click and yours.
# A random robot (r01-r05) answers with a probability per pixel (its sampling map), and we give
# the **percentile** of your pixel under it: the share of the robot's probability on pixels
# less likely than yours, plus half the share on pixels exactly as likely (so 0 means the robot
# never clicks there, 50 is a typical pixel of a robot that samples uniformly, and values near
# 100 are the robot's favourite pixels). Separately, each robot runs its own Algorithm 1 for as
# many clicks as you made, which gives the IoU curves.
#
# **Headless runs** (papermill, CI, `make test`) use the example sequence shipped in
# `iislib/core/examples/`. It is an *example*, not data from a user study: its `note` says how
# it was made. To record your own, open this notebook in JupyterLab, click in the app below,
# then run the cells after it again (or pass a saved record: `-p record my_clicks.json`).

# %% tags=["parameters"]
dataset: str = "berkeley"  # the dataset of the record's image (the record names the image)
models: str = "paper"  # models of the verdict section: comma list, "paper" or "ready"
robots: str = "all"  # comma list of robot names, or "all" (the paper's seven)
n_images: int = 100  # shared parameter; unused: one image, the record's
max_clicks: int = 20  # at most this many of the record's clicks are compared
seeds: list[int] = [0]  # seed of the random robots (the first one is used)
settings: str = "ipol"  # shared parameter; unused: the record's own settings are used
n_jobs: int = -1  # shared parameter; unused (no sweep)
smoke: bool = False  # compare only the first 4 clicks; also on when the CI variable is set
device: str = "cpu"  # where the networks run: cpu, or cuda on a GPU machine
record: str = ""  # path of a saved click record (JSON from the demo); empty: the shipped example

# %%
# %matplotlib inline
import numpy as np
import pandas as pd
from IPython.display import display

from iislib.apps import paper
from iislib.apps.demo_app import DemoApp
from iislib.core.human import ClickRecord, example_record
from iislib.drawing.demo_figures import fig_compare, fig_verdict
from iislib.experiment.data import load_dataset
from iislib.experiment.session import HumanSession

cfg = paper.notebook_config(globals())  # smoke also when the CI variable is set
rec = ClickRecord.load(record) if record else example_record()
print(cfg)
print(("EXAMPLE sequence (not user-study data)" if rec.example else "recorded sequence")
      + f": {len(rec)} clicks on {rec.image} with {rec.model}\n{rec.note}")  # fmt: skip

# %% [markdown]
# ## Record your own sequence
#
# The demo's "you click" mode, on the record's image and model. Press **Start clicking**, click
# on the object (left click positive; right click or shift+click negative), and watch the
# prediction, the TP/TN/FP/FN map and the IoU after each click. *Compare with the robots* shows
# the comparison right there; the link saves your clicks as JSON. Then run the cells below
# again: they use your clicks when you made some, the example otherwise. (Run headlessly, the
# app is built but nobody clicks.)

# %% tags=["nbval-ignore-output"]
app = DemoApp(model=rec.model, sample=rec.image, mode="human", seed=cfg.seeds[0])
display(app.widget)

# %% [markdown]
# ## Your clicks among the robots'

# %%
if app.record is not None and len(app.record):
    rec = app.record  # yours, from the app above
ds_name, _, name = rec.image.partition("/")
if ds_name != cfg.dataset_name or not name:
    raise ValueError(f"the record's image {rec.image!r} is not a sample of {cfg.dataset_name!r}")
sample = load_dataset(ds_name)[name]
rec = rec.head(cfg.max_clicks)
# the record's settings: its clicks and mask digest are those of the image as the model saw it
session = HumanSession(sample.image, sample.gt, rec.model, name=name, image_id=rec.image,
                       ignore=sample.ignore, settings=rec.settings)  # fmt: skip
session.load(rec)  # refused with a message if the record was made on another mask
cmp = session.compare(robots=cfg.robots, seed=cfg.seeds[0])
paper.save(fig_compare(cmp, title=f"{rec.image}, {rec.model}, {cmp.k} clicks"
                       + (" (example sequence)" if rec.example else "")), "you_click", cfg)  # fmt: skip
print(cmp.iou.round(3).to_string())

# %% [markdown]
# Per click: the distance (pixels) from each click to the deterministic robots' click at the
# same state, and the percentile of the clicked pixel under each random robot's map.

# %%
table = cmp.per_click.assign(value=np.where(cmp.per_click["random"], cmp.per_click["percentile"],
                                            cmp.per_click["distance"]))  # fmt: skip
print(table.pivot(index="click", columns="robot", values="value")[cfg.robots].round(1).to_string())
summary = cmp.summary()
print(summary.round(3).to_string())

# %% [markdown]
# ## Which robot does this sequence resemble?
#
# Three answers, which need not agree: the deterministic robot whose clicks land closest; the
# random robot under which the clicked pixels are most typical (highest mean percentile); and
# the robot whose own run gives the closest IoU curve (smallest mean |IoU gap|).

# %%
det, rnd = summary[~summary["random"]], summary[summary["random"]]
if len(det):
    print(f"closest clicks: {det['mean_distance'].idxmin()} "
          f"({det['mean_distance'].min():.1f} px on average)")  # fmt: skip
if len(rnd):
    print(f"most typical under: {rnd['mean_percentile'].idxmax()} "
          f"(mean percentile {rnd['mean_percentile'].max():.0f})")  # fmt: skip
print(f"closest IoU curve: {summary['iou_gap'].idxmin()} "
      f"(mean |IoU gap| {summary['iou_gap'].min():.3f})")  # fmt: skip

# %% [markdown]
# ## How the verdict moves with the simulated user
#
# The same clicks, replayed on each model of `models`, beside each robot's own run on that
# model: mean IoU over the clicks, per model and per simulated user (the winner's bar outlined).
# A replay is **open-loop**: the clicks were chosen after seeing the predictions of
# `rec.model`, so on any other model they are not what the person would have done. The bars of
# the other models under "you" therefore answer "what if this person's clicks had been given to
# that model", not "how would that model do with this person".

# %%
verdict = {}
for m in cfg.models:
    if m == rec.model:
        verdict[m] = cmp  # computed above
        continue
    s = HumanSession(sample.image, sample.gt, m, name=name, image_id=rec.image,
                     ignore=sample.ignore, settings=rec.settings)  # fmt: skip
    s.load(rec)
    verdict[m] = s.compare(robots=cfg.robots, seed=cfg.seeds[0])
paper.save(fig_verdict(verdict), "you_click_verdict", cfg)
means = pd.DataFrame({m: c.iou.mean() for m, c in verdict.items()})
print(means.round(3).to_string())
print("winner per simulated user:", means.idxmax(axis=1).to_dict())

# %% [markdown]
# ## What this comparison can and cannot say
#
# - **It can** place one sequence among the robots: on this image, were the clicks where rritm
#   or rgto99 would have clicked (a few pixels away) or elsewhere; were they typical of r04's
#   centre-seeking map or of r02's uniform one; and did the robots' own runs reach the same
#   IoU in as many clicks. With several images and several people, the same numbers describe a
#   population of users, which is what RClicks measured.
# - **It can** show a benchmark's verdict moving: when the winner differs between columns of
#   the bar chart, the ranking depends on who clicks, on this image.
# - **It cannot** say how people click in general: this is one sequence on one image (and the
#   shipped one is an example made by the code's author, not a participant). A single image's
#   ranking is noise for a benchmark; notebook 04 gives the intervals over 100 images.
# - **It cannot** replay a person on another model: a person adapts each click to the
#   prediction they see, a replay does not (see above). A fair human-vs-model comparison needs
#   the person to click for each model.
# - The distances and percentiles compare *where* the clicks are, not their labels: a person
#   may click negative where a robot clicks positive, which the table's (+/-) shows.
