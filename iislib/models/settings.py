"""Named inference settings: how an image is prepared and a model is called, recorded with results.

=========== ===================================================================================
direct      one forward pass at the image's own resolution, threshold 0.5
ipol        the default (``DEFAULT_SETTINGS``): the paper author's evaluation: centre-crop to a
            square, nearest-neighbour resize of image and mask to 224x224, image min-max
            normalised, one forward pass per click
ritm        RITM's own evaluation at full resolution: zoom-in, horizontal-flip averaging,
            threshold 0.49 (``iislib.models.predictors``)
gto99       gto99's own evaluation at full resolution: threshold 0.5, ignore band excluded
=========== ===================================================================================

Every settings object prepares a sample (``prepare``) and wraps a model (``wrap``); the sweep
records ``settings.name`` in every result row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from iislib.core.model import IISModel


def centre_crop_square(a: np.ndarray) -> np.ndarray:
    """Centre crop of side min(H, W), as torchvision's ``center_crop`` rounds it."""
    h, w = a.shape[:2]
    s = min(h, w)
    top = int(round((h - s) / 2.0))
    left = int(round((w - s) / 2.0))
    return a[top : top + s, left : left + s]


def resize_nearest(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize as ``F.interpolate(mode='nearest')``: source = floor(dst * in / out)."""
    h, w = a.shape[:2]
    oh, ow = size
    rows = np.minimum(np.floor(np.arange(oh) * (h / oh)).astype(np.int64), h - 1)
    cols = np.minimum(np.floor(np.arange(ow) * (w / ow)).astype(np.int64), w - 1)
    return a[rows[:, None], cols]  # one fancy index: a C-ordered result


def minmax(image: np.ndarray) -> np.ndarray:
    """Global min-max normalisation of an image to float32 [0, 1] (a flat image gives zeros)."""
    x = image.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


@dataclass(frozen=True)
class Settings:
    """How to prepare a sample and call a model.

    Attributes:
        name: recorded with every result.
        threshold: the robot and the scores see ``prob > threshold``.
        square: side of the centre-cropped, nearest-resized square (ipol: 224), or None.
        minmax: min-max normalise the image to float [0, 1] (ipol).
        wrapper: builds the model actually called from the bare model (ritm: zoom-in + flip).
    """

    name: str
    description: str
    threshold: float = 0.5
    square: int | None = None
    minmax: bool = False
    wrapper: Callable[[IISModel], IISModel] | None = None

    def prepare(
        self, image: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Image (uint8 or float32 (S, S, 3)), gt and ignore as these settings evaluate them."""
        if self.square is not None:
            size = (self.square, self.square)
            image = resize_nearest(centre_crop_square(image), size)
            gt = resize_nearest(centre_crop_square(gt), size)
            if ignore is not None:
                ignore = resize_nearest(centre_crop_square(ignore), size)
        if self.minmax:
            image = minmax(image)
        return image, gt, ignore

    def wrap(self, model: IISModel) -> IISModel:
        """The model to call under these settings."""
        return self.wrapper(model) if self.wrapper is not None else model


def _ritm_predictor(model: IISModel) -> IISModel:
    from iislib.models.predictors import ZoomInFlipPredictor

    return ZoomInFlipPredictor(model)


SETTINGS: dict[str, Settings] = {
    "direct": Settings("direct", "one forward pass at the image's own resolution"),
    "ipol": Settings(
        "ipol",
        "centre square crop, nearest resize to 224x224, min-max normalised image (the paper's)",
        square=224,
        minmax=True,
    ),
    "ritm": Settings(
        "ritm",
        "RITM's evaluation: zoom-in (400, skip 1, x1.4, min 200, IoU 0.5), flip averaging, t=0.49",
        threshold=0.49,
        wrapper=_ritm_predictor,
    ),
    "gto99": Settings("gto99", "gto99's evaluation: full resolution, t=0.5, ignore band excluded"),
}

DEFAULT_SETTINGS = "ipol"
"""The settings ``evaluate``, the command line and the notebooks use unless told otherwise."""

DEMO_SETTINGS = "direct"
"""The one-image demo's settings (``iislib.experiment.demo``, ``iislib demo``, the "you click" mode):
the user's own image at its own resolution, so that the panel, the clicks and a saved click
record are in the image's pixels; ``ipol`` would crop and resize it first."""


def get_settings(name: str | Settings) -> Settings:
    """The settings registered under ``name`` (a Settings object is returned as is)."""
    if isinstance(name, Settings):
        return name
    try:
        return SETTINGS[name]
    except KeyError:
        raise ValueError(
            f"unknown settings {name!r}; known settings: {', '.join(SETTINGS)}"
        ) from None
