"""The demo as an ipywidgets app (``notebooks/05_demo.py``, served by Voilà with ``make demo``).

    from iislib.apps.demo_app import DemoApp
    app = DemoApp(model="random_walker", robot="rritm", clicks=20)
    app.widget  # display it (the last expression of a cell, or ``display(app.widget)``)

The user uploads an image and its mask (or picks a sample of a local benchmark: ``$IISLIB_DATA``),
chooses a model and a robot (optionally a second pair to compare), the number of clicks, and presses
Run; the "envelope" box also runs the first model under rworst and rbest (the worst and the best
honest user) and shades the band between their IoU curves. In the "you click" mode the user is the robot instead: press "Start clicking", then click on
the image (left: positive, right or shift+left: negative, or set the toggle); the model predicts
after each click, the overlay, the TP/TN/FP/FN map and the IoU follow; undo, reset, save the
clicks as JSON (a download link) or load saved ones, and "Compare with the robots" runs the
seven robots for as many clicks (``iislib.experiment.human``). The clickable picture is
``ClickImage``, a small anywidget: plain ``ipywidgets.Image`` reports no pointer events. The app shows the seven score curves (Boundary IoU the seventh), the panel at the click chosen with the slider, download links
(scores.csv, curves.png, panel.png as data URIs) and, next to the inputs, a message for any input
it cannot use; a bad input never breaks the app. Uploads over ``iislib.experiment.demo.MAX_PIXELS`` (4
megapixels) and decompression bombs are refused from their header, before they are decoded.

Every widget carries a CSS class ``iis-<role>`` (``iis-run``, ``iis-panel``, ...) for browser tests.
All the work happens in ``iislib.experiment.demo`` (runs), ``iislib.experiment.session`` (you
click) and ``iislib.drawing.demo_figures`` (pictures); this module only wires widgets to them.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets

from iislib.core.human import ClickRecord, RecordError
from iislib.core.model import IISModel
from iislib.drawing.demo_figures import (
    confusion_png,
    fig_compare,
    fig_curves,
    fig_panel,
    figure_png,
    overlay_png,
)
from iislib.experiment.data import (
    DATASET_NAMES,
    DataError,
    Dataset,
    data_root,
    load_dataset,
)
from iislib.experiment.demo import (
    MASK_RULES,
    MAX_PIXELS,
    DemoError,
    DemoResult,
    build_model,
    check_inputs,
    decode_image_bytes,
    envelope_line,
    read_mask_bytes,
    robot_names,
    run_demo,
    run_envelope,
    scores_csv,
    summary_line,
)
from iislib.experiment.session import HumanSession
from iislib.models import NEEDS_CHECKPOINT, available_models

UPLOAD, DATASET = "upload", "dataset"
ROBOT_MODE, HUMAN_MODE = "robot", "human"
CLICK_VIEW_SIDE = 480
"""Longer side, in screen pixels, of the clickable picture (the image is scaled to it)."""
ERROR_STYLE = "color:#b00020;font-weight:bold"


def upload_content(upload: widgets.FileUpload) -> tuple[str, bytes] | None:
    """(file name, bytes) of a single-file FileUpload, or None when nothing is uploaded."""
    value = upload.value
    if not value:
        return None
    item: Any = value[0] if isinstance(value, (tuple, list)) else next(iter(value.values()))
    return str(item.get("name", "upload")), bytes(item["content"])


def data_link(data: bytes, filename: str, mime: str) -> str:
    """An HTML link that downloads ``data`` as ``filename`` (a base64 data URI: no server needed)."""
    b64 = base64.b64encode(data).decode("ascii")
    return (
        f'<a download="{html.escape(filename)}" href="data:{mime};base64,{b64}" '
        f'class="iis-download" style="margin-right:1.2em">⬇ {html.escape(filename)}</a>'
    )


def error_message(exc: BaseException) -> str:
    """The message shown for ``exc``: the text of input errors, the type too for anything else."""
    if isinstance(exc, (DataError, DemoError, FileNotFoundError)):
        return str(exc)
    if isinstance(exc, ValueError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: upload a smaller image (downscale it), or run fewer clicks"
    return f"{type(exc).__name__}: {exc}"


_CLICK_IMAGE_ESM = """
function render({ model, el }) {
  const img = document.createElement("img");
  img.draggable = false;
  img.style.cursor = "crosshair";
  img.style.maxWidth = "100%";
  img.style.userSelect = "none";
  const show = () => {
    const src = model.get("src");
    img.style.display = src ? "" : "none";
    if (src) img.src = src;
    const w = model.get("width");
    img.style.width = w > 0 ? w + "px" : "";
  };
  // (row, col) of the image pixel under the pointer, from the picture's shown size
  const send = (e, button) => {
    e.preventDefault();
    const r = img.getBoundingClientRect();
    if (!img.naturalWidth || !r.width || !r.height) return;
    const col = Math.floor(((e.clientX - r.left) * img.naturalWidth) / r.width);
    const row = Math.floor(((e.clientY - r.top) * img.naturalHeight) / r.height);
    model.send({ event: "click", row, col, button, shift: e.shiftKey,
                 width: img.naturalWidth, height: img.naturalHeight });
  };
  const left = (e) => send(e, 0);
  // JupyterLab opens its own context menu from a listener on the document: the right click is
  // ours, so it stops here (Voila has no such menu; the browser's is suppressed in send)
  const right = (e) => { e.stopPropagation(); send(e, 2); };
  img.addEventListener("click", left);
  img.addEventListener("contextmenu", right);
  model.on("change:src", show);
  model.on("change:width", show);
  show();
  el.appendChild(img);
  return () => {
    model.off("change:src", show);
    model.off("change:width", show);
  };
}
export default { render };
"""


class ClickImage(anywidget.AnyWidget):
    """A picture that reports where it is clicked, in image pixels.

    ``src`` is the picture (a data URI); ``width`` its shown width in screen pixels (0: natural
    size). A left click sends ``{"event": "click", "row", "col", "button": 0, "shift", "width",
    "height"}`` to the kernel (``on_click``), a right click the same with ``button`` 2 (the
    browser's menu is suppressed); (row, col) is the pixel of the picture's own resolution
    (``width``/``height``: the picture's natural size, to detect a stale picture).
    """

    _esm = traitlets.Unicode(_CLICK_IMAGE_ESM).tag(sync=True)
    src = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers: list[Any] = []
        self.on_msg(self._on_msg)

    def on_click(self, handler: Any) -> None:
        """Call ``handler(content)`` for every click message (a dict, see the class doc)."""
        self._handlers.append(handler)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            for handler in self._handlers:
                handler(content)

    def show_png(self, png: bytes, size: tuple[int, int], side: int = CLICK_VIEW_SIDE) -> None:
        """Show ``png`` of ``size`` (H, W), scaled so that its longer side is ``side`` px."""
        h, w = size
        self.width = max(1, round(w * side / max(h, w)))
        self.src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class DemoApp:
    """Widgets for one image + mask, one or two (model, robot) runs, curves and panels.

    Args:
        model, robot: initial choices (an unknown name is reported in the error label and the
            first available one is selected instead).
        clicks: initial number of clicks K.
        seed: initial seed of the robots.
        checkpoint: initial checkpoint path for the first model.
        compare_model, compare_robot: a second run to compare; both empty means no comparison.
        sample: ``"dataset/name"`` (e.g. ``"berkeley/101087"``) to preselect a benchmark sample.
        models: the model names offered (default: every registered model).
        robots: the robot names offered (default: every registered robot).
        mode: ``"robot"`` (a robot clicks, Run) or ``"human"`` (you click).
        envelope: start with the envelope box ticked: Run also runs the chosen model under
            rworst and rbest and draws the band between their IoU curves (N + 7 predictions
            per click: slower than a robot's run).
    """

    def __init__(
        self,
        model: str = "random_walker",
        robot: str = "rritm",
        clicks: int = 20,
        seed: int = 0,
        checkpoint: str = "",
        compare_model: str = "",
        compare_robot: str = "",
        sample: str = "",
        models: Sequence[str] | None = None,
        robots: Sequence[str] | None = None,
        mode: str = ROBOT_MODE,
        envelope: bool = False,
    ) -> None:
        self.models = list(models) if models is not None else available_models()
        self.robots = list(robots) if robots is not None else robot_names()
        self.results: list[DemoResult] = []
        self.envelope_runs: tuple[DemoResult, DemoResult] | None = None  # (rworst, rbest)
        self._model_cache: dict[tuple[str, str], IISModel] = {}
        self._panel_cache: dict[int, bytes] = {}
        self._datasets: dict[str, Dataset] = {}
        self._quiet_slider = False
        self.session: HumanSession | None = None
        self.comparison = None  # the last ``Comparison`` of "Compare with the robots"
        problems: list[str] = []

        # -- inputs ---------------------------------------------------------------------------
        self.source = widgets.ToggleButtons(
            options=[("upload image + mask", UPLOAD), ("benchmark sample", DATASET)],
            value=UPLOAD, description="input",
        )  # fmt: skip
        self.image_upload = widgets.FileUpload(accept="image/*", multiple=False,
                                               description="image")  # fmt: skip
        self.mask_upload = widgets.FileUpload(accept="image/*", multiple=False,
                                              description="mask")  # fmt: skip
        self.mask_rule = widgets.Dropdown(
            options=[(text, name) for name, text in MASK_RULES.items()], value="binary",
            description="mask rule", layout=widgets.Layout(width="34em"),
        )  # fmt: skip
        self.upload_info = widgets.HTML("")
        self.dataset = widgets.Dropdown(options=self._local_datasets(), description="dataset")
        self.sample = widgets.Dropdown(options=[], description="sample")
        self.dataset_info = widgets.HTML("")
        self.model = widgets.Dropdown(options=self.models, description="model")
        self.checkpoint = widgets.Text(value=checkpoint, description="checkpoint",
                                       placeholder="path of the official weights file")  # fmt: skip
        self.robot = widgets.Dropdown(options=self.robots, description="robot")
        self.compare = widgets.Checkbox(value=False, description="compare with", indent=False)
        self.model2 = widgets.Dropdown(options=self.models, description="model 2")
        self.checkpoint2 = widgets.Text(description="checkpoint 2",
                                        placeholder="path of the official weights file")  # fmt: skip
        self.robot2 = widgets.Dropdown(options=self.robots, description="robot 2")
        self.clicks = widgets.IntText(value=int(clicks), description="clicks")
        self.envelope = widgets.Checkbox(
            value=bool(envelope), description="envelope: rworst to rbest (slower)", indent=False,
            tooltip="also run the chosen model under the worst and the best honest user and "
            "draw the band between their IoU curves",
        )  # fmt: skip
        self.seed = widgets.IntText(value=int(seed), description="seed")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.error = widgets.HTML("")
        self.status = widgets.HTML("")

        # -- you click -----------------------------------------------------------------------
        self.mode = widgets.ToggleButtons(
            options=[("a robot clicks", ROBOT_MODE), ("you click", HUMAN_MODE)],
            value=ROBOT_MODE, description="mode",
        )  # fmt: skip
        self.start_button = widgets.Button(description="Start clicking", button_style="primary",
                                           icon="hand-pointer-o")  # fmt: skip
        self.sign = widgets.ToggleButtons(
            options=[("positive", True), ("negative", False)], value=True,
            description="left click", tooltips=["object", "background"],
        )  # fmt: skip
        self.undo_button = widgets.Button(description="Undo", icon="undo", disabled=True)
        self.reset_button = widgets.Button(description="Reset", icon="trash", disabled=True)
        self.compare_button = widgets.Button(description="Compare with the robots",
                                             icon="users", disabled=True)  # fmt: skip
        self.click_image = ClickImage()
        self.confusion = widgets.Image(format="png", layout=widgets.Layout(max_width="480px"))
        self.human_status = widgets.HTML("")
        self.record_link = widgets.HTML("")
        self.record_upload = widgets.FileUpload(accept=".json,application/json", multiple=False,
                                                description="load clicks")  # fmt: skip
        self.compare_curves = widgets.Image(format="png",
                                            layout=widgets.Layout(max_width="900px"))  # fmt: skip
        self.compare_table = widgets.HTML("")

        # -- outputs --------------------------------------------------------------------------
        self.curves = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
        self.slider = widgets.IntSlider(value=1, min=1, max=max(1, int(clicks)), description="click",
                                        continuous_update=False, disabled=True)  # fmt: skip
        self.panel = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
        self.downloads = widgets.HTML("")

        problems += self._select(self.model, model, "model")
        problems += self._select(self.robot, robot, "robot")
        if compare_model or compare_robot:
            self.compare.value = True
            # An empty half of the pair repeats the first run's (already checked) choice.
            problems += self._select(self.model2, compare_model or self.model.value, "model")
            problems += self._select(self.robot2, compare_robot or self.robot.value, "robot")
        for w, role in [
            (self.source, "source"), (self.image_upload, "image-upload"),
            (self.mask_upload, "mask-upload"), (self.mask_rule, "mask-rule"),
            (self.upload_info, "upload-info"),
            (self.dataset, "dataset"), (self.sample, "sample"), (self.model, "model"),
            (self.checkpoint, "checkpoint"), (self.robot, "robot"), (self.compare, "compare"),
            (self.model2, "model2"), (self.checkpoint2, "checkpoint2"), (self.robot2, "robot2"),
            (self.clicks, "clicks"), (self.seed, "seed"), (self.run_button, "run"),
            (self.envelope, "envelope"),
            (self.error, "error"), (self.status, "status"), (self.curves, "curves"),
            (self.slider, "slider"), (self.panel, "panel"), (self.downloads, "downloads"),
            (self.mode, "mode"), (self.start_button, "start"), (self.sign, "sign"),
            (self.undo_button, "undo"), (self.reset_button, "reset"),
            (self.compare_button, "compare-robots"), (self.click_image, "click-image"),
            (self.confusion, "confusion"), (self.human_status, "human-status"),
            (self.record_link, "record-link"), (self.record_upload, "record-upload"),
            (self.compare_curves, "compare-curves"), (self.compare_table, "compare-table"),
        ]:  # fmt: skip
            w.add_class(f"iis-{role}")

        self.upload_box = widgets.VBox(
            [
                widgets.HBox([self.image_upload, self.mask_upload]),
                self.mask_rule,
                self.upload_info,
            ]  # fmt: skip
        )
        self.dataset_box = widgets.VBox(
            [widgets.HBox([self.dataset, self.sample]), self.dataset_info]
        )
        self.compare_box = widgets.HBox([self.model2, self.checkpoint2, self.robot2])
        # Hidden until a run succeeds: empty image widgets would show as broken pictures.
        self.results_box = widgets.VBox(
            [self.curves, self.slider, self.panel, self.downloads],
            layout=widgets.Layout(display="none"),
        )
        self.results_box.add_class("iis-results")
        self.robot_controls = widgets.VBox(
            [widgets.HBox([self.compare, self.compare_box]),
             widgets.HBox([self.clicks, self.envelope, self.run_button])]
        )  # fmt: skip
        self.human_controls = widgets.VBox(
            [
                widgets.HTML(
                    "<b>You are the robot.</b> Press <i>Start clicking</i>, then click on the "
                    "image: a left click is positive (object) unless the toggle says negative; "
                    "a right click or shift+click is negative (background). The model predicts "
                    "after every click."
                ),
                widgets.HBox([self.start_button, self.sign]),
                widgets.HBox([self.undo_button, self.reset_button, self.compare_button]),
            ]
        )
        self.compare_box_h = widgets.VBox([self.compare_curves, self.compare_table],
                                          layout=widgets.Layout(display="none"))  # fmt: skip
        # Hidden until "Start clicking": an empty picture would show as a broken image.
        self.human_box = widgets.VBox(
            [
                widgets.HBox([self.click_image, self.confusion]),
                self.human_status,
                widgets.HBox([self.record_link, self.record_upload]),
                self.compare_box_h,
            ],
            layout=widgets.Layout(display="none"),
        )
        self.human_box.add_class("iis-human")
        self.widget = widgets.VBox(
            [
                self.mode,
                self.source,
                self.upload_box,
                self.dataset_box,
                widgets.HBox([self.model, self.checkpoint, self.robot, self.seed]),
                self.robot_controls,
                self.human_controls,
                self.error,
                self.status,
                self.results_box,
                self.human_box,
            ]
        )

        self.source.observe(self._on_source, names="value")
        self.image_upload.observe(self._on_upload, names="value")
        self.mask_upload.observe(self._on_upload, names="value")
        self.mask_rule.observe(self._on_upload, names="value")
        self.dataset.observe(self._on_dataset, names="value")
        self.model.observe(self._on_model, names="value")
        self.model2.observe(self._on_model, names="value")
        self.compare.observe(self._on_model, names="value")
        self.slider.observe(self._on_slider, names="value")
        self.run_button.on_click(lambda _: self.run())
        self.mode.observe(self._on_mode, names="value")
        self.start_button.on_click(lambda _: self.start_clicking())
        self.undo_button.on_click(lambda _: self.undo())
        self.reset_button.on_click(lambda _: self.reset())
        self.compare_button.on_click(lambda _: self.compare_with_robots())
        self.click_image.on_click(self._on_image_click)
        self.record_upload.observe(self._on_record_upload, names="value")
        # a new image, mask or model ends the clicking session: its clicks belong to the old one
        for w in (self.source, self.image_upload, self.mask_upload, self.mask_rule, self.dataset,
                  self.sample, self.model, self.checkpoint):  # fmt: skip
            w.observe(self._end_session, names="value")

        self._on_dataset()
        if sample:
            problems += self._select_sample(sample)
        self._on_source()
        self._on_model()
        if mode not in (ROBOT_MODE, HUMAN_MODE):
            problems.append(f"unknown mode {mode!r}; known modes: {ROBOT_MODE}, {HUMAN_MODE}")
        else:
            self.mode.value = mode
        self._on_mode()
        if problems:
            self.show_error("; ".join(problems))

    # -- display ------------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def show_error(self, message: str) -> None:
        """Show ``message`` in red next to the inputs ("" clears it)."""
        self.error.value = (
            f'<span style="{ERROR_STYLE}">⚠ {html.escape(message)}</span>' if message else ""
        )

    @staticmethod
    def _select(dropdown: widgets.Dropdown, name: str, what: str) -> list[str]:
        """Select ``name`` in ``dropdown``; a problem message when it is not offered."""
        if not name:
            return []
        if name in dropdown.options:
            dropdown.value = name
            return []
        return [f"unknown {what} {name!r}; known {what}s: {', '.join(dropdown.options)}"]

    # -- inputs -------------------------------------------------------------------------------

    @staticmethod
    def _local_datasets() -> list[str]:
        """Benchmarks found under ``$IISLIB_DATA`` (never downloads)."""
        root = data_root()
        if root is None or not root.is_dir():
            return []
        found = []
        for name in DATASET_NAMES:
            try:
                load_dataset(name, root=root)
            except (DataError, OSError):
                continue
            found.append(name)
        return found

    def _select_sample(self, spec: str) -> list[str]:
        ds_name, _, name = spec.partition("/")
        if ds_name not in self.dataset.options:
            return [f"sample {spec!r}: no local dataset {ds_name!r} (set IISLIB_DATA)"]
        self.dataset.value = ds_name
        if name and name not in self.sample.options:
            return [f"sample {spec!r}: no image {name!r} in {ds_name}"]
        if name:
            self.sample.value = name
        self.source.value = DATASET
        return []

    def _on_source(self, *_: Any) -> None:
        upload = self.source.value == UPLOAD
        self.upload_box.layout.display = None if upload else "none"
        self.dataset_box.layout.display = "none" if upload else None

    def _on_dataset(self, *_: Any) -> None:
        name = self.dataset.value
        if not name:
            self.sample.options = []
            self.dataset_info.value = (
                "<i>no benchmark found: set IISLIB_DATA to the folder holding berkeley/, "
                "grabcut/ (nothing is downloaded here)</i>"
            )
            return
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, root=data_root())
        ds = self._datasets[name]
        self.sample.options = ds.names
        self.sample.value = ds.names[0] if ds.names else None
        self.dataset_info.value = f"{len(ds)} images in {html.escape(str(ds.folder))}"

    def _on_model(self, *_: Any) -> None:
        """Checkpoint fields only for models that need one; the second run only when asked."""
        self.checkpoint.layout.display = None if self.model.value in NEEDS_CHECKPOINT else "none"
        self.compare_box.layout.display = None if self.compare.value else "none"
        self.checkpoint2.layout.display = None if self.model2.value in NEEDS_CHECKPOINT else "none"

    def _on_upload(self, *_: Any) -> None:
        """Decode each upload at once and say what it is, or what is wrong with it."""
        lines, problems = [], []
        image = None
        for what, upload in (("image", self.image_upload), ("mask", self.mask_upload)):
            item = upload_content(upload)
            if item is None:
                lines.append(f"{what}: not uploaded yet")
                continue
            fname, data = item
            try:
                if what == "image":
                    arr = decode_image_bytes(data, f"{what} {fname}", MAX_PIXELS)
                else:
                    arr, ignore = read_mask_bytes(data, self.mask_rule.value, f"{what} {fname}",
                                                  MAX_PIXELS)  # fmt: skip
            except DataError as e:
                hint = ""
                if what == "mask" and self.mask_rule.value == "binary":
                    hint = (" (a JPEG or antialiased mask: choose the mask rule 'threshold'; a "
                            "label mask: 'nonzero')")  # fmt: skip
                problems.append(str(e) + hint)
                continue
            h, w = arr.shape[:2]
            extra = ""
            if what == "image":
                image = arr
            else:
                valid = ~ignore if ignore is not None else np.ones(arr.shape, dtype=bool)
                fg = arr[valid].mean() if valid.any() else 0.0
                extra = f", {100 * fg:.1f}% foreground"
                if ignore is not None:
                    extra += f", {100 * ignore.mean():.1f}% ignored"
                if fg == 0.0:
                    problems.append(f"mask {fname} is empty (no foreground pixel under the "
                                    f"rule '{self.mask_rule.value}')")  # fmt: skip
                elif fg == 1.0:
                    problems.append(f"mask {fname} is all foreground (no background pixel)")
                if image is not None and image.shape[:2] != (h, w):
                    problems.append(
                        f"mask is {w}x{h} but image is {image.shape[1]}x{image.shape[0]}"
                    )
            lines.append(f"{what}: {html.escape(fname)} ({w}x{h}{extra})")
        self.show_error("; ".join(problems))
        self.upload_info.value = "<br>".join(lines)

    def inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
        """(uint8 image, bool mask, ignore or None, name) from the uploads or the sample.

        Raises DataError saying what is missing or wrong.
        """
        if self.source.value == DATASET:
            if not self.dataset.value or self.sample.value is None:
                raise DataError("no benchmark sample selected (set IISLIB_DATA)")
            s = self._datasets[self.dataset.value][self.sample.value]
            return s.image, s.gt, s.ignore, s.name
        img_item, mask_item = upload_content(self.image_upload), upload_content(self.mask_upload)
        missing = [w for w, it in (("an image", img_item), ("a mask", mask_item)) if it is None]
        if missing:
            raise DataError("upload " + " and ".join(missing) + " first")
        assert img_item is not None and mask_item is not None
        image = decode_image_bytes(img_item[1], f"image {img_item[0]}", MAX_PIXELS)
        mask, ignore = read_mask_bytes(mask_item[1], self.mask_rule.value,
                                       f"mask {mask_item[0]}", MAX_PIXELS)  # fmt: skip
        image, gt = check_inputs(image, mask, f"{img_item[0]} / {mask_item[0]}", ignore=ignore)
        return image, gt, ignore, Path(img_item[0]).stem

    def _model(self, name: str, checkpoint: str) -> IISModel:
        """Built models are kept: networks load their weights once per app."""
        key = (name, checkpoint.strip() if name in NEEDS_CHECKPOINT else "")
        if key not in self._model_cache:
            self._model_cache[key] = build_model(name, key[1] or None)
        return self._model_cache[key]

    # -- running ------------------------------------------------------------------------------

    def run(self) -> bool:
        """Run with the current choices; True on success, else the error label says why."""
        self.show_error("")
        self.run_button.disabled = True
        self.status.value = "<i>running…</i>"
        try:
            image, gt, ignore, name = self.inputs()
            k = self.clicks.value
            if k < 1:
                raise DemoError(f"the number of clicks must be at least 1, got {k}")
            pairs = [(self.model.value, self.checkpoint.value, self.robot.value)]
            if self.compare.value:
                pairs.append((self.model2.value, self.checkpoint2.value, self.robot2.value))
            results = []
            for model, ckpt, robot in pairs:
                results.append(
                    run_demo(
                        image,
                        gt,
                        self._model(model, ckpt),
                        robot,
                        clicks=k,
                        seed=self.seed.value,
                        ignore=ignore,
                        name=name,
                    )  # fmt: skip
                )
            envelope = None
            if self.envelope.value:
                model, ckpt, _ = pairs[0]
                envelope = run_envelope(image, gt, self._model(model, ckpt), clicks=k,
                                        seed=self.seed.value, ignore=ignore, name=name)  # fmt: skip
        except Exception as e:  # any failure is reported; the app stays usable
            self.show_error(error_message(e))
            self.status.value = "<i>last successful run kept below</i>" if self.results else ""
            return False
        finally:
            self.run_button.disabled = False
        self.results = results
        self.envelope_runs = envelope
        self._panel_cache.clear()
        lines = [summary_line(r) for r in results]
        lines += [envelope_line(envelope)] if envelope is not None else []
        self.status.value = "<br>".join(html.escape(line) for line in lines)
        self.curves.value = figure_png(fig_curves(*results, envelope=envelope))
        k_show = self.results[0].clicks
        self._quiet_slider = True  # one redraw below, not one per intermediate slider value
        try:
            self.slider.max = k_show
            self.slider.value = k_show
            self.slider.disabled = False
        finally:
            self._quiet_slider = False
        self._on_slider()
        self.results_box.layout.display = None
        return True

    def panel_png(self, k: int) -> bytes:
        """The panel at click ``k`` (cached per k: scrubbing back and forth stays fast)."""
        if k not in self._panel_cache:
            other = self.results[1] if len(self.results) > 1 else None
            self._panel_cache[k] = figure_png(fig_panel(self.results[0], k, other))
        return self._panel_cache[k]

    def _on_slider(self, *_: Any) -> None:
        if not self.results or self._quiet_slider:
            return
        k = int(self.slider.value)
        png = self.panel_png(k)
        self.panel.value = png
        csv = scores_csv(self.results)
        self.downloads.value = (
            "download: "
            + data_link(csv, "scores.csv", "text/csv")
            + data_link(self.curves.value, "curves.png", "image/png")
            + data_link(png, f"panel_click{k}.png", "image/png")
        )

    # -- you click ----------------------------------------------------------------------------

    def _on_mode(self, *_: Any) -> None:
        human = self.mode.value == HUMAN_MODE
        self.robot_controls.layout.display = "none" if human else None
        self.robot.layout.display = "none" if human else None
        self.results_box.layout.display = "none" if human or not self.results else None
        self.human_controls.layout.display = None if human else "none"
        self.human_box.layout.display = None if human and self.session is not None else "none"
        self.status.value = ""

    @property
    def record(self) -> ClickRecord | None:
        """The clicks of the current "you click" session (None before "Start clicking")."""
        return self.session.record if self.session is not None else None

    def _end_session(self, *_: Any) -> None:
        if self.session is None:
            return
        self.session.close()
        self.session = None
        self.comparison = None
        self.human_box.layout.display = "none"
        self._human_buttons()
        if self.mode.value == HUMAN_MODE:
            self.status.value = (
                "<i>the image, mask or model changed: press Start clicking to click on it</i>"
            )

    def start_clicking(self) -> bool:
        """Start a session on the chosen image and model; True on success (else the error)."""
        self.show_error("")
        self.status.value = "<i>loading…</i>"
        try:
            image, gt, ignore, name = self.inputs()
            image_id = f"{self.dataset.value}/{name}" if self.source.value == DATASET else name
            model = self._model(self.model.value, self.checkpoint.value)
            session = HumanSession(image, gt, model, name=name, image_id=image_id,
                                   model_name=self.model.value, ignore=ignore)  # fmt: skip
        except Exception as e:  # any failure is reported; the app stays usable
            self.show_error(error_message(e))
            self.status.value = ""
            return False
        if self.session is not None:
            self.session.close()
        self.session = session
        self.comparison = None
        self.status.value = ""
        self.compare_box_h.layout.display = "none"
        self._show_human()
        self.human_box.layout.display = None
        return True

    def _human_buttons(self) -> None:
        has = self.session is not None and bool(self.session.record.clicks)
        for b in (self.undo_button, self.reset_button, self.compare_button):
            b.disabled = not has

    def _show_human(self) -> None:
        s = self.session
        if s is None:
            return
        self.click_image.show_png(overlay_png(s.image, s.pred, s.record.clicks), s.shape)
        self.confusion.value = confusion_png(s.pred, s.gt, s.ignore, s.record.clicks)
        self.confusion.layout.width = f"{self.click_image.width}px"
        self.human_status.value = html.escape(s.status())
        rec = s.record
        if rec.clicks:
            fname = "clicks_" + "".join(ch if ch.isalnum() else "_" for ch in rec.image) + ".json"
            self.record_link.value = "save your clicks: " + data_link(
                rec.to_json().encode(), fname, "application/json"
            )
        else:
            self.record_link.value = ""
        self._human_buttons()

    def human_click(self, row: int, col: int, positive: bool) -> bool:
        """Click (row, col) as the person; True when the model predicted, else the error says
        why (no session, outside the image, nothing left to correct)."""
        self.show_error("")
        if self.session is None:
            self.show_error("press Start clicking first")
            return False
        try:
            self.session.click(row, col, positive)
        except Exception as e:  # reported, never raised: the page must keep working
            self.show_error(error_message(e))
            return False
        self._show_human()
        return True

    def _on_image_click(self, content: dict) -> None:
        if self.session is not None:
            shown = (content.get("height"), content.get("width"))
            if shown != self.session.shape:
                h, w = self.session.shape
                self.show_error(
                    f"the picture clicked ({shown[1]}x{shown[0]}) is not the current image "
                    f"({w}x{h}): wait for it to load, or press Start clicking again"
                )
                return
        negative = content.get("button") == 2 or bool(content.get("shift"))
        self.human_click(content.get("row"), content.get("col"),
                         False if negative else bool(self.sign.value))  # fmt: skip

    def undo(self) -> None:
        """Remove the last click."""
        self.show_error("")
        if self.session is not None and self.session.undo() is not None:
            self._show_human()

    def reset(self) -> None:
        """Remove every click."""
        self.show_error("")
        if self.session is not None:
            self.session.reset()
            self.compare_box_h.layout.display = "none"
            self._show_human()

    def load_record(self, record: ClickRecord) -> bool:
        """Replace the clicks with a saved record's (made on this image and mask); True on
        success, else the error says why (another image, another size, no session)."""
        self.show_error("")
        if self.session is None and not self.start_clicking():
            return False
        assert self.session is not None
        try:
            self.session.load(record)
        except Exception as e:
            self.show_error(error_message(e))
            return False
        self._show_human()
        return True

    def _on_record_upload(self, *_: Any) -> None:
        item = upload_content(self.record_upload)
        if item is None:
            return
        try:
            record = ClickRecord.from_json(item[1], f"click record {item[0]}")
        except Exception as e:  # any refused record says why on the page, never in a log
            self.show_error(str(e) if isinstance(e, RecordError) else error_message(e))
            return
        self.load_record(record)

    def compare_with_robots(self) -> bool:
        """Run the robots for as many clicks as the person made and show the comparison."""
        self.show_error("")
        if self.session is None or not self.session.record.clicks:
            self.show_error("click on the image first, then compare")
            return False
        self.compare_button.disabled = True
        self.status.value = "<i>running the robots…</i>"
        try:
            t0 = time.perf_counter()
            cmp = self.session.compare(seed=self.seed.value)
            png = figure_png(fig_compare(cmp))
        except Exception as e:
            self.show_error(error_message(e))
            self.status.value = ""
            return False
        finally:
            self._human_buttons()
        self.comparison = cmp
        self.compare_curves.value = png
        self.compare_table.value = comparison_html(cmp)
        self.compare_box_h.layout.display = None
        self.status.value = (
            f"compared with {len(cmp.robots)} robots over {cmp.k} clicks "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        return True


def comparison_html(cmp: Any) -> str:
    """An HTML table: per click of the person, the distance to each deterministic robot's click
    (px) and the percentile of the person's pixel under each random robot's map; then the
    summary row (means) and the IoU gap (mean |IoU robot - IoU you| over the clicks)."""
    pc = cmp.per_click
    robots = list(dict.fromkeys(pc["robot"]))
    rand = {r: bool(pc.loc[pc["robot"] == r, "random"].iloc[0]) for r in robots}

    def cell(v: float, random: bool) -> str:
        if v != v:  # NaN: the robot would stop (END) or has no map
            return "–"
        return f"{v:.0f}%" if random else f"{v:.1f} px"

    head = "".join(f"<th>{html.escape(r)}</th>" for r in robots)
    rows = []
    for k, g in pc.groupby("click", sort=True):
        c = g.iloc[0]
        sign = "+" if c["human_positive"] else "−"
        vals = {r: (v["percentile"] if rand[r] else v["distance"]) for r, v in
                g.set_index("robot").iterrows()}  # fmt: skip
        tds = "".join(f"<td>{cell(vals[r], rand[r])}</td>" for r in robots)
        rows.append(f"<tr><td>{k} ({sign} at {c['human_row']}, {c['human_col']})</td>{tds}</tr>")
    summary = cmp.summary()
    means = "".join(
        "<td><b>"
        + cell(summary.loc[r, "mean_percentile" if rand[r] else "mean_distance"], rand[r])
        + "</b></td>"
        for r in robots
    )
    gaps = "".join(f"<td>{summary.loc[r, 'iou_gap']:.3f}</td>" for r in robots)
    return (
        '<table class="iis-comparison" style="border-collapse:collapse;font-size:90%">'
        f"<tr><th>your click (row, col)</th>{head}</tr>" + "".join(rows)
        + f"<tr><td><b>mean</b></td>{means}</tr><tr><td>IoU gap</td>{gaps}</tr></table>"
        "<small>px: distance from your click to the click the deterministic robot would have "
        "placed at your state; %: where your pixel falls in the random robot's sampling map "
        "(mid-rank percentile of its probability: 0 never sampled there, 50 typical of a "
        "uniform robot, near 100 its favourite pixels); IoU gap: mean |IoU of the robot's own "
        "run − yours| over your clicks.</small>"
    )  # fmt: skip
