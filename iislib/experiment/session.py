"""A person clicking on one image for one model: ``HumanSession``, the "you click" demo.

    session = HumanSession(image, gt, "ritm-compact", name="12003")
    session.click(120, 200, positive=True)   # the new IoU; the prediction is ``session.pred``
    session.undo(); session.reset(); session.record.to_json()
    cmp = session.compare()                  # the robots on the same image and model

The pictures of a session (``overlay_png``, ``confusion_png``, ``fig_compare``, ``fig_verdict``)
are drawn by ``iislib.drawing.demo_figures``; ``iislib.apps.demo_app`` wires them to widgets.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iislib.core.clicks import Click
from iislib.core.human import ClickRecord
from iislib.core.metrics import scores
from iislib.core.model import IISModel
from iislib.core.robots import ROBOT_NAMES
from iislib.experiment.data import check_pair
from iislib.experiment.demo import MAX_PIXELS, DemoError, build_model, check_inputs
from iislib.experiment.human import Comparison, compare_with_robots
from iislib.models.settings import DEMO_SETTINGS, get_settings


class HumanSession:
    """A person clicking on one image for one model: a prediction after every click.

    The predictions are those of Algorithm 1 (``iislib.core.loop``) with the person as the
    robot: one model state per session (``model.start``), the previous map as the auxiliary
    input, ``prob > threshold`` scored. So ``compare`` (which replays the record through
    ``loop.run``) gives the same IoUs as the session showed.

    Args:
        image: uint8 (H, W, 3) (grey, RGBA, float in [0, 1] are converted).
        gt: bool (H, W) ground truth, or a mask image (the demo's rule).
        model: a registered model name or a built ``IISModel``.
        name: the image's name (captions, and the random robots' generator key, as the sweep's).
        image_id: the image's id in the record (default ``name``; e.g. "berkeley/101085").
        model_name: the name written in the record (default: ``model``'s name).
        ignore: bool (H, W) pixels neither scored nor compared, or None.
        settings: inference settings (``iislib.models.settings``), default ``direct``.
        checkpoint: weights file for models of ``NEEDS_CHECKPOINT``.
    """

    def __init__(
        self,
        image: np.ndarray,
        gt: np.ndarray,
        model: str | IISModel,
        *,
        name: str = "image",
        image_id: str | None = None,
        model_name: str | None = None,
        ignore: np.ndarray | None = None,
        settings: str = DEMO_SETTINGS,
        checkpoint: str | Path | None = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> None:
        img, mask = check_inputs(image, gt, name, max_pixels)
        if ignore is not None:
            ignore = np.asarray(ignore, dtype=bool)
            check_pair(img, mask, ignore, name)
        try:
            st = get_settings(settings)
        except ValueError as e:
            raise DemoError(str(e)) from None
        if isinstance(model, IISModel):
            net, mname = model, model_name or model.name
        else:
            net, mname = build_model(str(model), checkpoint), model_name or str(model)
        self.image, self.gt, self.ignore = st.prepare(img, mask, ignore)
        self.model = st.wrap(net)
        self.name = str(name)
        self.settings = st.name
        self.threshold = st.threshold
        self.image_id = str(image_id) if image_id is not None else self.name
        self.record = ClickRecord.new(self.image_id, self.gt, mname, settings=st.name)
        self.probs: list[np.ndarray] = []
        self.iou: list[float] = []
        self.seconds: list[float] = []
        self._state = self.model.start(self.image)

    # -- state ---------------------------------------------------------------------------------

    @property
    def clicks(self) -> list[Click]:
        """The clicks so far, oldest first."""
        return list(self.record.clicks)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return self.gt.shape

    @property
    def pred(self) -> np.ndarray:
        """bool (H, W): the current prediction (all False before the first click)."""
        if not self.probs:
            return np.zeros(self.gt.shape, bool)
        return self.probs[-1] > self.threshold

    def errors(self) -> int:
        """Pixels the current prediction gets wrong (outside ``ignore``)."""
        wrong = self.pred != self.gt
        if self.ignore is not None:
            wrong &= ~self.ignore
        return int(wrong.sum())

    def _predict(self, clicks: list[Click]) -> tuple[np.ndarray, float]:
        prev = self.probs[-1] if self.probs else None
        kw = {"state": self._state} if self._state is not None else {}
        t0 = time.perf_counter()
        prob = self.model.predict(self.image, clicks, prev, **kw)
        return prob, time.perf_counter() - t0

    def _push(self, prob: np.ndarray, seconds: float) -> None:
        self.probs.append(prob)
        self.iou.append(float(scores(prob > self.threshold, self.gt, self.ignore).iou))
        self.seconds.append(seconds)

    # -- clicking ------------------------------------------------------------------------------

    def click(
        self, row: object, col: object, positive: bool = True, time: str | None = None
    ) -> float:
        """Place a click at pixel (row, col), predict, and return the new IoU.

        Raises DemoError (and changes nothing) for a click outside the image, or when the
        prediction is already perfect (no error left: a robot would stop there, END).
        """
        try:
            r, c = operator.index(row), operator.index(col)  # type: ignore[arg-type]
        except TypeError:
            raise DemoError(
                f"a click needs whole pixel coordinates, got ({row!r}, {col!r})"
            ) from None
        h, w = self.shape
        if not (0 <= r < h and 0 <= c < w):
            raise DemoError(
                f"the click at (row {r}, col {c}) is outside the {w}x{h} image: click on the image"
            )
        if self.probs and self.errors() == 0:
            raise DemoError(
                f"the prediction is already perfect (IoU {self.iou[-1]:.3f} after "
                f"{len(self.probs)} clicks): nothing is left to correct; undo or reset to try "
                "another sequence"
            )
        click = Click(int(r), int(c), bool(positive))
        prob, seconds = self._predict([*self.record.clicks, click])
        self.record.add(click, time)
        self._push(prob, seconds)
        return self.iou[-1]

    def _clear(self) -> None:
        for kept in (self.probs, self.iou, self.seconds):
            kept.clear()

    def _restart(self) -> None:
        self.model.finish(self._state)
        self._state = self.model.start(self.image)

    def replay(self) -> None:
        """Predict again from the first click (a fresh model state), e.g. after ``undo``."""
        clicks = self.clicks
        self._restart()
        self._clear()
        for k in range(len(clicks)):
            self._push(*self._predict(clicks[: k + 1]))

    def undo(self) -> Click | None:
        """Remove the last click (and its prediction); None when there is none."""
        click = self.record.undo()
        if click is None:
            return None
        if self._state is None:  # a stateless model: the earlier maps are still valid
            for kept in (self.probs, self.iou, self.seconds):
                kept.pop()
        else:  # a model state (RITM's zoom-in box) carries the undone click: rebuild it
            self.replay()
        return click

    def reset(self) -> None:
        """Remove every click."""
        self.record.reset()
        self._clear()
        self._restart()

    def load(self, record: ClickRecord) -> None:
        """Replace the clicks with ``record``'s (made on this mask) and predict them all.

        Raises RecordError when the record was made on another image or mask (size, digest).
        """
        record.check_mask(self.gt, f"the mask of {self.name!r}")
        old = self.record
        self.record = ClickRecord(
            image=record.image, shape=record.shape, mask_digest=record.mask_digest,
            model=old.model, clicks=list(record.clicks), times=list(record.times),
            settings=self.settings, example=record.example, note=record.note,
        )  # fmt: skip
        self.replay()

    def close(self) -> None:
        """Release the model state."""
        self.model.finish(self._state)
        self._state = None

    # -- views ---------------------------------------------------------------------------------

    def status(self) -> str:
        """'model on image: 3 clicks (2+ 1-): IoU 0.812 (after each click: 0.412, 0.733, 0.812);
        last prediction 0.05 s; last click - at (row 5, col 9)', or what to do first."""
        if not self.probs:
            return (f"{self.record.model} on {self.image_id}: no click yet; click on the object "
                    "(left: positive, right or shift: negative)")  # fmt: skip
        n, n_pos = len(self.probs), sum(c.positive for c in self.record.clicks)
        history = ", ".join(f"{v:.3f}" for v in self.iou)
        last = self.record.clicks[-1]
        tail = f"; last click {'+' if last.positive else '-'} at (row {last.row}, col {last.col})"
        tail += "; no error left" if self.errors() == 0 else ""
        return (f"{self.record.model} on {self.image_id}: {n} click{'s' if n > 1 else ''} "
                f"({n_pos}+ {n - n_pos}-): IoU {self.iou[-1]:.3f} (after each click: {history}); "
                f"last prediction {self.seconds[-1]:.2f} s{tail}")  # fmt: skip

    def compare(self, robots: Sequence[str] = ROBOT_NAMES, seed: int = 0) -> Comparison:
        """The robots on this image and model for as many clicks as the person made."""
        if not self.record.clicks:
            raise DemoError("no clicks yet: click on the image first, then compare")
        return compare_with_robots(self.model, self.image, self.gt, self.record, robots=robots,
                                   seed=seed, key=self.name, ignore=self.ignore,
                                   threshold=self.threshold)  # fmt: skip


__all__ = ["HumanSession"]
